package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// fakeSet has two graphs: "double" (y = 2x, [B,4]) and "split" (two outputs,
// lo = x and hi = x+1, [B,3]). Their ONNX files are placeholders: only the
// reference reads them, for their checksums.
func fakeSet() *engines.Set {
	return &engines.Set{Manifest: engines.Manifest{
		Name:   "fake",
		Volume: engines.VolumeSpec{Bounds: 1.01, ChunkPoints: 16, RefineBand: 0.95},
		Graphs: map[string]engines.Graph{
			"double": {ONNX: "double.onnx", MaxBatch: 4,
				Inputs:  []engines.TensorSpec{{Name: "x", Shape: []int64{-1, 4}}},
				Outputs: []engines.TensorSpec{{Name: "y", Shape: []int64{-1, 4}}}},
			"split": {ONNX: "split.onnx", MaxBatch: 1,
				Inputs:  []engines.TensorSpec{{Name: "x", Shape: []int64{-1, 3}}},
				Outputs: []engines.TensorSpec{{Name: "lo", Shape: []int64{-1, 3}}, {Name: "hi", Shape: []int64{-1, 3}}}},
		},
	}, FS: fstest.MapFS{"double.onnx": {Data: []byte("double v1")}, "split.onnx": {Data: []byte("split v1")}}}
}

// fake is a Backend computing fakeSet's graphs exactly, then letting a test
// spoil an output or the volume.
type fake struct {
	name   string
	spoil  func(graph, output string, data []float32)
	fail   map[string]error // per graph
	volume func(c SamplerCase) *Volume
	runs   int
}

func (f *fake) Name() string { return f.name }

func (f *fake) Run(_ context.Context, graph string, in []tensor.Tensor) ([]tensor.Tensor, error) {
	f.runs++
	if err := f.fail[graph]; err != nil {
		return nil, err
	}
	x := in[0]
	apply := func(name string, fn func(float32) float32) tensor.Tensor {
		out := tensor.Tensor{Name: name, Shape: slices.Clone(x.Shape), Data: make([]float32, len(x.Data))}
		for i, v := range x.Data {
			out.Data[i] = fn(v)
		}
		if f.spoil != nil {
			f.spoil(graph, name, out.Data)
		}
		return out
	}
	switch graph {
	case "double":
		return []tensor.Tensor{apply("y", func(v float32) float32 { return 2 * v })}, nil
	case "split":
		return []tensor.Tensor{apply("lo", func(v float32) float32 { return v }), apply("hi", func(v float32) float32 { return v + 1 })}, nil
	}
	return nil, errors.New("no such graph")
}

func (f *fake) Volume(_ context.Context, c SamplerCase) (*Volume, error) {
	if f.volume != nil {
		return f.volume(c), nil
	}
	return sphere(c.Resolution, 0), nil
}

// sphere is the signed field 0.5 − |p| of a ball on a (r+1)³ grid over
// [−1, 1]³, its radius grown by grow.
func sphere(r int, grow float64) *Volume {
	n := r + 1
	v := &Volume{Resolution: r, Values: make([]float32, n*n*n)}
	c := func(i int) float64 { return 2*float64(i)/float64(r) - 1 }
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			for k := 0; k < n; k++ {
				v.Values[(i*n+j)*n+k] = float32(0.5 + grow - math.Sqrt(c(i)*c(i)+c(j)*c(j)+c(k)*c(k)))
			}
		}
	}
	return v
}

func testOptions() Options {
	return Options{Batch: 2, Tolerance: Tolerance{Abs: FP16Abs, Rel: FP16Rel},
		Sampler: SamplerCase{Steps: 3, Guidance: 5, Resolution: 16}, Band: 0.2, Agreement: DefaultAgreement}
}

func TestRunPassesWhenBothSidesAgree(t *testing.T) {
	set := fakeSet()
	r, err := Run(context.Background(), set, &fake{name: "a"}, &fake{name: "b"}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass || r.Got != "a" || r.Want != "b" || len(r.Graphs) != 2 || r.Sampler == nil || !r.Sampler.Pass {
		t.Fatalf("report %+v, want a pass over both graphs and the sampler", r)
	}
	// The batch is capped by each graph's max_batch.
	if r.Graphs[0].Graph != "double" || r.Graphs[0].Batch != 2 || r.Graphs[1].Graph != "split" || r.Graphs[1].Batch != 1 {
		t.Errorf("graphs %+v, want double at batch 2 then split at its max_batch 1", r.Graphs)
	}
	if n := len(r.Graphs[1].Outputs); n != 2 {
		t.Errorf("split: %d outputs compared, want 2", n)
	}
}

func TestRunFailsTheGraphWithAnOutlierAndNamesIt(t *testing.T) {
	got := &fake{name: "trt", spoil: func(graph, out string, d []float32) {
		if graph == "split" && out == "hi" {
			d[2] += 0.5
		}
	}}
	r, err := Run(context.Background(), fakeSet(), got, &fake{name: "ort"}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.Pass || !r.Graphs[0].Pass || r.Graphs[1].Pass {
		t.Fatalf("pass %v, graphs %+v; want only split to fail", r.Pass, r.Graphs)
	}
	lo, hi := r.Graphs[1].Outputs[0], r.Graphs[1].Outputs[1]
	if !lo.Pass || hi.Pass || hi.Failed != 1 || hi.Worst == nil || !slices.Equal(hi.Worst.Index, []int64{0, 2}) {
		t.Errorf("lo %+v\nhi %+v; want hi to fail at [0 2] alone", lo, hi)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trt vs ort", "split", "hi", "1/3", "[0,2]", "FAIL", "result: FAIL"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRunReportsNaNOutputs(t *testing.T) {
	got := &fake{name: "trt", spoil: func(graph, _ string, d []float32) {
		if graph == "double" {
			d[5] = float32(math.NaN())
		}
	}}
	r, err := Run(context.Background(), fakeSet(), got, &fake{name: "ort"}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	c := r.Graphs[0].Outputs[0]
	if r.Pass || c.NaN != 1 || c.Worst == nil || c.Worst.Flat != 5 {
		t.Errorf("comparison %+v, want one NaN at element 5 and a failure", c)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("a report with NaN must still encode as JSON: %v", err)
	}
}

func TestRunGoesOnAfterASideFailsOnAGraph(t *testing.T) {
	got := &fake{name: "trt", fail: map[string]error{"double": errors.New("plan built for another GPU")}}
	r, err := Run(context.Background(), fakeSet(), got, &fake{name: "ort"}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.Pass || r.Graphs[0].Pass || !strings.Contains(r.Graphs[0].Error, "another GPU") || !r.Graphs[1].Pass {
		t.Errorf("graphs %+v; want double failed with the side's error and split compared", r.Graphs)
	}
}

func TestRunComparesOnlyTheGraphsAsked(t *testing.T) {
	o := testOptions()
	o.Graphs = []string{"split"}
	o.Sampler.Steps = 0
	got := &fake{name: "a"}
	r, err := Run(context.Background(), fakeSet(), got, &fake{name: "b"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Graphs) != 1 || r.Graphs[0].Graph != "split" || r.Sampler != nil || got.runs != 1 {
		t.Errorf("report %+v after %d runs; want split alone and no sampler", r, got.runs)
	}
	o.Graphs = []string{"nope"}
	if _, err := Run(context.Background(), fakeSet(), got, &fake{name: "b"}, o); err == nil {
		t.Error("an unknown graph was accepted")
	}
}

func TestRunJudgesTheSamplerOnSignsNearTheSurface(t *testing.T) {
	tests := []struct {
		name string
		grow float64
		pass bool
	}{
		{"a slightly different field passes", 0.001, true},
		{"a ball a fifth larger fails", 0.1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := &fake{name: "trt", volume: func(c SamplerCase) *Volume { return sphere(c.Resolution, tc.grow) }}
			r, err := Run(context.Background(), fakeSet(), got, &fake{name: "ort"}, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			s := r.Sampler
			if s.Pass != tc.pass || r.Pass != tc.pass || s.Signs == nil || s.Logits == nil {
				t.Fatalf("sampler %+v, want pass %v", s, tc.pass)
			}
			if s.Signs.Near == 0 || s.Signs.Points != 17*17*17 {
				t.Errorf("signs %+v: want the near-surface points of a 17³ grid counted", *s.Signs)
			}
			if math.Abs(s.Logits.Max-tc.grow) > 1e-6 {
				t.Errorf("|Δlogit| max %v, want %v", s.Logits.Max, tc.grow)
			}
		})
	}
}

func TestRunFailsTheSamplerWhenThePictureDiffers(t *testing.T) {
	got := &fake{name: "trt", volume: func(c SamplerCase) *Volume {
		v := sphere(c.Resolution, 0)
		v.Picture[0] = 1
		return v
	}}
	r, err := Run(context.Background(), fakeSet(), got, &fake{name: "ort"}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.Pass || !strings.Contains(r.Sampler.Error, "preprocesses differently") {
		t.Errorf("sampler %+v, want a failure naming the picture", r.Sampler)
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := &fake{name: "a", fail: map[string]error{"double": context.Canceled, "split": context.Canceled}}
	if _, err := Run(ctx, fakeSet(), got, &fake{name: "b"}, testOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

func TestGraphOrderPutsRequiredGraphsFirstInPipelineOrder(t *testing.T) {
	m := &engines.Manifest{Graphs: map[string]engines.Graph{
		engines.Matting: {}, engines.VAEGeometry: {}, engines.DiT: {}, engines.Conditioner: {}, engines.VAELatents: {}, "extra": {},
	}}
	want := []string{engines.Conditioner, engines.DiT, engines.VAELatents, engines.VAEGeometry, "extra", engines.Matting}
	if got := GraphOrder(m, nil); !slices.Equal(got, want) {
		t.Errorf("GraphOrder = %v, want %v", got, want)
	}
	if got := GraphOrder(m, []string{"dit"}); !slices.Equal(got, []string{"dit"}) {
		t.Errorf("GraphOrder(only dit) = %v", got)
	}
}
