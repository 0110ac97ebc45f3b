package main

import (
	"context"
	"sync"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// costGenerator is a jobs.Generator whose calls take the time the cost
// model gives them, divided by scale. The GPU runs one call at a time, and
// so does the CPU: the stages after decoding use all its cores, so two of
// them side by side would take as long as one after the other.
type costGenerator struct {
	m        costModel
	scale    float64
	gpu, cpu sync.Mutex
}

type costState struct{ step, steps int }

func (s *costState) Done() bool { return s.step >= s.steps }

// busy holds the GPU for d, scaled.
func (g *costGenerator) busy(ctx context.Context, d time.Duration) error {
	g.gpu.Lock()
	defer g.gpu.Unlock()
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
