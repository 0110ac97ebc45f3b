package jobs

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hy3d/hy3d/results"
)

var paintModel = &Model{Name: "p", Kind: KindPaint, Fingerprint: "paint-fp"}

// submitTextured admits a textured job for picture on the test model, to be
// painted by paintModel, and returns its generation id.
func (e *testEngine) submitTextured(t *testing.T, picture byte, steps int) string {
	t.Helper()
	p := Params{Model: testModel.Name, Steps: steps, Seed: int64(picture), Priority: PriorityNormal, Timeout: time.Minute,
		Decode: DecodeDense, Texture: true, PaintModel: paintModel.Name}
	id, err := e.Submit(context.Background(), Submission{Key: CacheKey([32]byte{picture}, p, testModel.Fingerprint), Model: testModel,
		Params: p, Input: &Prepared{Hash: [32]byte{picture}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestATexturedJobIsHandedOnToThePaintLoop(t *testing.T) {
	gen := &fakeGen{}
	e := newTestEngine(t, gen, Config{MaxBatch: 4, Models: []*Model{testModel, paintModel}})
	id := e.submitTextured(t, 7, 3)
	if snap := e.wait(t, id); snap.State != StateSucceeded {
		t.Fatalf("textured job: %s %+v", snap.State, snap.Failure)
	}
	r, _, err := e.Result(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// A textured result holds the textured formats only, made by the paint
	// phase from what the shape phase handed on.
	if got := slices.Sorted(func(yield func(string) bool) {
		for f := range r.Meshes {
			if !yield(f) {
				return
			}
		}
	}); !slices.Equal(got, results.TexturedFormats) {
		t.Errorf("formats %v, want %v", got, results.TexturedFormats)
	}
	if got, want := string(r.Meshes["zip"].Data), "zip painted mesh seed=7 steps=3 with 3 steps"; got != want {
		t.Errorf("zip = %q, want %q", got, want)
	}
	// Both phases' stages are in the result, after preprocessing, and the
	// shape phase's warnings too.
	var stages []string
	for _, st := range r.Stages {
		stages = append(stages, st.Stage)
	}
	if want := []string{"preprocess", "sample", "sample"}; !slices.Equal(stages, want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
	if !slices.Contains(r.Warnings, "shape warning") {
		t.Errorf("warnings %v lost the shape phase's", r.Warnings)
	}
	// Each loop stepped its own phase, and the observer heard the paint
	// loop under the paint graph's name.
	if got := e.obs.batches["paint_unet"]; !slices.Equal(got, []int{1, 1, 1}) {
		t.Errorf("paint_unet batches %v", got)
	}
	if got := e.obs.batches["dit"]; !slices.Equal(got, []int{1, 1, 1}) {
		t.Errorf("dit batches %v", got)
	}
}

func TestAJobHandedOnMidPaintingJoinsTheNextPaintStep(t *testing.T) {
	gen := &fakeGen{paintStepping: make(chan []string, 64), paintGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 4, Models: []*Model{testModel, paintModel}})
	a := e.submitTextured(t, 1, 6)
	recv(t, gen.paintStepping, "a's first paint step")
	// a's paint step 1 is held while b's shape phase runs and hands b on.
	b := e.submitTextured(t, 2, 2)
	until(t, "b handed on to the paint loop", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.handed[paintModel.Name]) == 1
	})
	gen.paintGate <- struct{}{}
	next := recv(t, gen.paintStepping, "a's second paint step")
	if want := []string{e.jobID(a), e.jobID(b)}; !slices.Equal(next, want) {
		t.Fatalf("paint step 2 ran %v, want both jobs %v", next, want)
	}
	go func() {
		for range gen.paintStepping {
		}
	}()
	for range 5 {
		gen.paintGate <- struct{}{}
	}
	for _, id := range []string{a, b} {
		if snap := e.wait(t, id); snap.State != StateSucceeded {
			t.Errorf("%s: %s %+v", id, snap.State, snap.Failure)
		}
	}
	// b painted its 2 steps beside a and left; a painted its 6.
	if got := e.obs.batches["paint_unet"]; !slices.Equal(got, []int{1, 2, 2, 1, 1, 1}) {
		t.Errorf("paint_unet batches %v", got)
	}
	for id, want := range map[string]string{a: "glb painted mesh seed=1 steps=6 with 6 steps", b: "glb painted mesh seed=2 steps=2 with 2 steps"} {
		r, _, err := e.Result(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(r.Meshes["glb"].Data); got != want {
			t.Errorf("%q, want %q: sharing paint steps changed the result", got, want)
		}
	}
}

func TestAJobWithNothingToSampleSkipsTheStepLoop(t *testing.T) {
	for _, policy := range []Policy{PolicyContinuous, PolicyDispatch} {
		t.Run(string(policy), func(t *testing.T) {
			gen := &fakeGen{}
			e := newTestEngine(t, gen, Config{Policy: policy})
			id := e.submit(t, 3, 0, PriorityNormal)
			if snap := e.wait(t, id); snap.State != StateSucceeded {
				t.Fatalf("%s %+v", snap.State, snap.Failure)
			}
			if calls := gen.stepCalls(); len(calls) != 0 {
				t.Errorf("a job with no steps was stepped: %v", calls)
			}
		})
	}
}

func TestAHandoffToAnUnservedModelFailsTheJob(t *testing.T) {
	gen := &fakeGen{}
	e := newTestEngine(t, gen, Config{}) // no paint model
	id := e.submitTextured(t, 4, 1)
	snap := e.wait(t, id)
	if snap.State != StateFailed || snap.Failure == nil {
		t.Fatalf("%s %+v, want a failure", snap.State, snap.Failure)
	}
}

func TestDrainFinishesJobsHandedOnDuringIt(t *testing.T) {
	gen := &fakeGen{finishing: make(chan string, 8), finishGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{Models: []*Model{testModel, paintModel}})
	id := e.submitTextured(t, 5, 2)
	recv(t, gen.finishing, "the shape phase's finish")
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		drained <- e.Drain(ctx)
	}()
	// The handoff happens while the engine drains: the paint loop must
	// still run the job.
	gen.finishGate <- struct{}{}
	recv(t, gen.finishing, "the paint phase's finish")
	gen.finishGate <- struct{}{}
	if err := recv(t, drained, "the drain"); err != nil {
		t.Fatal(err)
	}
	if snap := e.wait(t, id); snap.State != StateSucceeded {
		t.Fatalf("%s %+v", snap.State, snap.Failure)
	}
}

func TestTexturedKeysDifferAndUntexturedKeysStay(t *testing.T) {
	base := Params{Model: "m", Steps: 5, Seed: 1, Resolution: 64, Faces: 1000, Decode: DecodeDense}
	textured := base
	textured.Texture, textured.PaintModel, textured.TextureSize = true, "p", 1024
	bigger := textured
	bigger.TextureSize = 2048
	other := textured
	other.PaintModel = "q"
	keys := map[results.Key]string{}
	for name, p := range map[string]Params{"base": base, "textured": textured, "bigger": bigger, "other": other} {
		k := CacheKey([32]byte{1}, p, "fp")
		if prev, dup := keys[k]; dup {
			t.Errorf("%s and %s share a key", name, prev)
		}
		keys[k] = name
	}
	// Paint fields of an untextured request change nothing.
	stray := base
	stray.TextureSize = 4096
	if CacheKey([32]byte{1}, stray, "fp") != CacheKey([32]byte{1}, base, "fp") {
		t.Error("texture_size changed an untextured key")
	}
}

// A slow paint loop throttles the shape loop: the jobs handed on and
// waiting never exceed a paint batch, however many textured jobs the shape
// loop could finish meanwhile, and every job still ends.
func TestHandedJobsWaitingAreBoundedByTheNextLoopsBatch(t *testing.T) {
	gen := &fakeGen{paintStepping: make(chan []string, 256), paintGate: make(chan struct{})}
	paint := &Model{Name: paintModel.Name, Kind: KindPaint, Fingerprint: paintModel.Fingerprint, MaxBatch: 2}
	e := newTestEngine(t, gen, Config{MaxBatch: 4, Models: []*Model{testModel, paint}})
	var ids []string
	for i := range 8 {
		ids = append(ids, e.submitTextured(t, byte(10+i), 1))
	}
	recv(t, gen.paintStepping, "the first paint step")
	// The shape loop runs freely; the paint loop is held at its first step.
	until(t, "the backlog to fill", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.handed[paint.Name]) >= 2
	})
	waiting := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.handed[paint.Name])
	}
	go func() {
		for range gen.paintStepping {
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range 64 {
			if n := waiting(); n > 2 {
				t.Errorf("%d handed jobs waiting, want at most the paint batch of 2", n)
			}
			select {
			case gen.paintGate <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	for _, id := range ids {
		if snap := e.wait(t, id); snap.State != StateSucceeded {
			t.Errorf("%s: %s %+v", id, snap.State, snap.Failure)
		}
	}
}
