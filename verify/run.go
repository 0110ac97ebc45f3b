package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Options configure a verification run.
type Options struct {
	// Seed drives every input (Inputs); Batch is the batch each graph runs
	// at, capped by its max_batch.
	Seed  uint64
	Batch int
	// Graphs limits the graphs compared; empty means all of the manifest's,
	// required ones first.
	Graphs []string
	// Tolerance bounds every output's error.
	Tolerance Tolerance
	// Sampler is the whole-pipeline case; Steps 0 skips it.
	Sampler SamplerCase
	// Band and Agreement judge the sampler's volumes (CompareSigns); Band 0
	// means the manifest's volume.refine_band.
	Band, Agreement float64
}

// DefaultOptions are what `hy3d engines verify` uses unless told otherwise:
// batch 2 (CFG's pair and a real batch for TensorRT's buckets), FP16
// tolerances, and five sampling steps decoded densely at R = 32, enough for
// a surface to form on every Hunyuan3D family while staying a few seconds
// on a CPU for the tiny models.
//
// A paint set has no occupancy volume: its default compares the graphs only
// (Sampler.Steps 0).
func DefaultOptions(m *engines.Manifest) Options {
	if m.IsPaint() {
		return Options{Batch: 2, Tolerance: Tolerance{Abs: FP16Abs, Rel: FP16Rel}, Agreement: DefaultAgreement}
	}
	return Options{
		Batch:     2,
		Tolerance: Tolerance{Abs: FP16Abs, Rel: FP16Rel},
		Sampler:   SamplerCase{Steps: 5, Guidance: m.Sampler.GuidanceScale, Resolution: 32},
		Band:      m.Volume.RefineBand,
		Agreement: DefaultAgreement,
	}
}

// Report is the outcome of comparing Got (the side under test) with Want
// (the reference side).
type Report struct {
	Set       string         `json:"set"`
	Got       string         `json:"got"`
	Want      string         `json:"want"`
	Seed      uint64         `json:"seed"`
	Tolerance Tolerance      `json:"tolerance"`
	Graphs    []GraphReport  `json:"graphs"`
	Sampler   *SamplerReport `json:"sampler,omitempty"`
	Pass      bool           `json:"pass"`
}

// GraphReport is the comparison of one graph's outputs.
type GraphReport struct {
	Graph   string       `json:"graph"`
	Batch   int          `json:"batch"`
	Outputs []Comparison `json:"outputs,omitempty"`
	Error   string       `json:"error,omitempty"` // a side failed to run it
	Pass    bool         `json:"pass"`
}

// SamplerReport is the comparison of the sampler's final volumes.
type SamplerReport struct {
	Case   SamplerCase    `json:"case"`
	Signs  *SignAgreement `json:"signs,omitempty"`
	Logits *Stats         `json:"logits_abs,omitempty"` // |Δlogit| over the grid, for information
	Error  string         `json:"error,omitempty"`
	Pass   bool           `json:"pass"`
}

// Run compares got with want on every graph of set and on the sampler case.
// A side failing on a graph fails that graph's entry and the run goes on;
// only ctx ending stops it early, with ctx's error.
func Run(ctx context.Context, set *engines.Set, got, want Backend, o Options) (*Report, error) {
	r := &Report{Set: set.Name, Got: got.Name(), Want: want.Name(), Seed: o.Seed, Tolerance: o.Tolerance, Pass: true}
	for _, name := range GraphOrder(&set.Manifest, o.Graphs) {
		g, ok := set.Graphs[name]
		if !ok {
			return nil, fmt.Errorf("verify: model set %q has no graph %q", set.Name, name)
		}
		gr := compareGraph(ctx, &set.Manifest, name, min(max(o.Batch, 1), g.MaxBatch), o, got, want)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		r.Graphs = append(r.Graphs, gr)
		r.Pass = r.Pass && gr.Pass
	}
	if o.Sampler.Steps > 0 && set.IsPaint() {
		return nil, fmt.Errorf("verify: paint set %q: the sampler comparison decodes an occupancy volume, which paint sets do not have (use 0 steps)", set.Name)
	}
	if o.Sampler.Steps > 0 {
		band := o.Band
		if band <= 0 {
			band = set.Volume.RefineBand
		}
		sr := compareSampler(ctx, o.Sampler, band, o.Agreement, got, want)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		r.Sampler = sr
		r.Pass = r.Pass && sr.Pass
	}
	return r, nil
}

// GraphOrder is the graphs to compare: only (in the manifest) if given, else
// every graph of the manifest, the required ones in pipeline order first
// (a paint set's: engines.RequiredPaintGraphs of its version).
func GraphOrder(m *engines.Manifest, only []string) []string {
	if len(only) > 0 {
		return slices.Clone(only)
	}
	required := engines.RequiredGraphs
	if m.IsPaint() && m.Paint != nil {
		required = engines.RequiredPaintGraphs[m.Paint.Version]
	}
	var names []string
	for _, n := range required {
		if _, ok := m.Graphs[n]; ok {
			names = append(names, n)
		}
	}
	var rest []string
	for n := range m.Graphs {
		if !slices.Contains(names, n) {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

func compareGraph(ctx context.Context, m *engines.Manifest, graph string, batch int, o Options, got, want Backend) GraphReport {
	gr := GraphReport{Graph: graph, Batch: batch}
	fail := func(err error) GraphReport {
		gr.Error, gr.Pass = oneLine(err), false
		return gr
	}
	in, err := Inputs(m, graph, batch, o.Seed)
	if err != nil {
		return fail(err)
	}
	a, err := got.Run(ctx, graph, in)
	if err != nil {
		return fail(err)
	}
	b, err := want.Run(ctx, graph, in)
	if err != nil {
		return fail(err)
	}
	gr.Pass = true
	var errs []error
	for _, spec := range m.Graphs[graph].Outputs {
		ta, okA := find(a, spec.Name)
		tb, okB := find(b, spec.Name)
		switch {
		case !okA || !okB:
			errs = append(errs, fmt.Errorf("output %q missing (%s: %v, %s: %v)", spec.Name, got.Name(), okA, want.Name(), okB))
			continue
		case !slices.Equal(ta.Shape, tb.Shape):
			errs = append(errs, fmt.Errorf("output %q has shape %v on %s, %v on %s", spec.Name, ta.Shape, got.Name(), tb.Shape, want.Name()))
			continue
		}
		c, err := Compare(spec.Name, ta.Shape, ta.Data, tb.Data, o.Tolerance)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gr.Outputs = append(gr.Outputs, c)
		gr.Pass = gr.Pass && c.Pass
	}
	if err := errors.Join(errs...); err != nil {
		gr.Error, gr.Pass = oneLine(err), false
	}
	return gr
}

func compareSampler(ctx context.Context, c SamplerCase, band, agreement float64, got, want Backend) *SamplerReport {
	sr := &SamplerReport{Case: c}
	fail := func(err error) *SamplerReport {
		sr.Error, sr.Pass = oneLine(err), false
		return sr
	}
	a, err := got.Volume(ctx, c)
	if err != nil {
		return fail(err)
	}
	b, err := want.Volume(ctx, c)
	if err != nil {
		return fail(err)
	}
	if a.Resolution != b.Resolution || len(a.Values) != len(b.Values) {
		return fail(fmt.Errorf("volumes differ in size: R=%d (%d points) on %s, R=%d (%d points) on %s",
			a.Resolution, len(a.Values), got.Name(), b.Resolution, len(b.Values), want.Name()))
	}
	if a.Picture != b.Picture {
		return fail(fmt.Errorf("the test picture preprocesses differently on %s and %s (hashes %x and %x)",
			got.Name(), want.Name(), a.Picture[:6], b.Picture[:6]))
	}
	s, err := CompareSigns(a.Values, b.Values, band, agreement)
	if err != nil {
		return fail(err)
	}
	// The comparison of every logit is informative only: its tolerance
	// would have to scale with the model, the signs near the surface are
	// what the mesh depends on.
	n := int64(len(a.Values))
	if lc, err := Compare("logits", []int64{n}, a.Values, b.Values, Tolerance{Abs: math.Inf(1), Rel: math.Inf(1)}); err == nil {
		sr.Logits = &lc.Abs
	}
	sr.Signs, sr.Pass = &s, s.Pass
	return sr
}

func find(ts []tensor.Tensor, name string) (tensor.Tensor, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return tensor.Tensor{}, false
}

// oneLine flattens a (possibly joined) error for a report cell.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
