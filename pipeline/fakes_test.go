package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// fakeEngine computes each output row from the same rows of its inputs, so
// that batching never changes a result: the property the batching tests pin
// on the pipeline's side.
type fakeEngine struct {
	name     string
	inputs   []tensor.Info
	outputs  []tensor.Info
	maxBatch int
	// row computes one batch row's output from that row's inputs.
	row func(in map[string][]float32) []float32
	// failAt makes the n-th call (1-based) fail.
	failAt int

	mu     sync.Mutex
	calls  int
	batch  []int
	seen   []map[string]tensor.Tensor
	closed bool
}

func (e *fakeEngine) Inputs() []tensor.Info  { return e.inputs }
func (e *fakeEngine) Outputs() []tensor.Info { return e.outputs }
func (e *fakeEngine) MaxBatch() int          { return e.maxBatch }
func (e *fakeEngine) Close() error           { e.closed = true; return nil }

func (e *fakeEngine) Run(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.calls++
	call := e.calls
	e.mu.Unlock()
	if call == e.failAt {
		return nil, errors.New("injected failure")
	}
	byName := map[string]tensor.Tensor{}
	for _, t := range inputs {
		byName[t.Name] = t
	}
	b := -1
	for _, info := range e.inputs {
		t, ok := byName[info.Name]
		if !ok {
			return nil, fmt.Errorf("%s: input %q: %w", e.name, info.Name, tensor.ErrMissingInput)
		}
		if err := t.Check(info); err != nil {
			return nil, err
		}
		if b >= 0 && int(t.Shape[0]) != b {
			return nil, fmt.Errorf("%s: batch mismatch: %w", e.name, tensor.ErrShape)
		}
		b = int(t.Shape[0])
	}
	if len(byName) != len(e.inputs) {
		return nil, fmt.Errorf("%s: %d inputs, want %d: %w", e.name, len(byName), len(e.inputs), tensor.ErrUnknownInput)
	}
	if b > e.maxBatch {
		return nil, fmt.Errorf("%s: batch %d > %d: %w", e.name, b, e.maxBatch, tensor.ErrBatch)
	}
	e.mu.Lock()
	e.batch = append(e.batch, b)
	e.seen = append(e.seen, byName)
	e.mu.Unlock()
	var out []float32
	var rowShape []int64
	for r := 0; r < b; r++ {
		in := map[string][]float32{}
		for name, t := range byName {
			n := len(t.Data) / b
			in[name] = t.Data[r*n : (r+1)*n]
			if name == "queries" {
				rowShape = []int64{t.Shape[1]}
			}
		}
		out = append(out, e.row(in)...)
	}
	shape := append([]int64{int64(b)}, e.outputs[0].Dims[1:]...)
	if rowShape != nil {
		shape = append([]int64{int64(b)}, rowShape...)
	}
	return []tensor.Tensor{{Name: e.outputs[0].Name, Shape: shape, Data: out}}, nil
}

// fakeSet describes a small model set with the contract of docs/engine-contract.md.
type fakeSet struct {
	T, D, L, C, W, S int
	guidance         string
	kind             string
	maxBatch         map[string]int
}

func newFakeSet() fakeSet {
	return fakeSet{T: 5, D: 4, L: 6, C: 3, W: 2, S: 8, guidance: GuidanceCFG, kind: KindFlowEuler,
		maxBatch: map[string]int{engines.Conditioner: 2, engines.DiT: 4, engines.VAELatents: 2, engines.VAEGeometry: 3}}
}

func (f fakeSet) manifest() *engines.Manifest {
	m := &engines.Manifest{
		Name: "fake", Family: "hunyuan3d-2mini", ScaleFactor: 1.25,
		Image:   engines.ImageSpec{Size: f.S, CanvasSize: f.S, BorderRatio: 0.15},
		Tokens:  engines.TokenSpec{CondTokens: f.T, CondDim: f.D, LatentTokens: f.L, LatentChannels: f.C, FeatureWidth: f.W},
		Sampler: engines.SamplerSpec{Kind: f.kind, Guidance: f.guidance, Steps: 6, GuidanceScale: 5, PCMTimesteps: 100},
		Volume:  engines.VolumeSpec{Bounds: 1.01, Resolution: 32, ChunkPoints: 500, CoarseResolution: 8, RefineBand: 0.95},
		Graphs:  map[string]engines.Graph{},
	}
	for _, g := range engines.RequiredGraphs {
		m.Graphs[g] = engines.Graph{ONNX: g + ".onnx", MaxBatch: f.maxBatch[g]}
	}
	return m
}

func info(name string, dims ...int64) tensor.Info {
	return tensor.Info{Name: name, DType: tensor.Float32, Dims: dims}
}

func sum(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

// fakes builds engines: the conditioner averages the picture into every
// token, the DiT pulls x toward a cond-dependent target with a σ- and
// guidance-dependent speed, vae_latents scales, and the geometry decoder is a
// sphere whose radius the features set (positive inside).
func (f fakeSet) fakes() map[string]*fakeEngine {
	td, lc := f.T*f.D, f.L*f.C
	dit := &fakeEngine{
		name:     engines.DiT,
		inputs:   []tensor.Info{info("latents", -1, int64(f.L), int64(f.C)), info("timestep", -1), info("cond", -1, int64(f.T), int64(f.D))},
		outputs:  []tensor.Info{info("velocity", -1, int64(f.L), int64(f.C))},
		maxBatch: f.maxBatch[engines.DiT],
	}
	dit.row = func(in map[string][]float32) []float32 {
		x, ts, c := in["latents"], in["timestep"][0], in["cond"]
		g := float32(0)
		if gs, ok := in["guidance"]; ok {
			g = gs[0]
		}
		v := make([]float32, lc)
		for i := range v {
			target := 0.1*c[i%td] + 0.01*float32(i)
			v[i] = (target-x[i])*(1+ts) + 0.001*g
		}
		return v
	}
	if f.guidance == GuidanceEmbedded {
		dit.inputs = append(dit.inputs, info("guidance", -1))
	}
	return map[string]*fakeEngine{
		engines.Conditioner: {
			name:     engines.Conditioner,
			inputs:   []tensor.Info{info("image", -1, 3, int64(f.S), int64(f.S))},
			outputs:  []tensor.Info{info("cond", -1, int64(f.T), int64(f.D))},
			maxBatch: f.maxBatch[engines.Conditioner],
			row: func(in map[string][]float32) []float32 {
				m := sum(in["image"]) / float32(len(in["image"]))
				out := make([]float32, td)
				for i := range out {
					out[i] = m + float32(i)*0.01
				}
				return out
			},
		},
		engines.DiT: dit,
		engines.VAELatents: {
			name:     engines.VAELatents,
			inputs:   []tensor.Info{info("latents", -1, int64(f.L), int64(f.C))},
			outputs:  []tensor.Info{info("features", -1, int64(f.L), int64(f.W))},
			maxBatch: f.maxBatch[engines.VAELatents],
			row: func(in map[string][]float32) []float32 {
				out := make([]float32, f.L*f.W)
				for i := range out {
					out[i] = in["latents"][i%lc] * 0.5
				}
				return out
			},
		},
		engines.VAEGeometry: {
			name:     engines.VAEGeometry,
			inputs:   []tensor.Info{info("queries", -1, -1, 3), info("features", -1, int64(f.L), int64(f.W))},
			outputs:  []tensor.Info{info("logits", -1, -1)},
			maxBatch: f.maxBatch[engines.VAEGeometry],
			row: func(in map[string][]float32) []float32 {
				q := in["queries"]
				r := 0.55 + 0.05*float32(math.Tanh(float64(sum(in["features"]))))
				out := make([]float32, len(q)/3)
				for i := range out {
					x, y, z := q[3*i], q[3*i+1], q[3*i+2]
					// An ellipsoid, so the surface is not symmetric in the axes.
					d := float32(math.Sqrt(float64(x*x + 1.5*y*y + 0.8*z*z)))
					out[i] = 8 * (r - d)
				}
				return out
			},
		},
	}
}

// fakeLoader hands out the fakes.
type fakeLoader struct{ fakes map[string]*fakeEngine }

func (l fakeLoader) Name() string { return "fake" }
func (l fakeLoader) Close() error { return nil }
func (l fakeLoader) Load(ctx context.Context, set *engines.Set, graph string) (Engine, error) {
	e, ok := l.fakes[graph]
	if !ok {
		return nil, fmt.Errorf("no fake for %s: %w", graph, tensor.ErrModelFile)
	}
	return e, nil
}
