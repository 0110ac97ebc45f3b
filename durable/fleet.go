package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hy3d/hy3d/telemetry"
)

// workersBucket holds every worker's last report; a report older than
// workerTTL is of a worker that stopped.
const (
	workersBucket = "hy3d_workers"
	workerTTL     = 15 * time.Second
)

// Fleet shares every worker's figures with every gateway through a
// key-value bucket: each worker puts its own report, each gateway watches
// them all.
type Fleet struct {
	kv     jetstream.KeyValue
	log    func(error)
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	workers map[string]telemetry.WorkerView
}

// OpenFleet starts following the workers' reports.
func (b *Broker) OpenFleet() *Fleet {
	f := &Fleet{kv: b.workers, workers: map[string]telemetry.WorkerView{}, done: make(chan struct{}),
		log: func(err error) { b.log.Warn().Err(err).Msg("worker reports") }}
	var ctx context.Context
	ctx, f.cancel = context.WithCancel(context.Background())
	go f.follow(ctx)
	return f
}

// follow keeps the latest report of every worker.
func (f *Fleet) follow(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		w, err := f.kv.WatchAll(ctx)
		if err != nil {
			f.log(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			f.mu.Lock()
			if e.Operation() != jetstream.KeyValuePut {
				delete(f.workers, e.Key())
			} else {
				var v telemetry.WorkerView
				if json.Unmarshal(e.Value(), &v) == nil {
					f.workers[e.Key()] = v
				}
			}
			f.mu.Unlock()
		}
		_ = w.Stop()
	}
}

// Report puts this worker's figures.
func (f *Fleet) Report(ctx context.Context, v telemetry.WorkerView) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := f.kv.Put(ctx, subjectToken(v.Name), b); err != nil {
		return fmt.Errorf("reporting worker %s: %w", v.Name, err)
	}
	return nil
}

// Workers are the workers that reported within the last workerTTL, by
// name.
func (f *Fleet) Workers() []telemetry.WorkerView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]telemetry.WorkerView, 0, len(f.workers))
	for _, w := range f.workers {
		if time.Since(w.Updated) <= workerTTL {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b telemetry.WorkerView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Close stops following the reports.
func (f *Fleet) Close() {
	f.cancel()
	<-f.done
}
