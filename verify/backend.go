package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
)

// Backend is one side of a comparison: something that runs a graph on given
// inputs and runs the whole sampler on a test case.
type Backend interface {
	// Name labels the side in reports ("trt", "ort (1 thread)", "reference").
	Name() string
	// Run runs one graph of the set on inputs and returns its outputs.
	Run(ctx context.Context, graph string, inputs []tensor.Tensor) ([]tensor.Tensor, error)
	// Volume runs the sampler on the case and decodes the final latents on
	// a dense grid.
	Volume(ctx context.Context, c SamplerCase) (*Volume, error)
}

// SamplerCase is one short run of the whole pipeline: the seeded Picture,
// Steps sampling steps from the seeded noise with the guidance scale, and
// dense decoding at Resolution.
type SamplerCase struct {
	Seed       uint64  `json:"seed"`
	Steps      int     `json:"steps"`
	Guidance   float64 `json:"guidance"`
	Resolution int     `json:"resolution"`
}

// Volume is the occupancy grid a SamplerCase ends with.
type Volume struct {
	Resolution int       // (R+1)³ points
	Picture    [32]byte  // pipeline.Prepared.Hash of the preprocessed picture
	Values     []float32 // logits, positive inside, pipeline.Volume's order
}

// LoaderBackend runs a model set through a pipeline Loader: every graph as
// the Loader's engine, and the sampler through a pipeline.Pipeline built on
// the same Loader. The caller keeps the Loader and closes it afterwards.
func LoaderBackend(name string, set *engines.Set, l pipeline.Loader) Backend {
	return &loaderBackend{name: name, set: set, l: l}
}

type loaderBackend struct {
	name string
	set  *engines.Set
	l    pipeline.Loader
}

func (b *loaderBackend) Name() string { return b.name }

// Run loads the graph for this one call, so that two sides never hold more
// than one graph each: a GPU and the CPU comparing a full-size model set
// hold one graph's weights at a time.
func (b *loaderBackend) Run(ctx context.Context, graph string, inputs []tensor.Tensor) (_ []tensor.Tensor, err error) {
	e, err := b.l.Load(ctx, b.set, graph)
	if err != nil {
		return nil, fmt.Errorf("%s: load %s: %w", b.name, graph, err)
	}
	defer func() { err = errors.Join(err, e.Close()) }()
	out, err := e.Run(ctx, inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: run %s: %w", b.name, graph, err)
	}
	return out, nil
}

func (b *loaderBackend) Volume(ctx context.Context, c SamplerCase) (_ *Volume, err error) {
	picture, err := Picture(c.Seed)
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(ctx, pipeline.Config{Set: b.set, Loader: b.l})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.name, err)
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	prep, err := p.Preprocess(ctx, picture)
	if err != nil {
		return nil, fmt.Errorf("%s: preprocess: %w", b.name, err)
	}
	cond, err := p.Condition(ctx, []*pipeline.Prepared{prep})
	if err != nil {
		return nil, fmt.Errorf("%s: condition: %w", b.name, err)
	}
	st, err := p.Sampler().NewState(cond[0], pipeline.SampleParams{Steps: c.Steps, Guidance: c.Guidance, Seed: c.Seed})
	if err != nil {
		return nil, fmt.Errorf("%s: sample: %w", b.name, err)
	}
	for !st.Done() {
		if err := p.Sampler().Step(ctx, []*pipeline.SampleState{st}); err != nil {
			return nil, fmt.Errorf("%s: sample step %d: %w", b.name, st.StepIndex()+1, err)
		}
	}
	vols, err := p.Decode(ctx, [][]float32{st.Latents()}, []pipeline.DecodeParams{{Resolution: c.Resolution, Mode: pipeline.DecodeDense}})
	if err != nil {
		return nil, fmt.Errorf("%s: decode: %w", b.name, err)
	}
	return &Volume{Resolution: vols[0].Resolution, Picture: prep.Hash, Values: vols[0].Values}, nil
}
