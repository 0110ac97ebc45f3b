package jobs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAJobArrivingMidSamplingJoinsTheNextStep(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 4})
	a := e.submit(t, 1, 10, PriorityNormal)
	const k = 3
	for range k {
		recv(t, gen.stepping, "a step of the first job")
		gen.stepGate <- struct{}{}
	}
	// The first job is at step k and its step k+1 is running.
	recv(t, gen.stepping, "step k+1")
	b := e.submit(t, 2, 4, PriorityNormal)
	gen.stepGate <- struct{}{}
	next := recv(t, gen.stepping, "step k+2")
	if want := []string{e.jobID(a), e.jobID(b)}; !slices.Equal(next, want) {
		t.Fatalf("step k+2 ran %v, want both jobs %v", next, want)
	}
	go func() {
		for range gen.stepping {
		}
	}()
	for range 10 - k - 1 {
		gen.stepGate <- struct{}{}
	}
	for _, id := range []string{a, b} {
		if snap := e.wait(t, id); snap.State != StateSucceeded {
			t.Errorf("%s: %+v", id, snap)
		}
	}
	// The second job took 4 steps beside the first and left; the first
	// finished its 10 alone.
	var sizes []int
	for _, call := range gen.stepCalls() {
		sizes = append(sizes, len(call))
	}
	if want := []int{1, 1, 1, 1, 2, 2, 2, 2, 1, 1}; !slices.Equal(sizes, want) {
		t.Errorf("jobs per step %v, want %v", sizes, want)
	}
	// What the observer heard is what ran.
	if got := e.obs.batches["dit"]; !slices.Equal(got, sizes) {
		t.Errorf("observer heard dit batches %v", got)
	}
}

func TestACancelledJobLeavesAtTheNextStep(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 4})
	a := e.submit(t, 1, 6, PriorityNormal)
	b := e.submit(t, 2, 6, PriorityNormal)
	first := recv(t, gen.stepping, "the first step")
	if len(first) == 1 { // b was queued after a's first step began
		gen.stepGate <- struct{}{}
		first = recv(t, gen.stepping, "a shared step")
	}
	if len(first) != 2 {
		t.Fatalf("step %v", first)
	}
	if _, err := e.Cancel(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	gen.stepGate <- struct{}{}
	if next := recv(t, gen.stepping, "the step after the cancel"); !slices.Equal(next, []string{e.jobID(a)}) {
		t.Errorf("step after the cancel ran %v", next)
	}
	if snap := e.wait(t, b); snap.State != StateCancelled {
		t.Errorf("cancelled job %+v", snap)
	}
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
	if snap := e.wait(t, a); snap.State != StateSucceeded {
		t.Errorf("the other job %+v", snap)
	}
}

func TestPrioritiesDecideWhoJoinsAFullBatch(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 2})
	a := e.submit(t, 1, 3, PriorityNormal)
	b := e.submit(t, 2, 8, PriorityNormal)
	recv(t, gen.stepping, "the first step")
	// The batch is full; a low-priority job queues, then a high one.
	low := e.submit(t, 3, 2, PriorityLow)
	high := e.submit(t, 4, 2, PriorityHigh)
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
	for _, id := range []string{a, b, low, high} {
		e.wait(t, id)
	}
	// a leaves after 3 steps: its place goes to the high-priority job,
	// which finishes before the low one gets in.
	firstWith := func(id string) int {
		return slices.IndexFunc(gen.stepCalls(), func(call []string) bool { return slices.Contains(call, e.jobID(id)) })
	}
	if h, l := firstWith(high), firstWith(low); h < 0 || l <= h {
		t.Errorf("high joined at step %d, low at %d", h, l)
	}
	for i, call := range gen.stepCalls() {
		if len(call) > 2 {
			t.Errorf("step %d ran %d jobs, more than MaxBatch", i, len(call))
		}
	}
}

func TestTheStagesAfterSamplingOverlapTheNextSteps(t *testing.T) {
	// The first job's finishing stages are held until the second job has
	// sampled to its end: possible only if the DiT steps on while they run.
	gen := &fakeGen{finishing: make(chan string, 4), finishGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 4})
	a := e.submit(t, 1, 2, PriorityNormal)
	recv(t, gen.finishing, "the first job's finishing stages")
	b := e.submit(t, 2, 5, PriorityNormal)
	until(t, "the second job's sampling", func() bool {
		n := 0
		for _, call := range gen.stepCalls() {
			if slices.Contains(call, e.jobID(b)) {
				n++
			}
		}
		return n == 5
	})
	gen.finishGate <- struct{}{}
	recv(t, gen.finishing, "the second job's finishing stages")
	gen.finishGate <- struct{}{}
	for _, id := range []string{a, b} {
		if snap := e.wait(t, id); snap.State != StateSucceeded {
			t.Errorf("%s: %+v", id, snap)
		}
	}
	// In order: a's finishing began, b's five steps ran, a's finishing ended.
	log := strings.Join(gen.eventLog(), "\n")
	begin := strings.Index(log, "finish "+e.jobID(a)+" begin")
	end := strings.Index(log, "finish "+e.jobID(a)+" end")
	lastStep := strings.LastIndex(log, "step [")
	if !(begin < lastStep && lastStep < end) {
		t.Errorf("no overlap:\n%s", log)
	}
}

func TestDispatchRunsEachBatchToTheEndBeforeTheNext(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxBatch: 4, Policy: PolicyDispatch})
	a := e.submit(t, 1, 3, PriorityNormal)
	recv(t, gen.stepping, "the first step")
	b := e.submit(t, 2, 3, PriorityNormal)
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
	e.wait(t, a)
	e.wait(t, b)
	log := strings.Join(gen.eventLog(), "\n")
	if strings.Index(log, "finish "+e.jobID(a)+" end") > strings.Index(log, e.jobID(b)) {
		t.Errorf("the second job started before the first batch ended:\n%s", log)
	}
}

func TestOutputsDoNotDependOnWhoSharedTheSteps(t *testing.T) {
	alone := func() []byte {
		gen := &fakeGen{}
		e := newTestEngine(t, gen, Config{})
		id := e.submit(t, 7, 5, PriorityNormal)
		e.wait(t, id)
		r, _, err := e.Result(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Meshes["glb"].Data
	}()
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{})
	other := e.submit(t, 8, 9, PriorityNormal)
	recv(t, gen.stepping, "the other job's first step")
	id := e.submit(t, 7, 5, PriorityNormal)
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
	e.wait(t, other)
	e.wait(t, id)
	r, _, err := e.Result(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Meshes["glb"].Data) != string(alone) {
		t.Errorf("shared steps gave %q, alone %q", r.Meshes["glb"].Data, alone)
	}
}

func TestAFailingStepFailsItsJobsAndTheLoopGoesOn(t *testing.T) {
	gen := &failingStep{fakeGen: fakeGen{}}
	e := newTestEngine(t, gen, Config{})
	a := e.submit(t, 1, 3, PriorityNormal)
	if snap := e.wait(t, a); snap.State != StateFailed || snap.Failure == nil || snap.Failure.Kind != FailGenerator ||
		!strings.Contains(snap.Failure.Detail, "dit exploded") {
		t.Fatalf("%+v", snap)
	}
	gen.mu.Lock()
	gen.ok = true
	gen.mu.Unlock()
	b := e.submit(t, 2, 3, PriorityNormal)
	if snap := e.wait(t, b); snap.State != StateSucceeded {
		t.Fatalf("the next job %+v", snap)
	}
}

// failingStep fails every Step until ok, then steps like fakeGen.
type failingStep struct {
	fakeGen
	ok bool
}

func (f *failingStep) Step(ctx context.Context, states []Sampling) error {
	f.mu.Lock()
	ok := f.ok
	f.mu.Unlock()
	if !ok {
		return errors.New("dit exploded")
	}
	return f.fakeGen.Step(ctx, states)
}
