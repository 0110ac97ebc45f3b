package trt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/hy3d/hy3d/tensor"
)

// backend is what an Engine needs from a loaded plan; the native engine
// implements it, and tests substitute a fake so that everything the Engine
// checks before a native call is tested without a GPU.
type backend interface {
	// outputShapes returns the shapes of the named outputs for inputs of
	// these shapes (their data is not read).
	outputShapes(inputs []tensor.Tensor, outputs []string) ([][]int64, error)
	// run reads inputs and fills outputs, whose names, shapes and buffers
	// the caller sets.
	run(inputs, outputs []tensor.Tensor) error
	// close releases the plan; it is idempotent.
	close()
}

// Engine is one loaded TensorRT plan. It is safe for concurrent use: runs
// on one engine take turns (its bucket contexts share one device memory
// block), waiting in Go rather than in the native call, and Close waits for
// runs in flight.
type Engine struct {
	graph    string
	inputs   []tensor.Info
	outputs  []tensor.Info
	outNames []string
	maxBatch int

	mu      sync.RWMutex
	be      backend // nil once closed
	cleanup runtime.Cleanup

	// turn admits one native run at a time. The native engine serializes
	// runs anyway; waiting here instead parks the goroutine (a caller
	// blocked in C would hold an OS thread) and lets its context end the
	// wait.
	turn chan struct{}

	// Output shapes depend only on input shapes, which barely vary between
	// calls of one graph; caching them saves a native call per run.
	shapeMu sync.Mutex
	shapes  map[string][][]int64
}

// shapeCacheLimit bounds the output-shape cache; past it the cache starts
// over (a graph called with ever-changing shapes gains nothing from it).
const shapeCacheLimit = 64

func newEngine(graph string, inputs, outputs []tensor.Info, be backend) *Engine {
	e := &Engine{
		graph:    graph,
		inputs:   inputs,
		outputs:  outputs,
		outNames: tensor.Names(outputs),
		maxBatch: maxBatchOf(inputs),
		be:       be,
		shapes:   map[string][][]int64{},
		turn:     make(chan struct{}, 1),
	}
	// The safety net for an Engine dropped without Close: its device memory
	// and contexts must not live as long as the process.
	e.cleanup = runtime.AddCleanup(e, func(be backend) { be.close() }, be)
	return e
}

// maxBatchOf is the largest batch every input's profile admits.
func maxBatchOf(inputs []tensor.Info) int {
	n := math.MaxInt
	for _, in := range inputs {
		if len(in.Max) > 0 && int(in.Max[0]) < n {
			n = int(in.Max[0])
		}
	}
	if n == math.MaxInt {
		return 1
	}
	return n
}

// Inputs describes the engine's inputs: dims with -1 for dynamic axes and
// profile 0's Min/Opt/Max.
func (e *Engine) Inputs() []tensor.Info { return cloneInfos(e.inputs) }

// Outputs describes the engine's outputs, in the order Run returns them.
func (e *Engine) Outputs() []tensor.Info { return cloneInfos(e.outputs) }

// MaxBatch is the largest batch a Run accepts (the plan's profile maximum).
func (e *Engine) MaxBatch() int { return e.maxBatch }

// Close releases the engine's GPU memory, contexts and graphs after runs in
// flight finish; later runs fail with tensor.ErrClosed. It is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.be == nil {
		return nil
	}
	e.cleanup.Stop()
	e.be.close()
	e.be = nil
	return nil
}

// Run checks the inputs against the engine (every input once, by name;
// float32 data matching its shape; static dims and profile ranges; one
// batch, at most MaxBatch), runs the engine and returns the outputs in
// Outputs order. A batch below a bucket is padded natively and the outputs
// trimmed to it. ctx ends a wait for the engine's turn; a started run (a few
// milliseconds of GPU work) is not interrupted.
func (e *Engine) Run(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trt: %s: %w", e.graph, err)
	}
	ordered, err := arrange(e.graph, e.inputs, e.maxBatch, inputs)
	if err != nil {
		return nil, err
	}

	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.be == nil {
		return nil, fmt.Errorf("trt: %s: %w", e.graph, tensor.ErrClosed)
	}
	shapes, err := e.outputShapes(ordered)
	if err != nil {
		return nil, fmt.Errorf("trt: %s: %w", e.graph, err)
	}
	outputs := make([]tensor.Tensor, len(e.outputs))
	for i, info := range e.outputs {
		n := tensor.Elements(shapes[i])
		if len(shapes[i]) == 0 || n < 1 {
			return nil, fmt.Errorf("trt: %s: output %q would have shape %v", e.graph, info.Name, shapes[i])
		}
		outputs[i] = tensor.Tensor{Name: info.Name, Shape: slices.Clone(shapes[i]), Data: make([]float32, n)}
	}
	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("trt: %s: %w", e.graph, ctx.Err())
	}
	defer func() { <-e.turn }()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trt: %s: %w", e.graph, err)
	}
	if err := e.be.run(ordered, outputs); err != nil {
		return nil, fmt.Errorf("trt: %s: %w", e.graph, err)
	}
	return outputs, nil
}

// outputShapes returns the output shapes for these inputs, from the cache
// or the backend. The caller holds e.mu.
func (e *Engine) outputShapes(inputs []tensor.Tensor) ([][]int64, error) {
	var key strings.Builder
	for _, t := range inputs {
		fmt.Fprint(&key, t.Shape)
	}
	e.shapeMu.Lock()
	shapes, ok := e.shapes[key.String()]
	e.shapeMu.Unlock()
	if ok {
		return shapes, nil
	}
	shapes, err := e.be.outputShapes(inputs, e.outNames)
	if err != nil {
		return nil, err
	}
	if len(shapes) != len(e.outputs) {
		return nil, fmt.Errorf("backend returned %d output shapes for %d outputs", len(shapes), len(e.outputs))
	}
	e.shapeMu.Lock()
	if len(e.shapes) >= shapeCacheLimit {
		clear(e.shapes)
	}
	e.shapes[key.String()] = shapes
	e.shapeMu.Unlock()
	return shapes, nil
}

// arrange orders the inputs as the engine lists them and checks them. The
// batch is checked against maxBatch and may be below the profile's minimum
// (buckets pad it); every other dim must lie within the profile.
func arrange(graph string, infos []tensor.Info, maxBatch int, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	ordered := make([]tensor.Tensor, len(infos))
	given := make([]bool, len(infos))
	for _, t := range inputs {
		i := slices.IndexFunc(infos, func(info tensor.Info) bool { return info.Name == t.Name })
		if i < 0 {
			return nil, fmt.Errorf("trt: %s: input %q (engine inputs: %s): %w",
				graph, t.Name, strings.Join(tensor.Names(infos), ", "), tensor.ErrUnknownInput)
		}
		if given[i] {
			return nil, fmt.Errorf("trt: %s: input %q given twice: %w", graph, t.Name, tensor.ErrUnknownInput)
		}
		ordered[i], given[i] = t, true
	}
	var missing []string
	for i, ok := range given {
		if !ok {
			missing = append(missing, infos[i].Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("trt: %s: input %s not given: %w", graph, strings.Join(missing, ", "), tensor.ErrMissingInput)
	}

	var errs []error
	for i, t := range ordered {
		if infos[i].DType != tensor.Float32 {
			errs = append(errs, fmt.Errorf("input %q is %s in the engine: %w", t.Name, infos[i].DType, tensor.ErrDType))
			continue
		}
		if err := t.Check(batchFree(infos[i])); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("trt: %s: %w", graph, err)
	}
	if len(ordered) == 0 || len(ordered[0].Shape) == 0 {
		return nil, fmt.Errorf("trt: %s: the engine has no batched input: %w", graph, tensor.ErrShape)
	}
	batch := ordered[0].Shape[0]
	for _, t := range ordered[1:] {
		if t.Shape[0] != batch {
			return nil, fmt.Errorf("trt: %s: input %q has batch %d, input %q has batch %d: %w",
				graph, ordered[0].Name, batch, t.Name, t.Shape[0], tensor.ErrShape)
		}
	}
	if batch > int64(maxBatch) {
		return nil, fmt.Errorf("trt: %s: batch %d above the engine's maximum %d: %w", graph, batch, maxBatch, tensor.ErrBatch)
	}
	return ordered, nil
}

// batchFree is info with the batch axis unconstrained by the profile, which
// arrange checks itself.
func batchFree(info tensor.Info) tensor.Info {
	if len(info.Min) == 0 || len(info.Max) == 0 {
		return info
	}
	info.Min, info.Max = slices.Clone(info.Min), slices.Clone(info.Max)
	info.Min[0], info.Max[0] = 1, math.MaxInt64
	return info
}

func cloneInfos(in []tensor.Info) []tensor.Info {
	out := make([]tensor.Info, len(in))
	for i, info := range in {
		out[i] = tensor.Info{
			Name:  info.Name,
			DType: info.DType,
			Dims:  slices.Clone(info.Dims),
			Min:   slices.Clone(info.Min),
			Opt:   slices.Clone(info.Opt),
			Max:   slices.Clone(info.Max),
		}
	}
	return out
}
