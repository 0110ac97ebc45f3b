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
	// ReferenceP99MS is fcfsReferenceP99 of the same arrivals.
	ReferenceP99MS float64 `json:"fcfs_reference_p99_ms,omitempty"`
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
	store, err := results.NewStore(dir, 64<<20, 0, results.Options{}, zerolog.Nop())
	if err != nil {
		return outcome{}, err
	}
	defer store.Close()
	model := &jobs.Model{Name: cfg.model.Name, Fingerprint: "schedsim", MaxBatch: cfg.maxBatch}
	obs := &ditBatches{}
	e := jobs.New(jobs.Config{Models: []*jobs.Model{model}, MaxQueue: 100_000, MaxBatch: cfg.maxBatch, Policy: cfg.policy,
		Finishers: cfg.workers},
		newCostGenerator(cfg.model, cfg.scale), store, obs, zerolog.Nop())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	e.Start(runCtx)
	defer func() {
		expired, cancel := context.WithCancel(context.Background())
		cancel()
		_ = e.Drain(expired)
	}()

	var arrivals []float64
	if cfg.rate > 0 {
		arrivals = poissonArrivals(cfg.jobs, cfg.rate, cfg.seed)
	}
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
		if arrivals != nil {
			next = start.Add(time.Duration(arrivals[i] / cfg.scale * float64(time.Second)))
			select {
			case <-time.After(time.Until(next)):
			case <-ctx.Done():
				return outcome{}, ctx.Err()
			}
		}
		p := jobs.Params{Model: model.Name, Steps: cfg.model.Steps, Seed: int64(i), Priority: jobs.PriorityNormal,
			Timeout: time.Hour, Decode: jobs.DecodeCoarseToFine}
		arrived := time.Now()
		id, err := e.Submit(ctx, jobs.Submission{Key: jobs.CacheKey([32]byte{}, p, "schedsim"), Model: model, Params: p,
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
	out.P50MS, out.P99MS = percentile(lat, 0.5), percentile(lat, 0.99)
	if arrivals != nil {
		out.ReferenceP99MS = fcfsReferenceP99(cfg.model, cfg.maxBatch, arrivals, 1)
	}
	obs.mu.Lock()
	if obs.calls > 0 {
		out.MeanDiTBatch = float64(obs.jobs) / float64(obs.calls)
	}
	obs.mu.Unlock()
	return out, nil
}

// poissonArrivals are n arrival times, in seconds of model time, of a
// Poisson process at rate per second: exponential gaps.
func poissonArrivals(n int, rate float64, seed int64) []float64 {
	rng := rand.New(rand.NewSource(seed))
	at := make([]float64, n)
	t := 0.0
	for i := range at {
		t += rng.ExpFloat64() / rate
		at[i] = t
	}
	return at
}

// fcfsReferenceP99 is the p99 latency, in ms, of the same arrivals on gpus
// GPUs behind one queue, each serving jobs one after another, first come
// first served (the next job goes to the GPU that is free first, as the
// cluster's workers take jobs when they have room), each job taking the GPU
// time it costs at full batches and then, with its GPU already free for the
// next, the rest of a lone job's time. No scheduler of one GPU whose calls
// cost a + b·rows does much better: batching saves only the a parts, and
// sharing the GPU among jobs (bigger batches) only delays each of them.
func fcfsReferenceP99(m costModel, maxBatch int, arrivals []float64, gpus int) float64 {
	service := 1 / m.capacity(maxBatch) // seconds of the busier resource per job
	alone := m.alone().Seconds()
	lat := make([]float64, len(arrivals))
	free := make([]float64, gpus) // when each GPU can take its next job
	for i, a := range arrivals {
		first := 0
		for g := range free {
			if free[g] < free[first] {
				first = g
			}
		}
		start := max(a, free[first])
		free[first] = start + service
		lat[i] = (start - a + alone) * 1000
	}
	slices.Sort(lat)
	return percentile(lat, 0.99)
}

// sizingGPUs are the GPU counts of the sizing table.
var sizingGPUs = []int{1, 2, 4, 8}

// sizingRow is one load of the sizing table: the FCFS reference's p99 on
// each of sizingGPUs, each GPU offered that share of its capacity.
type sizingRow struct {
	Load  float64
	P99MS []float64 // per sizingGPUs
}

// sizing computes the FCFS reference over n Poisson arrivals per cell: how
// many GPUs of this cost model keep the p99 near a job alone at each load.
// It is arithmetic only, so n can be large enough for a steady-state p99
// (a few hundred arrivals understate it).
func sizing(m costModel, maxBatch int, loads []float64, n int, seed int64) []sizingRow {
	var rows []sizingRow
	for _, load := range loads {
		row := sizingRow{Load: load}
		for _, g := range sizingGPUs {
			arrivals := poissonArrivals(n, load*float64(g)*m.capacity(maxBatch), seed)
			row.P99MS = append(row.P99MS, fcfsReferenceP99(m, maxBatch, arrivals, g))
		}
		rows = append(rows, row)
	}
	return rows
}

// percentile is the nearest-rank percentile p of sorted values.
func percentile(sorted []float64, p float64) float64 {
	return sorted[max(int(math.Ceil(p*float64(len(sorted))))-1, 0)]
}

// tempRoot keeps the result store in memory where the system offers it, so
// that writing results does not weigh on the timings.
func tempRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}
