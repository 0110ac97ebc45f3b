package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
)

func newFakePipeline(t *testing.T, f fakeSet, fakes map[string]*fakeEngine) *Pipeline {
	t.Helper()
	p, err := New(context.Background(), Config{
		Set: &engines.Set{Manifest: *f.manifest()}, Loader: fakeLoader{fakes}, Logger: zerolog.Nop(), Threads: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParamsTakeTheManifestDefaults(t *testing.T) {
	f := newFakeSet()
	m := f.manifest()
	got := Params{Seed: 3}.WithDefaults(m)
	want := Params{Steps: 6, Guidance: 5, Seed: 3, Resolution: 32, Faces: DefaultFaces}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	m.Sampler.Guidance = GuidanceEmbedded
	if g := (Params{}).WithDefaults(m).Guidance; g != 0 {
		t.Errorf("embedded guidance 0 became %v; it is a meaningful input there", g)
	}
}

func TestParamsValidateNamesEveryBadField(t *testing.T) {
	f := newFakeSet()
	f.kind = KindConsistency
	m := f.manifest()
	err := validateRequest(Params{Steps: 101, Guidance: -1, Resolution: 4, Faces: 2, Decode: 7}, []mesh.Format{"glb", "fbx"}, m)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"steps", "guidance", "resolution", "decode", "faces", "formats"}
	if len(fields) != len(want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	for i := range want {
		if fields[i] != want[i] {
			t.Fatalf("fields %v, want %v", fields, want)
		}
	}
	if err := (Params{Steps: 100, Guidance: 5, Resolution: 64, Faces: 1000}).Validate(m); err != nil {
		t.Errorf("valid parameters rejected: %v", err)
	}
}

func TestGenerateBatchFailsBadJobsAlone(t *testing.T) {
	f := newFakeSet()
	p := newFakePipeline(t, f, f.fakes())
	reqs := []Request{
		{ID: "good", Cond: fakeCond(f, 0), Params: Params{Steps: 2, Resolution: 16}},
		{ID: "bad steps", Cond: fakeCond(f, 1), Params: Params{Steps: -1}},
		{ID: "bad cond", Cond: make([]float32, 3), Params: Params{Steps: 2, Resolution: 16}},
		{ID: "good too", Cond: fakeCond(f, 2), Params: Params{Steps: 3, Resolution: 20, Decode: DecodeDense}},
	}
	res, errs := p.GenerateBatch(context.Background(), reqs)
	for i, wantErr := range []bool{false, true, true, false} {
		if (errs[i] != nil) != wantErr || (res[i] != nil) == wantErr {
			t.Errorf("%s: result %v, error %v", reqs[i].ID, res[i] != nil, errs[i])
		}
	}
	var fe *FieldError
	if !errors.As(errs[1], &fe) || fe.Field != "steps" {
		t.Errorf("bad steps: %v", errs[1])
	}
	if res[0].Counts.Faces == 0 || res[3].Counts.PointsDecoded != 21*21*21 {
		t.Errorf("counts %+v / %+v", res[0].Counts, res[3].Counts)
	}
}

func TestGenerateReportsAnEmptySurface(t *testing.T) {
	f := newFakeSet()
	fakes := f.fakes()
	fakes[engines.VAEGeometry].row = func(in map[string][]float32) []float32 {
		out := make([]float32, len(in["queries"])/3)
		for i := range out {
			out[i] = -3 // everything outside
		}
		return out
	}
	p := newFakePipeline(t, f, fakes)
	_, err := p.Generate(context.Background(), Request{Cond: fakeCond(f, 0), Params: Params{Steps: 2, Resolution: 16}})
	if !errors.Is(err, ErrEmptySurface) {
		t.Fatalf("error %v, want ErrEmptySurface", err)
	}
}

func TestGenerateStopsWhenCancelled(t *testing.T) {
	f := newFakeSet()
	p := newFakePipeline(t, f, f.fakes())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Generate(ctx, Request{Cond: fakeCond(f, 0), Params: Params{Steps: 2, Resolution: 16}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestNewClosesWhatItLoadedOnFailure(t *testing.T) {
	f := newFakeSet()
	fakes := f.fakes()
	delete(fakes, engines.VAEGeometry)
	_, err := New(context.Background(), Config{Set: &engines.Set{Manifest: *f.manifest()}, Loader: fakeLoader{fakes}})
	if err == nil {
		t.Fatal("no error without a geometry engine")
	}
	for name, e := range fakes {
		if !e.closed {
			t.Errorf("%s left open", name)
		}
	}
}

func TestGenerateBatchDropsAJobWhoseContextEnds(t *testing.T) {
	f := newFakeSet()
	p := newFakePipeline(t, f, f.fakes())
	jobCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reqs := []Request{
		{ID: "stays", Cond: fakeCond(f, 0), Params: Params{Steps: 5, Resolution: 16}},
		{ID: "cancelled at step 2", Cond: fakeCond(f, 1), Params: Params{Steps: 5, Resolution: 16}, Context: jobCtx,
			Progress: func(pr Progress) {
				if pr.Stage == StageSample && pr.Step == 2 {
					cancel()
				}
			}},
	}
	res, errs := p.GenerateBatch(context.Background(), reqs)
	if errs[0] != nil || res[0] == nil {
		t.Fatalf("the other job failed: %v", errs[0])
	}
	if !errors.Is(errs[1], context.Canceled) || res[1] != nil {
		t.Fatalf("cancelled job: %v", errs[1])
	}
}
