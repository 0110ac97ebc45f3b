package server

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hy3d/hy3d/jobs"
)

func TestDrainFinishesAcceptedJobsAndRefusesNewOnes(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 2)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, running := s.submit(t, testPNG(t, 16, 16, 100), nil)
	waitFor(t, gen.started, "the first job")
	_, queued := s.submit(t, testPNG(t, 16, 16, 101), nil)

	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	// Draining is visible before any job finishes.
	until(t, "draining", func() bool { return s.engine.Load().Draining })
	readProblem(t, s.do(t, "GET", "/readyz", nil), http.StatusServiceUnavailable)
	resp, _ := s.submit(t, testPNG(t, 16, 16, 102), nil)
	p := readProblem(t, resp, http.StatusServiceUnavailable)
	if p.Type != problemDocs+"draining" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%+v", p)
	}
	// Accepted jobs can still be followed while they finish.
	close(gen.gate)
	for _, id := range []string{running.ID, queued.ID} {
		if st := s.final(t, id); st.Status != jobs.StateSucceeded {
			t.Errorf("%s: %+v", id, st)
		}
	}
	if err := waitFor(t, drained, "the drain"); err != nil {
		t.Fatal(err)
	}
}

func TestDrainTimeoutFailsLeftoverJobsWithAReason(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 2)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, running := s.submit(t, testPNG(t, 16, 16, 103), nil)
	waitFor(t, gen.started, "the first job")
	_, queued := s.submit(t, testPNG(t, 16, 16, 104), nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain timeout has already passed
	if err := s.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("drain: %v", err)
	}
	for _, c := range []struct{ id, detail string }{
		{running.ID, "the server shut down while the job ran"},
		{queued.ID, "the server shut down before the job ran"},
	} {
		snap, _, err := s.engine.Watch(context.Background(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		if snap.State != jobs.StateFailed || snap.Failure == nil || snap.Failure.Detail != c.detail {
			t.Errorf("%+v", snap)
		}
	}
}

func TestServeShutsDownGracefullyWhenItsContextEnds(t *testing.T) {
	s, gen, base, st, stop, served := serveWithAHeldJob(t, 105, func(c *Config) { c.ResultGrace = -1 })

	stop() // SIGTERM
	until(t, "draining", func() bool { return s.engine.Load().Draining })
	// Still listening while draining: clients can poll their jobs.
	poll, err := http.Get(base + "/v1/generations/" + st.ID)
	if err != nil {
		t.Fatal(err)
	}
	poll.Body.Close()
	if poll.StatusCode != http.StatusOK {
		t.Errorf("poll while draining: %d", poll.StatusCode)
	}
	close(gen.gate)
	if err := waitFor(t, served, "Serve to return"); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still listening after shutdown")
	}
}

func TestAbortCutsTheDrainShort(t *testing.T) {
	s, _, _, st, stop, served := serveWithAHeldJob(t, 106, func(c *Config) { c.DrainTimeout = time.Hour })

	stop() // the first SIGTERM: a drain that would wait an hour for the gated job
	until(t, "draining", func() bool { return s.engine.Load().Draining })
	s.Abort() // the second
	if err := waitFor(t, served, "Serve to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve: %v, want the drain cut short", err)
	}
	snap, _, err := s.engine.Watch(context.Background(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if snap.State != jobs.StateFailed || snap.Failure == nil || snap.Failure.Detail != "the server shut down while the job ran" {
		t.Errorf("job after the abort: %+v", snap)
	}
}

func TestResultsStayReachableForTheGracePeriodAfterTheDrain(t *testing.T) {
	s, gen, base, st, stop, served := serveWithAHeldJob(t, 107, func(c *Config) { c.ResultGrace = time.Hour })

	stop()
	until(t, "draining", func() bool { return s.engine.Load().Draining })
	close(gen.gate) // the job succeeds during the drain
	until(t, "the drain to end", func() bool { return strings.Contains(s.logs(), "results stay reachable") })
	for _, path := range []string{"/v1/generations/" + st.ID, "/v1/generations/" + st.ID + "/result"} {
		got, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("%s after the drain: %v", path, err)
		}
		got.Body.Close()
		if got.StatusCode != http.StatusOK {
			t.Errorf("%s after the drain: %d", path, got.StatusCode)
		}
	}
	refused, err := http.Post(base+"/v1/generations", "image/png", bytes.NewReader(testPNG(t, 16, 16, 108)))
	if err != nil {
		t.Fatal(err)
	}
	readProblem(t, refused, http.StatusServiceUnavailable)
	s.Abort() // what a second signal does: the grace period ends too
	// The drain itself succeeded; only open connections may have been cut.
	if err := waitFor(t, served, "Serve to return"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// serveWithAHeldJob starts a server on loopback, as hy3d serve runs it, and
// has it accept one generation (of a picture of the given shade) that its
// generator holds until gen.gate closes: where every shutdown test starts.
// stop is the first SIGTERM; served receives what Serve returns.
func serveWithAHeldJob(t *testing.T, shade uint8, configure func(*Config)) (
	s *testServer, gen *fakeGenerator, base string, st Status, stop context.CancelFunc, served chan error) {
	t.Helper()
	gen = &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s = newTestServer(t, gen, configure)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	served = make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	base = "http://" + ln.Addr().String()
	resp, err := http.Post(base+"/v1/generations", "image/png", bytes.NewReader(testPNG(t, 16, 16, shade)))
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, resp, &st)
	resp.Body.Close()
	waitFor(t, gen.started, "the job")
	return s, gen, base, st, stop, served
}
