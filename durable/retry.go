package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// While a NATS cluster elects a new leader for a stream (a node died),
// requests to it go unanswered or answer "no responders" for a few
// seconds. The broker's requests wait that out, within a budget, rather
// than refuse a job the cluster will take a moment later.
const (
	retryBudget  = 10 * time.Second
	retryAttempt = 3 * time.Second
	retryPause   = 200 * time.Millisecond
)

// transient reports whether err is what a request meets while a cluster
// (or the connection to it) recovers, so that the same request may
// succeed later.
func transient(err error) bool {
	var api *jetstream.APIError
	// An object store read times out on its pipe ("read pipe: i/o
	// timeout"), not on its context.
	var timeout interface{ Timeout() bool }
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.As(err, &timeout) && timeout.Timeout() ||
		errors.As(err, &api) && api.ErrorCode == jsErrClusterNotAvailable
}

// retried runs op until it succeeds, fails for good, or the budget or ctx
// ends; each attempt has its own timeout. An attempt that timed out may
// still have been applied: every caller's operation is idempotent or
// checks for its own earlier write (a create that finds its own record, a
// publish deduplicated by its message id).
func retried[T any](ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(retryBudget)
	for {
		actx, cancel := context.WithTimeout(ctx, retryAttempt)
		v, err := op(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(retryPause):
		}
	}
}

// The broker's requests, retried.

func kvPut(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) (uint64, error) {
	return retried(ctx, func(ctx context.Context) (uint64, error) { return kv.Put(ctx, key, value) })
}

func kvCreate(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) (uint64, error) {
	return retried(ctx, func(ctx context.Context) (uint64, error) { return kv.Create(ctx, key, value) })
}

func kvUpdate(ctx context.Context, kv jetstream.KeyValue, key string, value []byte, rev uint64) (uint64, error) {
	return retried(ctx, func(ctx context.Context) (uint64, error) { return kv.Update(ctx, key, value, rev) })
}

// leaderGet reads the latest value of key in a bucket from the leader of
// its stream, through JetStream's message-get API. A key-value Get may be
// answered by any replica (a direct get), one that has not yet applied a
// write another process was already told is stored: a gateway would answer
// 404 for a generation another gateway had just accepted. found is false
// for a key never written, deleted or purged.
func leaderGet(ctx context.Context, nc *nats.Conn, bucket, key string) (data []byte, rev uint64, found bool, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key}) // cannot fail
	return retriedGet(ctx, func(ctx context.Context) ([]byte, uint64, bool, error) {
		msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
		if err != nil {
			return nil, 0, false, err
		}
		var resp struct {
			Message *struct {
				Seq  uint64 `json:"seq"`
				Hdrs []byte `json:"hdrs"`
				Data []byte `json:"data"`
			} `json:"message"`
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return nil, 0, false, fmt.Errorf("reading %s/%s: %w", bucket, key, err)
		}
		switch {
		case resp.Error != nil && resp.Error.ErrorCode == jsErrNoMessageFound:
			return nil, 0, false, nil
		case resp.Error != nil:
			return nil, 0, false, resp.Error
		case resp.Message == nil:
			return nil, 0, false, fmt.Errorf("reading %s/%s: an empty answer", bucket, key)
		}
		if bytes.Contains(resp.Message.Hdrs, []byte("KV-Operation: DEL")) || bytes.Contains(resp.Message.Hdrs, []byte("KV-Operation: PURGE")) {
			return nil, 0, false, nil
		}
		return resp.Message.Data, resp.Message.Seq, true, nil
	})
}

// jsErrNoMessageFound is JetStream's answer for a subject with no message.
const jsErrNoMessageFound = 10037

// retriedGet is retried for a read of four results.
func retriedGet(ctx context.Context, op func(context.Context) ([]byte, uint64, bool, error)) ([]byte, uint64, bool, error) {
	type read struct {
		data  []byte
		rev   uint64
		found bool
	}
	r, err := retried(ctx, func(ctx context.Context) (read, error) {
		d, rev, found, err := op(ctx)
		return read{d, rev, found}, err
	})
	return r.data, r.rev, r.found, err
}
