package jobs

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAdmissionRefusesWithTypedErrors(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxQueue: 2, MaxBatch: 1})
	e.submit(t, 1, 2, PriorityNormal)
	recv(t, gen.stepping, "the running job")
	e.submit(t, 2, 2, PriorityNormal)
	// One place left: a ticket takes it, so the next request is refused
	// before anything preprocesses its picture.
	tk, err := e.Reserve(PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	var full *QueueFullError
	if _, err := e.Reserve(PriorityNormal); !errors.As(err, &full) || full.Depth != 2 || full.RetryAfter <= 0 {
		t.Errorf("reserve on a full queue: %v", err)
	}
	// Low priority stops at three quarters of the queue.
	if _, err := e.Reserve(PriorityLow); !errors.As(err, &full) || !full.LowPriority {
		t.Errorf("low priority: %v", err)
	}
	e.Release(tk)
	e.Release(tk) // a second release is a no-op
	if tk2, err := e.Reserve(PriorityNormal); err != nil {
		t.Errorf("a released place: %v", err)
	} else {
		e.Release(tk2)
	}
	if e.obs.shed["queue_full"] != 2 {
		t.Errorf("shed %v", e.obs.shed)
	}

	if _, _, err := e.Watch(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("watch of an unknown id: %v", err)
	}
	if _, err := e.Cancel(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancel of an unknown id: %v", err)
	}
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
	done := e.submit(t, 3, 1, PriorityNormal)
	e.wait(t, done)
	var finished *FinishedError
	if _, err := e.Cancel(context.Background(), done); !errors.As(err, &finished) || finished.State != StateSucceeded {
		t.Errorf("cancel of a finished job: %v", err)
	}

	go e.Drain(context.Background())
	until(t, "draining", func() bool { return e.Load().Draining })
	if _, err := e.Reserve(PriorityHigh); !errors.Is(err, ErrDraining) {
		t.Errorf("reserve while draining: %v", err)
	}
}

func TestResultOfAnUnfinishedJobIsNotReadyWithARetry(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{})
	id := e.submit(t, 1, 2, PriorityNormal)
	recv(t, gen.stepping, "the step")
	var nr *NotReadyError
	if _, _, err := e.Result(context.Background(), id); !errors.As(err, &nr) || nr.State != StateRunning || nr.RetryAfter <= 0 {
		t.Errorf("%v", err)
	}
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
	e.wait(t, id)
	if r, _, err := e.Result(context.Background(), id); err != nil || r.Meshes["glb"] == nil {
		t.Errorf("%v", err)
	}
}

func TestRetryAfterFollowsTheMeasuredTimePerJob(t *testing.T) {
	e := newTestEngine(t, &fakeGen{}, Config{})
	e.mu.Lock()
	e.perJob = 3 * time.Second
	got := e.estimateLocked(5)
	e.mu.Unlock()
	if got != 15*time.Second {
		t.Errorf("estimate for position 5 at 3 s/job: %v", got)
	}
}

func TestFinishedGenerationsAreForgottenAfterRetention(t *testing.T) {
	e := newTestEngine(t, &fakeGen{}, Config{Retain: time.Minute})
	id := e.submit(t, 1, 1, PriorityNormal)
	e.wait(t, id)
	e.sweep(time.Now())
	if _, _, err := e.Watch(context.Background(), id); err != nil {
		t.Fatalf("swept too early: %v", err)
	}
	e.sweep(time.Now().Add(2 * time.Minute))
	if _, _, err := e.Watch(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("after retention: %v", err)
	}
}

func TestRecordsAreBoundedOldestFinishedFirst(t *testing.T) {
	gen := &fakeGen{stepping: make(chan []string, 64), stepGate: make(chan struct{})}
	e := newTestEngine(t, gen, Config{MaxGenerations: 2, MaxBatch: 1})
	waiting := e.submit(t, 1, 1, PriorityNormal) // held in its step throughout
	recv(t, gen.stepping, "the held job")
	var ended []string
	for i := range 3 {
		id := e.submit(t, byte(10+i), 1, PriorityNormal)
		if _, err := e.Cancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		ended = append(ended, id)
	}
	for i, id := range ended {
		_, _, err := e.Watch(context.Background(), id)
		if kept := err == nil; kept != (i == 2) {
			t.Errorf("ended generation %d kept=%v", i, kept)
		}
	}
	if _, _, err := e.Watch(context.Background(), waiting); err != nil {
		t.Errorf("the unfinished generation was forgotten: %v", err)
	}
	go func() {
		for range gen.stepping {
		}
	}()
	close(gen.stepGate)
}

func TestARepeatedUploadIsAnsweredWithoutARecord(t *testing.T) {
	e := newTestEngine(t, &fakeGen{}, Config{})
	p := Params{Model: testModel.Name, Steps: 2, Seed: 5, Priority: PriorityNormal, Timeout: time.Minute}
	sub := Submission{Key: CacheKey([32]byte{5}, p, "fp"), Upload: UploadKey([]byte("bytes"), p, "fp"), Model: testModel,
		Params: p, Input: &Prepared{Hash: [32]byte{5}}}
	if _, _, _, ok := e.SubmitUpload(context.Background(), sub, false); ok {
		t.Fatal("an unknown upload was answered")
	}
	id, err := e.Submit(context.Background(), sub)
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, id)
	_, r, madeBy, ok := e.SubmitUpload(context.Background(), sub, false)
	if !ok || r == nil || madeBy != id || e.Load().Generations != 1 {
		t.Errorf("synchronous repeat: ok %v, made by %q, %d generations", ok, madeBy, e.Load().Generations)
	}
	again, _, _, ok := e.SubmitUpload(context.Background(), sub, true)
	if !ok || again != id {
		t.Errorf("asynchronous repeat answered %q, want %s", again, id)
	}
	sub.Params.Format = "obj" // not the same request: a record of its own, born succeeded
	other, _, _, ok := e.SubmitUpload(context.Background(), sub, true)
	snap, _, _ := e.Watch(context.Background(), other)
	if !ok || other == id || !snap.Cached || snap.State != StateSucceeded || snap.Input == nil {
		t.Errorf("repeat with another format: %+v", snap)
	}
}

func TestStoredResultNamesTheClientWhoseRequestMadeIt(t *testing.T) {
	e := newTestEngine(t, &fakeGen{}, Config{})
	p := Params{Model: testModel.Name, Steps: 1, Priority: PriorityNormal, Timeout: time.Minute, Decode: DecodeDense}
	key := CacheKey([32]byte{7}, p, testModel.Fingerprint)
	id, err := e.Submit(context.Background(), Submission{Key: key, Model: testModel, Params: p, Client: "192.0.2.7",
		Input: &Prepared{Hash: [32]byte{7}}})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, id)
	r, _, err := e.store.Get(context.Background(), key)
	if err != nil || r == nil || r.Owner != "192.0.2.7" {
		t.Fatalf("stored result %+v (%v): want owner 192.0.2.7, the store's per-client share counts by it", r, err)
	}
}

func TestSubmitEndsWithItsContext(t *testing.T) {
	e := newTestEngine(t, &fakeGen{}, Config{MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tk, err := e.Reserve(PriorityNormal)
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Model: testModel.Name, Steps: 1, Priority: PriorityNormal, Timeout: time.Minute, Decode: DecodeDense}
	if _, err := e.Submit(ctx, Submission{Key: CacheKey([32]byte{8}, p, testModel.Fingerprint), Model: testModel,
		Params: p, Input: &Prepared{}, Ticket: tk}); !errors.Is(err, context.Canceled) {
		t.Fatalf("submit with an ended context: %v", err)
	}
	if _, err := e.Reserve(PriorityNormal); err != nil {
		t.Errorf("the ticket of the abandoned submission was not given back: %v", err)
	}
}
