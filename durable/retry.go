package durable

import (
	"context"
	"errors"
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
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
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

func kvGet(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	return retried(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(ctx, key) })
}

func kvPut(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) (uint64, error) {
	return retried(ctx, func(ctx context.Context) (uint64, error) { return kv.Put(ctx, key, value) })
}

func kvCreate(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) (uint64, error) {
	return retried(ctx, func(ctx context.Context) (uint64, error) { return kv.Create(ctx, key, value) })
}

func kvUpdate(ctx context.Context, kv jetstream.KeyValue, key string, value []byte, rev uint64) (uint64, error) {
	return retried(ctx, func(ctx context.Context) (uint64, error) { return kv.Update(ctx, key, value, rev) })
}
