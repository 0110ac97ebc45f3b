package server

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hy3d/hy3d/jobs"
)

func TestEventsStreamProgressUntilTheEnd(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 2)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, blocker := s.submit(t, testPNG(t, 16, 16, 70), nil)
	waitFor(t, gen.started, "the first job")
	_, st := s.submit(t, testPNG(t, 16, 16, 71), nil)

	resp := s.do(t, "GET", "/v1/generations/"+st.ID+"/events", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, Status) {
		t.Helper()
		var event string
		var got Status
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if err := jsonUnmarshal(strings.TrimPrefix(line, "data: "), &got); err != nil {
					t.Fatal(err)
				}
			case line == "" && event != "":
				return event, got
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", got
	}
	if ev, got := next(); ev != "status" || got.Status != jobs.StateQueued || got.QueuePosition != 1 {
		t.Fatalf("first event %s %+v", ev, got)
	}
	gen.gate <- struct{}{} // the blocker finishes; ours starts and reports a step
	var states []jobs.State
	var sawProgress, released bool
	for {
		_, got := next()
		states = append(states, got.Status)
		if got.Progress != nil && got.Progress.Stage == "sample" && got.Progress.Steps == 5 {
			sawProgress = true
		}
		if got.Status == jobs.StateRunning && sawProgress && !released {
			released = true
			close(gen.gate)
		}
		if got.Status.Terminal() {
			if got.Status != jobs.StateSucceeded || got.Result == nil {
				t.Fatalf("final %+v", got)
			}
			break
		}
	}
	if !sawProgress {
		t.Errorf("no progress event among %v", states)
	}
	if sc.Scan() {
		t.Errorf("stream continued after the terminal event: %q", sc.Text())
	}
	if got := s.final(t, blocker.ID); got.Status != jobs.StateSucceeded {
		t.Errorf("blocker %+v", got)
	}
}

func TestEventsOfAFinishedGenerationEndAtOnce(t *testing.T) {
	s := newTestServer(t, nil)
	id := finishedGeneration(t, s, nil)
	seen := s.waitStatus(t, id)
	if len(seen) != 1 || seen[0].Status != jobs.StateSucceeded {
		t.Fatalf("%+v", seen)
	}
}

// heldStream records an event stream whose first write does not return
// until the test releases it: a client that reads slowly.
type heldStream struct {
	*httptest.ResponseRecorder
	first, release chan struct{}
	once           sync.Once
}

func (w *heldStream) Write(p []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(p)
	w.once.Do(func() {
		close(w.first)
		<-w.release
	})
	return n, err
}

// A stream that cannot keep up gets the latest status, not a backlog: the
// changes made while it was blocked arrive as one event.
func TestEventsCoalesceToTheLatestStatus(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	_, st := s.submit(t, testPNG(t, 16, 16, 72), map[string]string{"steps": "50"})
	waitFor(t, gen.started, "the job")

	w := &heldStream{ResponseRecorder: httptest.NewRecorder(), first: make(chan struct{}), release: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.ts.Config.Handler.ServeHTTP(w, httptest.NewRequest("GET", "/v1/generations/"+st.ID+"/events", nil))
	}()
	waitFor(t, w.first, "the first event")
	close(gen.gate) // 50 steps, the stages after them and the end, while the stream is blocked
	if got := s.final(t, st.ID); got.Status != jobs.StateSucceeded {
		t.Fatalf("%+v", got)
	}
	close(w.release)
	waitFor(t, served, "the end of the stream")

	var ids []string
	var states []jobs.State
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var got Status
			if err := jsonUnmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			states = append(states, got.Status)
		}
	}
	if strings.Join(ids, ",") != "1,2" || len(states) != 2 || states[0] != jobs.StateRunning || states[1] != jobs.StateSucceeded {
		t.Errorf("events %v with states %v, want 1,2: running then succeeded", ids, states)
	}
}
