package pipeline

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/engines"
)

func newFakeSampler(t *testing.T, f fakeSet) (*Sampler, *fakeEngine) {
	t.Helper()
	fakes := f.fakes()
	s, err := NewSampler(fakes[engines.DiT], f.manifest())
	if err != nil {
		t.Fatal(err)
	}
	return s, fakes[engines.DiT]
}

func fakeCond(f fakeSet, k int) []float32 {
	c := make([]float32, f.T*f.D)
	for i := range c {
		c[i] = float32(k+1) * 0.1 * float32(i%7-3)
	}
	return c
}

func runAlone(t *testing.T, f fakeSet, cond []float32, p SampleParams) []float32 {
	t.Helper()
	s, _ := newFakeSampler(t, f)
	st, err := s.NewState(cond, p)
	if err != nil {
		t.Fatal(err)
	}
	for !st.Done() {
		if err := s.Step(context.Background(), []*SampleState{st}); err != nil {
			t.Fatal(err)
		}
	}
	return st.Latents()
}

func TestSamplerBatchAtDifferentStepsMatchesSingleRuns(t *testing.T) {
	for _, tc := range []struct {
		name           string
		kind, guidance string
	}{
		{"flow euler with CFG", KindFlowEuler, GuidanceCFG},
		{"consistency with embedded guidance", KindConsistency, GuidanceEmbedded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSet()
			f.kind, f.guidance = tc.kind, tc.guidance
			params := []SampleParams{
				{Steps: 5, Guidance: 5, Seed: 1},
				{Steps: 3, Guidance: 2.5, Seed: 2},
				{Steps: 8, Guidance: 7, Seed: 3},
				{Steps: 1, Guidance: 1, Seed: 4},
				{Steps: 6, Guidance: 0, Seed: 1},
			}
			s, dit := newFakeSampler(t, f)
			states := make([]*SampleState, len(params))
			var active []*SampleState
			// Job k joins after k rounds, so rounds mix step indices.
			for round := 0; len(active) > 0 || round < len(params); round++ {
				if round < len(params) {
					st, err := s.NewState(fakeCond(f, round), params[round])
					if err != nil {
						t.Fatal(err)
					}
					states[round] = st
					active = append(active, st)
				}
				if err := s.Step(context.Background(), active); err != nil {
					t.Fatal(err)
				}
				active = slices.DeleteFunc(active, (*SampleState).Done)
			}
			for _, b := range dit.batch {
				if b > f.maxBatch[engines.DiT] {
					t.Fatalf("DiT call of batch %d > %d", b, f.maxBatch[engines.DiT])
				}
			}
			for k, p := range params {
				want := runAlone(t, f, fakeCond(f, k), p)
				if !slices.Equal(states[k].Latents(), want) {
					t.Errorf("job %d: batched latents differ from the single run", k)
				}
			}
		})
	}
}

func TestSamplerPacksCFGRowsAsCondThenZeros(t *testing.T) {
	f := newFakeSet() // DiT max batch 4: two jobs per call with CFG
	s, dit := newFakeSampler(t, f)
	var states []*SampleState
	for k := 0; k < 3; k++ {
		st, err := s.NewState(fakeCond(f, k), SampleParams{Steps: 4, Guidance: 5, Seed: uint64(k)})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	// Put job 2 one step ahead.
	if err := s.Step(context.Background(), states[2:]); err != nil {
		t.Fatal(err)
	}
	x := [][]float32{slices.Clone(states[0].Latents()), slices.Clone(states[1].Latents()), slices.Clone(states[2].Latents())}
	dit.batch, dit.seen = nil, nil
	if err := s.Step(context.Background(), states); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dit.batch, []int{4, 2}) {
		t.Fatalf("batches %v, want [4 2]", dit.batch)
	}
	td, lc := f.T*f.D, f.L*f.C
	first := dit.seen[0]
	if got, want := first["timestep"].Data, []float32{0, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("first call timesteps %v, want %v", got, want)
	}
	second := dit.seen[1]
	if got, want := second["timestep"].Data, []float32{states[2].sigmas[1], states[2].sigmas[1]}; !slices.Equal(got, want) {
		t.Errorf("second call timesteps %v, want %v", got, want)
	}
	cond := first["cond"].Data
	if !slices.Equal(cond[:td], fakeCond(f, 0)) || !slices.Equal(cond[td:2*td], fakeCond(f, 1)) {
		t.Error("conditional rows are not the jobs' conds in order")
	}
	for i, v := range cond[2*td:] {
		if v != 0 {
			t.Fatalf("unconditional row value %d = %v, want 0", i, v)
		}
	}
	lat := first["latents"].Data
	for r, want := range [][]float32{x[0], x[1], x[0], x[1]} {
		if !slices.Equal(lat[r*lc:(r+1)*lc], want) {
			t.Errorf("latent row %d is not [x1 x2 x1 x2][%d]", r, r)
		}
	}
}

func TestSamplerAppliesCFGAndEulerToTheVelocities(t *testing.T) {
	f := newFakeSet()
	s, dit := newFakeSampler(t, f)
	st, err := s.NewState(fakeCond(f, 0), SampleParams{Steps: 3, Guidance: 4, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Step(context.Background(), []*SampleState{st}); err != nil { // σ 0 → 0.5
		t.Fatal(err)
	}
	x0 := dit.seen[0]["latents"].Data[:f.L*f.C]
	v := dit.row(map[string][]float32{"latents": x0, "timestep": {0}, "cond": fakeCond(f, 0)})
	u := dit.row(map[string][]float32{"latents": x0, "timestep": {0}, "cond": make([]float32, f.T*f.D)})
	for i, got := range st.Latents() {
		guided := u[i] + float32(4*float32(v[i]-u[i]))
		if want := x0[i] + float32(0.5*guided); got != want {
			t.Fatalf("x[%d] = %v, want %v", i, got, want)
		}
	}
}

func TestSamplerSkipsTheZeroLengthLastFlowStep(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		calls int
	}{{KindFlowEuler, 4}, {KindConsistency, 5}} {
		f := newFakeSet()
		f.kind = tc.kind
		s, dit := newFakeSampler(t, f)
		st, err := s.NewState(fakeCond(f, 0), SampleParams{Steps: 5, Guidance: 5})
		if err != nil {
			t.Fatal(err)
		}
		var reported []int
		st.OnStep = func(done, total int) {
			if total != 5 {
				t.Errorf("total %d, want 5", total)
			}
			reported = append(reported, done)
		}
		for !st.Done() {
			if err := s.Step(context.Background(), []*SampleState{st}); err != nil {
				t.Fatal(err)
			}
		}
		if dit.calls != tc.calls {
			t.Errorf("%s: %d DiT calls for 5 steps, want %d", tc.kind, dit.calls, tc.calls)
		}
		if !slices.Equal(reported, []int{1, 2, 3, 4, 5}) {
			t.Errorf("%s: progress %v", tc.kind, reported)
		}
	}
}

func TestSamplerFeedsEmbeddedGuidanceWithoutUncondRows(t *testing.T) {
	f := newFakeSet()
	f.guidance = GuidanceEmbedded
	s, dit := newFakeSampler(t, f)
	var states []*SampleState
	for k, g := range []float64{5, 2.5, 0} {
		st, err := s.NewState(fakeCond(f, k), SampleParams{Steps: 3, Guidance: g})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	if err := s.Step(context.Background(), states); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dit.batch, []int{3}) {
		t.Fatalf("batches %v, want [3]", dit.batch)
	}
	if got := dit.seen[0]["guidance"].Data; !slices.Equal(got, []float32{5, 2.5, 0}) {
		t.Fatalf("guidance input %v", got)
	}
}

func TestSamplerStepIsAllOrNothing(t *testing.T) {
	f := newFakeSet()
	f.maxBatch[engines.DiT] = 2 // one job per call
	s, dit := newFakeSampler(t, f)
	dit.failAt = 2
	var states []*SampleState
	var before [][]float32
	for k := 0; k < 3; k++ {
		st, err := s.NewState(fakeCond(f, k), SampleParams{Steps: 4, Guidance: 5, Seed: uint64(k)})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
		before = append(before, slices.Clone(st.Latents()))
	}
	if err := s.Step(context.Background(), states); err == nil {
		t.Fatal("no error from a failing DiT")
	}
	for k, st := range states {
		if st.StepIndex() != 0 || !slices.Equal(st.Latents(), before[k]) {
			t.Errorf("job %d advanced although the step failed", k)
		}
	}
}

func TestSamplerRejectsMisuse(t *testing.T) {
	f := newFakeSet()
	s, _ := newFakeSampler(t, f)
	if _, err := s.NewState(make([]float32, 3), SampleParams{Steps: 2}); err == nil {
		t.Error("cond of the wrong size accepted")
	}
	if _, err := s.NewState(fakeCond(f, 0), SampleParams{Steps: 0}); err == nil {
		t.Error("zero steps accepted")
	}
	st, _ := s.NewState(fakeCond(f, 0), SampleParams{Steps: 2})
	if err := s.Step(context.Background(), []*SampleState{st, st}); err == nil {
		t.Error("a state twice in one step accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Step(ctx, []*SampleState{st}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled step: %v", err)
	}

	f.maxBatch[engines.DiT] = 1
	fakes := f.fakes()
	if _, err := NewSampler(fakes[engines.DiT], f.manifest()); err == nil {
		t.Error("CFG accepted on a DiT of batch 1")
	}
	f = newFakeSet()
	m := f.manifest()
	m.Sampler.Guidance = GuidanceEmbedded // but the DiT has no guidance input
	if _, err := NewSampler(f.fakes()[engines.DiT], m); err == nil {
		t.Error("embedded guidance accepted without a guidance input")
	}
}
