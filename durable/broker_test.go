package durable

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// safety bounds how long a test waits for something that must happen; it
// is a guard against hangs, never a measurement.
const safety = 20 * time.Second

var (
	testModel  = &jobs.Model{Name: "fake", Fingerprint: "fp-1", Defaults: jobs.Defaults{Steps: 3, Resolution: 16, Faces: 100, Decode: jobs.DecodeDense}}
	paintModel = &jobs.Model{Name: "fake-paint", Kind: jobs.KindPaint, Fingerprint: "fp-paint"}
)

// slowGen samples for Params.Steps steps of stepTime each; hold, when set,
// blocks every step until it is closed (or the call's context ends).
type slowGen struct {
	stepTime time.Duration
	hold     chan struct{}

	mu      sync.Mutex
	started []string
}

type slowState struct{ step, steps int }

func (s *slowState) Done() bool { return s.step >= s.steps }

func (g *slowGen) Start(ctx context.Context, batch []jobs.Job) ([]jobs.Sampling, []error) {
	states := make([]jobs.Sampling, len(batch))
	for i, j := range batch {
		if j.Input == nil || j.Input.Input == nil {
			return nil, nil // the engine turns the mismatch into failures
		}
		states[i] = &slowState{steps: j.Params.Steps}
		g.mu.Lock()
		g.started = append(g.started, j.ID)
		g.mu.Unlock()
		j.Progress(jobs.Progress{Stage: "sample", Steps: j.Params.Steps})
	}
	return states, make([]error, len(batch))
}

func (g *slowGen) Step(ctx context.Context, states []jobs.Sampling) error {
	if g.hold != nil {
		select {
		case <-g.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-time.After(g.stepTime):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, s := range states {
		s.(*slowState).step++
	}
	return nil
}

func (g *slowGen) Finish(ctx context.Context, j jobs.Job, s jobs.Sampling) jobs.Output {
	body := fmt.Sprintf("seed=%d steps=%d", j.Params.Seed, s.(*slowState).step)
	if j.Params.Texture && j.Handoff == nil {
		return jobs.Output{Handoff: &jobs.Handoff{Model: j.Params.PaintModel, State: body}}
	}
	if j.Handoff != nil {
		body = fmt.Sprintf("painted %s", j.Handoff)
	}
	out := jobs.Output{Meshes: map[string][]byte{}, Vertices: 3, Faces: 1}
	for _, f := range j.Formats {
		out.Meshes[f] = []byte(f + " " + body)
	}
	return out
}

// node is an embedded NATS server and a broker over it.
type node struct {
	ns     *server.Server
	nc     *nats.Conn
	broker *Broker
	engine *jobs.Engine
	store  *results.Store
	cancel context.CancelFunc
}

// startNode starts NATS on dir/nats, a broker and an engine over gen.
func startNode(t *testing.T, dir string, gen jobs.Generator, reset bool) *node {
	t.Helper()
	ns, err := StartNode(NodeConfig{Name: "test", StoreDir: filepath.Join(dir, "nats"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ConnectInProcess(ns, "test")
	if err != nil {
		t.Fatal(err)
	}
	prepare := func(ctx context.Context, model string, image []byte) (*jobs.Prepared, error) {
		return prepared(image), nil
	}
	b, err := Open(context.Background(), Config{Conn: nc, Name: "w1", Models: []Model{{Name: testModel.Name, Fingerprint: testModel.Fingerprint},
		{Name: paintModel.Name, Fingerprint: paintModel.Fingerprint}},
		AckWait: 2 * time.Second, Prepare: prepare, Reset: reset, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := results.NewStore(filepath.Join(dir, "results"), 0, 0, results.Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e := jobs.New(jobs.Config{Models: []*jobs.Model{testModel, paintModel}, MaxBatch: 2, Broker: b}, gen, store, nopObserver{}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	e.Start(ctx)
	n := &node{ns: ns, nc: nc, broker: b, engine: e, store: store, cancel: cancel}
	return n
}

// stop drains the engine and stops everything in order.
func (n *node) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.engine.Drain(ctx)
	n.cancel()
	n.broker.Close()
	n.nc.Close()
	n.ns.Shutdown()
	n.ns.WaitForShutdown()
	n.store.Close()
}

// crash stops NATS and the connection with no drain, no acknowledgement
// and no record of the end: what the data directory holds after kill -9.
func (n *node) crash() {
	n.broker.Close()
	n.nc.Close()
	n.ns.Shutdown()
	n.ns.WaitForShutdown()
	n.cancel()
	n.store.Close()
}

// prepared is the preprocessed picture of an upload in these tests: its
// hash is the upload's own.
func prepared(image []byte) *jobs.Prepared {
	var h [32]byte
	copy(h[:], fmt.Sprintf("%-32s", image))
	return &jobs.Prepared{Hash: h, Format: "png", Width: 1, Height: 1, Input: string(image)}
}

func submit(t *testing.T, e *jobs.Engine, image string, steps int) string {
	t.Helper()
	return submitParams(t, e, image, jobs.Params{Model: testModel.Name, Format: "glb", Steps: steps, Seed: 1, Resolution: 16, Faces: 100,
		Decode: jobs.DecodeDense, Priority: jobs.PriorityNormal, Timeout: time.Minute})
}

func submitParams(t *testing.T, e *jobs.Engine, image string, p jobs.Params) string {
	t.Helper()
	in := prepared([]byte(image))
	id, err := e.Submit(context.Background(), jobs.Submission{
		Key: jobs.CacheKey(in.Hash, p, testModel.Fingerprint), Model: testModel, Params: p, Input: in, Image: []byte(image),
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitEnd(t *testing.T, e *jobs.Engine, id string) jobs.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	snap, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatalf("%s: %v (last %s)", id, err, snap.State)
	}
	return snap
}

type nopObserver struct{}

func (nopObserver) CacheLookup(string)                                               {}
func (nopObserver) Coalesced()                                                       {}
func (nopObserver) Shed(string)                                                      {}
func (nopObserver) Batch(string, int)                                                {}
func (nopObserver) Stage(string, time.Duration)                                      {}
func (nopObserver) Finished(string, string, time.Duration, time.Duration, time.Time) {}

func TestJobsRunThroughTheBroker(t *testing.T) {
	n := startNode(t, t.TempDir(), &slowGen{stepTime: time.Millisecond}, false)
	defer n.stop()
	a := submit(t, n.engine, "picture-a", 3)
	b := submit(t, n.engine, "picture-b", 3)
	same := submit(t, n.engine, "picture-a", 3) // identical to a: joins its task
	for _, id := range []string{a, b, same} {
		if snap := waitEnd(t, n.engine, id); snap.State != jobs.StateSucceeded {
			t.Fatalf("%s: %s %+v", id, snap.State, snap.Failure)
		}
		r, _, err := n.engine.Result(context.Background(), id)
		if err != nil || string(r.Meshes["glb"].Data) != "glb seed=1 steps=3" {
			t.Fatalf("%s: result %v", id, err)
		}
	}
}

func TestATexturedJobIsHandedOnWhileThePaintLoopWaitsOnTheQueue(t *testing.T) {
	n := startNode(t, t.TempDir(), &slowGen{stepTime: time.Millisecond}, false)
	defer n.stop()
	// The paint loop is blocked taking from the paint queue, which stays
	// empty: the handoff must wake it.
	id := submitParams(t, n.engine, "picture-t", jobs.Params{Model: testModel.Name, Format: "glb", Steps: 2, Seed: 1, Resolution: 16,
		Faces: 100, Decode: jobs.DecodeDense, Priority: jobs.PriorityNormal, Timeout: time.Minute, Texture: true, PaintModel: paintModel.Name})
	if snap := waitEnd(t, n.engine, id); snap.State != jobs.StateSucceeded {
		t.Fatalf("%s %+v", snap.State, snap.Failure)
	}
	r, _, err := n.engine.Result(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(r.Meshes["zip"].Data), "zip painted seed=1 steps=2"; got != want {
		t.Fatalf("zip = %q, want %q", got, want)
	}
	if r.Meshes["obj"] != nil {
		t.Error("a textured result holds an untextured format")
	}
}

// A fetch that fails on a less urgent consumer after claiming a job from a
// more urgent one still hands that job to the engine: left unrun, its
// heartbeats would hold it forever.
func TestAJobClaimedBeforeAFetchErrorStillRuns(t *testing.T) {
	n := startNode(t, t.TempDir(), &slowGen{stepTime: time.Millisecond}, false)
	defer n.stop()
	q := n.broker.queues[testModel.Name]
	if err := n.broker.stream.DeleteConsumer(context.Background(), "jobs_"+q.token+"_"+jobs.PriorityNormal); err != nil {
		t.Fatal(err)
	}
	id := submitParams(t, n.engine, "picture-h", jobs.Params{Model: testModel.Name, Format: "glb", Steps: 2, Seed: 1, Resolution: 16,
		Faces: 100, Decode: jobs.DecodeDense, Priority: jobs.PriorityHigh, Timeout: time.Minute})
	if snap := waitEnd(t, n.engine, id); snap.State != jobs.StateSucceeded {
		t.Fatalf("%s %+v", snap.State, snap.Failure)
	}
}

func TestAJobSurvivesACrashMidRun(t *testing.T) {
	dir := t.TempDir()
	gen := &slowGen{stepTime: time.Millisecond, hold: make(chan struct{})}
	n := startNode(t, dir, gen, true)
	running := submit(t, n.engine, "picture-a", 3)
	queued := []string{submit(t, n.engine, "picture-b", 3), submit(t, n.engine, "picture-c", 3), submit(t, n.engine, "picture-d", 3)}
	deadline := time.Now().Add(safety)
	for {
		snap, _, err := n.engine.Watch(context.Background(), running)
		if err != nil {
			t.Fatal(err)
		}
		if snap.State == jobs.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ran: %s", snap.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.crash()

	// A new process over the same directory knows every generation and runs
	// every job to its end.
	m := startNode(t, dir, &slowGen{stepTime: time.Millisecond}, true)
	defer m.stop()
	for _, id := range append([]string{running}, queued...) {
		snap := waitEnd(t, m.engine, id)
		if snap.State != jobs.StateSucceeded {
			t.Fatalf("%s: %s %+v", id, snap.State, snap.Failure)
		}
		if _, _, err := m.engine.Result(context.Background(), id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if _, _, err := m.engine.Watch(context.Background(), "00000000-0000-4000-8000-000000000000"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("an unknown id: %v", err)
	}
}

// TestAJoinStoresAgainTheJobADeadGatewayRecordedOnly: a gateway died
// between the task's record and its job message; the next identical
// request joins the task and stores the job message again, so it runs.
func TestAJoinStoresAgainTheJobADeadGatewayRecordedOnly(t *testing.T) {
	n := startNode(t, t.TempDir(), &slowGen{stepTime: time.Millisecond}, false)
	defer n.stop()
	p := jobs.Params{Model: testModel.Name, Format: "glb", Steps: 3, Seed: 1, Resolution: 16, Faces: 100,
		Decode: jobs.DecodeDense, Priority: jobs.PriorityNormal, Timeout: time.Minute}
	in := prepared([]byte("picture-a"))
	key := jobs.CacheKey(in.Hash, p, testModel.Fingerprint)
	orphan := freshTask(jobs.Spec{Key: key, ID: "deadgw01", Model: testModel.Name, Enqueued: time.Now(), Deadline: time.Now().Add(time.Minute)})
	if _, err := n.broker.tasks.Create(context.Background(), key.String(), encodeTask(orphan)); err != nil {
		t.Fatal(err)
	}
	id := submit(t, n.engine, "picture-a", 3)
	snap := waitEnd(t, n.engine, id)
	if snap.State != jobs.StateSucceeded || !snap.Coalesced {
		t.Fatalf("%s (coalesced %v) %+v", snap.State, snap.Coalesced, snap.Failure)
	}
}
