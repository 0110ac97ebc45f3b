package jobs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/internal/testwait"
	"github.com/hy3d/hy3d/results"
)

// safety bounds how long a test waits for something that must happen; it
// is a guard against hangs, never a measurement.
const safety = 10 * time.Second

// fakeGen is a Generator whose calls tests can watch and hold. Every Step
// call is announced on stepping (the ids of its jobs, in order) and, with
// stepGate, waits for a token; every Finish is announced on finishing and,
// with finishGate, waits for a token. A job samples for Params.Steps steps.
// A textured job (Params.Texture) is handed on after its first Finish to
// Params.PaintModel, where it samples Params.Steps steps again.
type fakeGen struct {
	clock    *fakeClock // if set, each Step advances it by stepCost(batch size)
	stepCost func(batch int) time.Duration
	stepping chan []string
	stepGate chan struct{}
	// paintStepping and paintGate, when set, replace stepping and stepGate
	// for steps of jobs in their paint phase.
	paintStepping chan []string
	paintGate     chan struct{}
	finishing     chan string
	finishGate    chan struct{}

	mu     sync.Mutex
	starts [][]string
	steps  [][]string
	events []string // "step <ids>", "finish <id> begin", "finish <id> end", in order
}

type fakeState struct {
	id          string
	painting    bool // in the phase after a handoff
	step, steps int
	seed        int64
	trace       []int // the batch size of every step it took part in
}

func (s *fakeState) Done() bool { return s.step >= s.steps }

func (f *fakeGen) record(ev string) {
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
}

func (f *fakeGen) Start(ctx context.Context, batch []Job) ([]Sampling, []error) {
	ids := make([]string, len(batch))
	states := make([]Sampling, len(batch))
	for i, j := range batch {
		ids[i] = j.ID
		states[i] = &fakeState{id: j.ID, steps: j.Params.Steps, seed: j.Params.Seed, painting: j.Handoff != nil}
	}
	f.mu.Lock()
	f.starts = append(f.starts, ids)
	f.mu.Unlock()
	return states, make([]error, len(batch))
}

func (f *fakeGen) Step(ctx context.Context, states []Sampling) error {
	ids := make([]string, len(states))
	for i, s := range states {
		ids[i] = s.(*fakeState).id
	}
	f.mu.Lock()
	f.steps = append(f.steps, ids)
	f.mu.Unlock()
	f.record(fmt.Sprint("step ", ids))
	stepping, gate := f.stepping, f.stepGate
	if len(states) > 0 && states[0].(*fakeState).painting && f.paintGate != nil {
		stepping, gate = f.paintStepping, f.paintGate
	}
	if stepping != nil {
		stepping <- ids
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, s := range states {
		st := s.(*fakeState)
		st.step++
		st.trace = append(st.trace, len(states))
	}
	if f.clock != nil {
		f.clock.advance(f.stepCost(len(states)))
	}
	return nil
}

// fakeClock is a clock that only the fake generator moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (f *fakeGen) Finish(ctx context.Context, j Job, s Sampling) Output {
	f.record("finish " + j.ID + " begin")
	if f.finishing != nil {
		f.finishing <- j.ID
	}
	if f.finishGate != nil {
		select {
		case <-f.finishGate:
		case <-ctx.Done():
			return Output{Err: ctx.Err()}
		}
	}
	f.record("finish " + j.ID + " end")
	// The mesh depends on the job alone: its seed and its step count.
	st := s.(*fakeState)
	body := fmt.Sprintf("seed=%d steps=%d", st.seed, st.step)
	if j.Params.Texture && j.Handoff == nil {
		return Output{Handoff: &Handoff{Model: j.Params.PaintModel, State: "mesh " + body},
			Stages: []results.StageTiming{{Stage: "sample", Duration: time.Millisecond}}, Warnings: []string{"shape warning"}}
	}
	if j.Handoff != nil {
		body = fmt.Sprintf("painted %s with %d steps", j.Handoff, st.step)
	}
	out := Output{Meshes: map[string][]byte{}, Stages: []results.StageTiming{{Stage: "sample", Duration: time.Millisecond}}}
	for _, f := range j.Formats {
		out.Meshes[f] = []byte(f + " " + body)
	}
	return out
}

func (f *fakeGen) stepCalls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.steps...)
}

func (f *fakeGen) eventLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// countingObserver records what an Observer hears.
type countingObserver struct {
	mu      sync.Mutex
	batches map[string][]int
	shed    map[string]int
}

func (o *countingObserver) CacheLookup(string) {}
func (o *countingObserver) Coalesced()         {}
func (o *countingObserver) Shed(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.shed[reason]++
}
func (o *countingObserver) Batch(graph string, size int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches[graph] = append(o.batches[graph], size)
}
func (o *countingObserver) Stage(string, time.Duration)                                      {}
func (o *countingObserver) Finished(string, string, time.Duration, time.Duration, time.Time) {}

var testModel = &Model{Name: "m", Fingerprint: "fp"}

// testEngine is an engine over gen with one model, started, and drained
// when the test ends.
type testEngine struct {
	*Engine
	obs *countingObserver
}

func newTestEngine(t *testing.T, gen Generator, cfg Config) *testEngine {
	t.Helper()
	store, err := results.NewStore(t.TempDir(), 1<<20, 0, results.Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Models == nil {
		cfg.Models = []*Model{testModel}
	}
	obs := &countingObserver{batches: map[string][]int{}, shed: map[string]int{}}
	e := New(cfg, gen, store, obs, zerolog.Nop())
	if f, ok := gen.(*fakeGen); ok && f.clock != nil {
		e.now = f.clock.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.Start(ctx)
	t.Cleanup(func() {
		expired, stop := context.WithCancel(context.Background())
		stop()
		_ = e.Drain(expired)
		cancel()
		store.Close()
	})
	return &testEngine{Engine: e, obs: obs}
}

// submit admits a job for picture (a byte standing for its pixels) with
// the given steps and priority, and returns its generation id.
func (e *testEngine) submit(t *testing.T, picture byte, steps int, priority string) string {
	t.Helper()
	p := Params{Model: testModel.Name, Steps: steps, Seed: int64(picture), Priority: priority, Timeout: time.Minute, Decode: DecodeDense}
	id, err := e.Submit(context.Background(), Submission{Key: CacheKey([32]byte{picture}, p, testModel.Fingerprint), Model: testModel, Params: p,
		Input: &Prepared{Hash: [32]byte{picture}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// wait blocks until generation id ends.
func (e *testEngine) wait(t *testing.T, id string) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	snap, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatalf("waiting for %s: %v", id, err)
	}
	return snap
}

// jobID is the id the generator sees for generation id.
func (e *testEngine) jobID(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gens[id].task.id
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testwait.Recv(t, ch, what, safety)
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
