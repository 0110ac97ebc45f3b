package durable

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// benchSubmit measures Engine.Submit of new jobs (each a different
// picture) on a gateway that runs none of them: with a broker, that is
// storing the job and its generation before the answer.
func benchSubmit(b *testing.B, broker jobs.Broker) {
	store, err := results.NewStore(b.TempDir(), 0, 0, results.Options{}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e := jobs.New(jobs.Config{Models: []*jobs.Model{testModel}, MaxQueue: 1 << 30, Broker: broker, Role: jobs.RoleGateway},
		&slowGen{}, store, nopObserver{}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.Start(ctx)
	p := jobs.Params{Model: testModel.Name, Format: "glb", Steps: 3, Seed: 1, Resolution: 16, Faces: 100,
		Decode: jobs.DecodeDense, Priority: jobs.PriorityNormal, Timeout: time.Minute}
	image := make([]byte, 64<<10) // a small upload travels with its job
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		in := prepared(fmt.Appendf(nil, "picture-%d", i))
		if _, err := e.Submit(ctx, jobs.Submission{Key: jobs.CacheKey(in.Hash, p, testModel.Fingerprint),
			Model: testModel, Params: p, Input: in, Image: image}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmit: the cost of persisting a job at the API, as the
// difference between the two.
func BenchmarkSubmit(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchSubmit(b, nil) })
	b.Run("embedded-jetstream", func(b *testing.B) {
		ns, err := StartNode(NodeConfig{Name: "bench", StoreDir: filepath.Join(b.TempDir(), "nats"), Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Shutdown()
		nc, err := ConnectInProcess(ns, "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		broker, err := Open(context.Background(), Config{Conn: nc, Name: "bench", Models: []Model{{Name: testModel.Name}},
			Replicas: 1, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		defer broker.Close()
		benchSubmit(b, broker)
	})
}

// BenchmarkOpenEmbedded: starting the embedded NATS server on an existing
// data directory, connecting and opening the broker, the part of a
// server's start-up the queue adds.
func BenchmarkOpenEmbedded(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "nats")
	for b.Loop() {
		ns, err := StartNode(NodeConfig{Name: "bench", StoreDir: dir, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		nc, err := ConnectInProcess(ns, "bench")
		if err != nil {
			b.Fatal(err)
		}
		broker, err := Open(context.Background(), Config{Conn: nc, Name: "bench", Models: []Model{{Name: testModel.Name}},
			Replicas: 1, Reset: true, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		broker.Close()
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}
