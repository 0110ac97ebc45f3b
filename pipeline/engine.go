package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Engine is one loaded graph on some backend (a TensorRT engine, an ONNX
// Runtime session, or a test fake). Run takes the graph's inputs by name and
// returns its outputs in the order of Outputs; the first dim of every tensor
// is the batch, at most MaxBatch.
type Engine interface {
	Run(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)
	Inputs() []tensor.Info
	Outputs() []tensor.Info
	MaxBatch() int
	Close() error
}

// Loader turns the graphs of a model set into engines on one backend.
type Loader interface {
	// Name is the backend's name as reported to users ("ort", "trt").
	Name() string
	Load(ctx context.Context, set *engines.Set, graph string) (Engine, error)
	Close() error
}

// graphs holds the loaded engines of one model set.
type graphs struct {
	conditioner, dit, vaeLatents, vaeGeometry Engine
	matting                                   Engine // nil when the set has none
}

func loadGraphs(ctx context.Context, set *engines.Set, l Loader) (*graphs, error) {
	g := &graphs{}
	slots := []struct {
		name string
		dst  *Engine
	}{
		{engines.Conditioner, &g.conditioner},
		{engines.DiT, &g.dit},
		{engines.VAELatents, &g.vaeLatents},
		{engines.VAEGeometry, &g.vaeGeometry},
	}
	if _, ok := set.Graphs[engines.Matting]; ok {
		slots = append(slots, struct {
			name string
			dst  *Engine
		}{engines.Matting, &g.matting})
	}
	for _, s := range slots {
		e, err := l.Load(ctx, set, s.name)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("load %s on %s: %w", s.name, l.Name(), err), g.close())
		}
		*s.dst = e
	}
	return g, nil
}

func (g *graphs) close() error {
	var errs []error
	for _, e := range []Engine{g.conditioner, g.dit, g.vaeLatents, g.vaeGeometry, g.matting} {
		if e != nil {
			errs = append(errs, e.Close())
		}
	}
	return errors.Join(errs...)
}

// maxBatch is the batch an engine takes per call: its own limit, capped by
// the manifest's when both are set.
func maxBatch(e Engine, g engines.Graph) int {
	n := e.MaxBatch()
	if g.MaxBatch > 0 && (n < 1 || g.MaxBatch < n) {
		n = g.MaxBatch
	}
	if n < 1 {
		n = 1
	}
	return n
}

// run calls e with the named inputs and returns the output called out (or
// the only output), checking that its element count is what the caller
// expects: a wrong count means the engine violates docs/engine-contract.md.
func run(ctx context.Context, e Engine, graph, out string, want int, inputs ...tensor.Tensor) ([]float32, error) {
	outs, err := e.Run(ctx, inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", graph, err)
	}
	var t *tensor.Tensor
	for i := range outs {
		if outs[i].Name == out {
			t = &outs[i]
			break
		}
	}
	if t == nil && len(outs) == 1 {
		t = &outs[0]
	}
	if t == nil {
		return nil, fmt.Errorf("%s: no output %q among %d outputs", graph, out, len(outs))
	}
	if len(t.Data) != want {
		return nil, fmt.Errorf("%s: output %q has %d values (shape %v), want %d: %w",
			graph, out, len(t.Data), t.Shape, want, tensor.ErrShape)
	}
	return t.Data, nil
}
