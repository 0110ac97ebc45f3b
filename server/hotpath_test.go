package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"github.com/hy3d/hy3d/jobs"
	"image/png"
	"net/http"
	"testing"
)

func TestFinishedGenerationsBeyondTheBoundAreForgottenOldestFirst(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{})}
	s := newTestServer(t, gen, func(c *Config) { c.MaxGenerations = 3 })
	_, waiting := s.submit(t, testPNG(t, 16, 16, 40), nil) // held by the gate throughout
	var done []string
	for i := range 4 {
		_, st := s.submit(t, testPNG(t, 16, 16, uint8(41+i)), nil)
		s.do(t, "DELETE", "/v1/generations/"+st.ID, nil).Body.Close()
		done = append(done, st.ID)
	}
	// Four finished, one waiting, a bound of three: the two oldest
	// finished are gone, the waiting one stays.
	for i, id := range done {
		resp := s.do(t, "GET", "/v1/generations/"+id, nil)
		resp.Body.Close()
		if want := map[bool]int{true: http.StatusNotFound, false: http.StatusOK}[i < 2]; resp.StatusCode != want {
			t.Errorf("generation %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	resp := s.do(t, "GET", "/v1/generations/"+waiting.ID, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the waiting generation: %d", resp.StatusCode)
	}
	if n := s.engine.Load().Generations; n != 3 {
		t.Errorf("%d generations tracked", n)
	}
	close(gen.gate)
}

func TestFullQueueRefusesBeforePreprocessing(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxQueue, c.MaxBatch = 1, 1 })
	s.submit(t, testPNG(t, 16, 16, 50), nil)
	waitFor(t, gen.started, "the first job")
	s.submit(t, testPNG(t, 16, 16, 51), nil) // fills the queue
	before := s.pre.calls.Load()
	resp, _ := s.submit(t, testPNG(t, 16, 16, 52), nil)
	if p := readProblem(t, resp, http.StatusServiceUnavailable); p.Type != problemDocs+"queue-full" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%+v", p)
	}
	if n := s.pre.calls.Load() - before; n != 0 {
		t.Errorf("a refused request was preprocessed (%d)", n)
	}
	close(gen.gate)
}

func TestPreprocessingQueuesWhileTheWaitFitsTheDeadline(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.PreprocessConcurrency = 1 })
	s.pre.gate = make(chan struct{})
	type answer struct {
		code  int
		retry string
		st    Status
	}
	send := func(shade uint8, fields map[string]string) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			resp, st := s.submit(t, testPNG(t, 16, 16, shade), fields)
			ch <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), st}
		}()
		return ch
	}
	first := send(60, nil)
	until(t, "the first preprocessing", func() bool { return s.pre.calls.Load() == 1 })
	// Before any preprocessing has been measured the estimate is 100 ms a
	// picture: a second in line with a minute's deadline waits...
	patient := send(61, nil)
	until(t, "the second in line", func() bool { return s.slots.waiting.Load() == 1 })
	// ...while one that must be done within 50 ms is told at once.
	resp, _ := s.submit(t, testPNG(t, 16, 16, 62), map[string]string{"timeout": "0.05"})
	if p := readProblem(t, resp, http.StatusServiceUnavailable); p.Type != problemDocs+"busy" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%+v", p)
	}
	close(s.pre.gate)
	for _, ch := range []<-chan answer{first, patient} {
		a := waitFor(t, ch, "an answer")
		if a.code != http.StatusAccepted || s.final(t, a.st.ID).Status != jobs.StateSucceeded {
			t.Errorf("answer %d %+v", a.code, a.st)
		}
	}
}

func TestDrainRefusesARequestIdenticalToAJobInFlight(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	img := testPNG(t, 16, 16, 70)
	_, running := s.submit(t, img, nil)
	waitFor(t, gen.started, "the job")
	go s.Drain(t.Context())
	until(t, "draining", func() bool { return s.engine.Load().Draining })
	for _, other := range [][]byte{img, testPNGLevel(t, 16, 16, 70, png.NoCompression)} {
		resp, _ := s.submit(t, other, nil)
		if p := readProblem(t, resp, http.StatusServiceUnavailable); p.Type != problemDocs+"draining" {
			t.Errorf("%+v", p)
		}
	}
	close(gen.gate)
	if st := s.final(t, running.ID); st.Status != jobs.StateSucceeded {
		t.Errorf("%+v", st)
	}
}

func TestDropInGenerateRepeatIsAnsweredFromTheUpload(t *testing.T) {
	s := newTestServer(t, nil)
	body, err := json.Marshal(map[string]any{"image": base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 81)), "type": "stl"})
	if err != nil {
		t.Fatal(err)
	}
	var meshes [][]byte
	for range 2 {
		resp := s.do(t, "POST", "/generate", bytes.NewReader(body), "Content-Type", "application/json")
		if b := readAll(t, resp); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "model/stl" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		} else {
			meshes = append(meshes, b)
		}
	}
	if !bytes.Equal(meshes[0], meshes[1]) || s.pre.calls.Load() != 1 || s.engine.Load().Generations != 1 {
		t.Errorf("repeat: same bytes %v, %d preprocessings, %d generations", bytes.Equal(meshes[0], meshes[1]),
			s.pre.calls.Load(), s.engine.Load().Generations)
	}
}
