package main

import (
	"context"
	"sync"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// costGenerator is a jobs.Generator whose calls take the time the cost
// model gives them, divided by scale. The GPU runs one call at a time, in
// the order they were issued, as a device's work queue does (a mutex would
// let the step loop, which takes the GPU again as soon as it lets it go,
// keep a finisher's decode waiting for several steps); the CPU runs one job's
// stages after decoding at a time, since they use all its cores, so two of
// them side by side would take as long as one after the other.
type costGenerator struct {
	m     costModel
	scale float64
	gpu   chan struct{} // a FIFO lock: blocked senders are served in order
	cpu   sync.Mutex
}

func newCostGenerator(m costModel, scale float64) *costGenerator {
	return &costGenerator{m: m, scale: scale, gpu: make(chan struct{}, 1)}
}

type costState struct{ step, steps int }

func (s *costState) Done() bool { return s.step >= s.steps }

// busy holds the GPU for d, scaled.
func (g *costGenerator) busy(ctx context.Context, d time.Duration) error {
	select {
	case g.gpu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.gpu }()
	return g.sleep(ctx, d)
}

func (g *costGenerator) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(time.Duration(float64(d) / g.scale))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *costGenerator) Start(ctx context.Context, batch []jobs.Job) ([]jobs.Sampling, []error) {
	states := make([]jobs.Sampling, len(batch))
	errs := make([]error, len(batch))
	err := g.busy(ctx, g.m.Condition.cost(len(batch)))
	for i := range batch {
		if err != nil {
			errs[i] = err
			continue
		}
		states[i] = &costState{steps: g.m.Steps}
	}
	return states, errs
}

func (g *costGenerator) Step(ctx context.Context, states []jobs.Sampling) error {
	if err := g.busy(ctx, g.m.DiT.cost(len(states)*g.m.RowsPerJob)); err != nil {
		return err
	}
	for _, s := range states {
		s.(*costState).step++
	}
	return nil
}

func (g *costGenerator) Finish(ctx context.Context, j jobs.Job, _ jobs.Sampling) jobs.Output {
	if err := g.busy(ctx, g.m.Decode.cost(1)); err != nil {
		return jobs.Output{Err: err}
	}
	g.cpu.Lock()
	err := g.sleep(ctx, time.Duration(g.m.MeshMS*float64(time.Millisecond)))
	g.cpu.Unlock()
	if err != nil {
		return jobs.Output{Err: err}
	}
	out := jobs.Output{Meshes: map[string][]byte{}}
	for _, f := range results.Formats {
		out.Meshes[f] = []byte(f + " " + j.ID)
	}
	return out
}
