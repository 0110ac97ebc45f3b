package main

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// simConfig is one simulation's setting.
type simConfig struct {
	model    costModel
	policy   jobs.Policy
	maxBatch int
	workers  int     // the engine's finishers
	scale    float64 // model time ÷ wall time
	jobs     int
	rate     float64 // arrivals per second of model time; 0: one job alone
	seed     int64
}

// outcome is what one simulation measured, in model time.
type outcome struct {
	Policy       jobs.Policy `json:"policy"`
	Load         float64     `json:"load"` // arrival rate ÷ capacity
	Jobs         int         `json:"jobs"`
	Succeeded    int         `json:"succeeded"`
	Refused      int         `json:"refused"`
	PerSecond    float64     `json:"jobs_per_second"`
	P50MS        float64     `json:"p50_ms"`
	P99MS        float64     `json:"p99_ms"`
	MeanDiTBatch float64     `json:"mean_dit_batch"`
}

// ditBatches counts the jobs of every DiT step; the other observations are
// of no interest here.
type ditBatches struct {
	mu          sync.Mutex
	calls, jobs int
}

func (d *ditBatches) CacheLookup(string) {}
func (d *ditBatches) Coalesced()         {}
func (d *ditBatches) Shed(string)        {}
func (d *ditBatches) Batch(graph string, size int) {
	if graph != "dit" {
		return
	}
	d.mu.Lock()
	d.calls++
	d.jobs += size
	d.mu.Unlock()
}
func (d *ditBatches) Stage(string, time.Duration)                                      {}
func (d *ditBatches) Finished(string, string, time.Duration, time.Duration, time.Time) {}

// simulate runs cfg.jobs jobs with Poisson arrivals through the real job
// engine over a costGenerator and measures their latencies from arrival to
// result.
func simulate(ctx context.Context, cfg simConfig) (outcome, error) {
	dir, err := os.MkdirTemp(tempRoot(), "hy3d-schedsim-")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)
	store, err := results.NewStore(dir, 64<<20, 0, zerolog.Nop())
	if err != nil {
		return outcome{}, err
	}
	defer store.Close()
	model := &jobs.Model{Name: cfg.model.Name, Fingerprint: "schedsim", MaxBatch: cfg.maxBatch}
	obs := &ditBatches{}
	e := jobs.New(jobs.Config{Models: []*jobs.Model{model}, MaxQueue: 100_000, MaxBatch: cfg.maxBatch, Policy: cfg.policy,
		Finishers: cfg.workers},
		&costGenerator{m: cfg.model, scale: cfg.scale}, store, obs, zerolog.Nop())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	e.Start(runCtx)
	defer func() {
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		_ = e.Drain(expired)
	}()

	rng := rand.New(rand.NewSource(cfg.seed))
	type done struct {
		latency time.Duration
		at      time.Time
		ok      bool
	}
	results := make(chan done, cfg.jobs)
	start := time.Now()
	next := start
	refused := 0
	for i := range cfg.jobs {
		if cfg.rate > 0 {
			// Exponential gaps: a Poisson process at cfg.rate, in wall time.
			next = next.Add(time.Duration(rng.ExpFloat64() / (cfg.rate * cfg.scale) * float64(time.Second)))
			select {
			case <-time.After(time.Until(next)):
			case <-ctx.Done():
				return outcome{}, ctx.Err()
			}
		}
		p := jobs.Params{Model: model.Name, Steps: cfg.model.Steps, Seed: int64(i), Priority: jobs.PriorityNormal,
			Timeout: time.Hour, Decode: jobs.DecodeCoarseToFine}
		arrived := time.Now()
		id, err := e.Submit(context.Background(), jobs.Submission{Key: jobs.CacheKey([32]byte{}, p, "schedsim"), Model: model, Params: p,
			Input: &jobs.Prepared{}})
		if err != nil {
			refused++
			continue
		}
		wait := func() {
			snap, err := e.Wait(ctx, id)
			results <- done{latency: time.Since(arrived), at: time.Now(), ok: err == nil && snap.State == jobs.StateSucceeded}
		}
		if cfg.rate == 0 {
			wait() // alone: each job on an idle engine
		} else {
			go wait()
		}
	}
	var lat []float64
	var last time.Time
	out := outcome{Policy: cfg.policy, Jobs: cfg.jobs, Refused: refused}
	for range cfg.jobs - refused {
		d := <-results
		if !d.ok {
			continue
		}
		out.Succeeded++
		lat = append(lat, float64(d.latency)*cfg.scale/float64(time.Millisecond))
		if d.at.After(last) {
			last = d.at
		}
	}
	if out.Succeeded == 0 {
		return out, fmt.Errorf("no job succeeded")
	}
	out.PerSecond = float64(out.Succeeded) / (last.Sub(start).Seconds() * cfg.scale)
	slices.Sort(lat)
	rank := func(p float64) float64 { return lat[max(int(math.Ceil(p*float64(len(lat))))-1, 0)] }
	out.P50MS, out.P99MS = rank(0.5), rank(0.99)
	obs.mu.Lock()
	if obs.calls > 0 {
		out.MeanDiTBatch = float64(obs.jobs) / float64(obs.calls)
	}
	obs.mu.Unlock()
	return out, nil
}

// tempRoot keeps the result store in memory where the system offers it, so
// that writing results does not weigh on the timings.
func tempRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}
