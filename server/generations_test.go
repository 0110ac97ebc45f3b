package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/telemetry"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRepeatedRequestIsAnsweredFromTheCacheWithIdenticalBytes(t *testing.T) {
	s := newTestServer(t, nil)
	img := testPNG(t, 16, 16, 9)
	get := func() ([]byte, *http.Response) {
		resp := s.do(t, "POST", "/v1/generate?format=obj", bytes.NewReader(img), "Content-Type", "image/png")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return readAll(t, resp), resp
	}
	first, r1 := get()
	second, r2 := get()
	if !bytes.Equal(first, second) || r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Fatal("cached answer differs from the first")
	}
	if n := s.gen.calls(); n != 1 {
		t.Fatalf("generator called %d times", n)
	}
	if n := s.pre.calls.Load(); n != 1 {
		t.Errorf("the repeat was preprocessed: %d preprocessings", n)
	}
	// The repeat made no generation of its own: it names the one that made
	// its mesh.
	id := r1.Header.Get("X-Generation-Id")
	if got := r2.Header.Get("X-Generation-Id"); got != id || r2.Header.Get("Location") != "/v1/generations/"+id {
		t.Errorf("repeat names generation %q (Location %q), want %s", got, r2.Header.Get("Location"), id)
	}
	if tm := r2.Header.Get("Server-Timing"); tm != `cache;desc="hit"` {
		t.Errorf("Server-Timing %q", tm)
	}
	if n := s.engine.Load().Generations; n != 1 {
		t.Errorf("%d generations tracked after one generation and a cache hit", n)
	}
	// An asynchronous request for the same thing is done on arrival.
	resp, st := s.submit(t, img, nil)
	if resp.StatusCode != http.StatusOK || st.Status != jobs.StateSucceeded || !st.Cached {
		t.Errorf("async repeat: %d %+v", resp.StatusCode, st)
	}
}

func TestRepeatedAsyncRequestReturnsTheExistingGeneration(t *testing.T) {
	s := newTestServer(t, nil)
	img := testPNG(t, 16, 16, 10)
	_, a := s.submit(t, img, map[string]string{"seed": "3"})
	s.final(t, a.ID)
	resp, b := s.submit(t, img, map[string]string{"seed": "3"})
	if resp.StatusCode != http.StatusOK || b.ID != a.ID || b.Status != jobs.StateSucceeded {
		t.Errorf("repeat: %d, generation %s (%s), want %s", resp.StatusCode, b.ID, b.Status, a.ID)
	}
	if n := s.pre.calls.Load(); n != 1 {
		t.Errorf("%d preprocessings", n)
	}
	if n := s.engine.Load().Generations; n != 1 {
		t.Errorf("%d generations tracked", n)
	}
}

func TestRepeatOfAJobInFlightJoinsItBeforePreprocessing(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{})}
	s := newTestServer(t, gen)
	img := testPNG(t, 16, 16, 11)
	_, a := s.submit(t, img, nil)
	_, b := s.submit(t, img, nil)
	if !b.Coalesced || b.ID == a.ID {
		t.Errorf("repeat in flight: %+v", b)
	}
	if n := s.pre.calls.Load(); n != 1 {
		t.Errorf("%d preprocessings", n)
	}
	close(gen.gate)
	if s.final(t, b.ID).Status != jobs.StateSucceeded || gen.calls() != 1 {
		t.Errorf("joined job: %d generator calls", gen.calls())
	}
}

func TestIfNoneMatchOnARepeatedRequestIsNotModified(t *testing.T) {
	s := newTestServer(t, nil)
	img := testPNG(t, 16, 16, 12)
	first := s.do(t, "POST", "/v1/generate", bytes.NewReader(img), "Content-Type", "image/png")
	etag := first.Header.Get("ETag")
	readAll(t, first)
	for _, inm := range []string{etag, `"other", ` + etag, "W/" + etag, "*"} {
		resp := s.do(t, "POST", "/v1/generate", bytes.NewReader(img), "Content-Type", "image/png", "If-None-Match", inm)
		if body := readAll(t, resp); resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d, %d bytes, ETag %q", inm, resp.StatusCode, len(body), resp.Header.Get("ETag"))
		}
	}
	resp := s.do(t, "POST", "/v1/generate", bytes.NewReader(img), "Content-Type", "image/png", "If-None-Match", `"other"`)
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Errorf("a stale ETag: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestEqualPixelsAndParametersShareAResult(t *testing.T) {
	s := newTestServer(t, nil)
	_, a := s.submit(t, testPNG(t, 16, 16, 5), nil)
	s.final(t, a.ID)
	other := testPNGLevel(t, 16, 16, 5, png.NoCompression)
	if bytes.Equal(other, testPNG(t, 16, 16, 5)) {
		t.Fatal("test needs two different encodings")
	}
	// Another encoding of the same pixels, with the defaults spelled out.
	_, b := s.submit(t, other, map[string]string{"steps": "5", "guidance": "5.0", "seed": "01234", "decode": "coarse-to-fine"})
	if !b.Cached {
		t.Errorf("equal request missed the cache: %+v", b)
	}
	for _, change := range []map[string]string{{"seed": "7"}, {"steps": "6"}, {"guidance": "4"}, {"resolution": "65"},
		{"faces": "1000"}, {"decode": "dense"}, {"model": "tiny-turbo"}} {
		_, c := s.submit(t, testPNG(t, 16, 16, 5), change)
		if c.Cached || c.Coalesced {
			t.Errorf("%v hit the cache", change)
		}
	}
	// The output format is not part of the key: every format is stored.
	if _, d := s.submit(t, testPNG(t, 16, 16, 5), map[string]string{"format": "stl"}); !d.Cached {
		t.Error("another format missed the cache")
	}
}

func TestResultsSurviveRestartInTheDiskStore(t *testing.T) {
	dir := t.TempDir()
	img := testPNG(t, 16, 16, 6)
	s1 := newTestServer(t, nil, func(c *Config) { c.ResultsDir = dir })
	_, st := s1.submit(t, img, nil)
	want := s1.final(t, st.ID).Result.Formats["glb"].ETag

	s2 := newTestServer(t, nil, func(c *Config) { c.ResultsDir = dir })
	resp, st2 := s2.submit(t, img, nil)
	if resp.StatusCode != http.StatusOK || !st2.Cached || st2.Result.Formats["glb"].ETag != want {
		t.Fatalf("restart: %d %+v", resp.StatusCode, st2)
	}
	if s2.gen.calls() != 0 {
		t.Error("generator ran for a stored result")
	}
	var stats telemetry.StatsView
	decodeJSON(t, s2.do(t, "GET", "/v1/stats", nil), &stats)
	if stats.Cache.DiskHits != 1 {
		t.Errorf("cache stats %+v", stats.Cache)
	}
}

func TestResultEvictedPastTheStoreBoundIsGoneAndRegenerated(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.ResultsBytes, c.CacheBytes = 1, -1 })
	first := testPNG(t, 16, 16, 8)
	_, a := s.submit(t, first, nil)
	s.final(t, a.ID)
	_, b := s.submit(t, testPNG(t, 16, 16, 9), nil)
	s.final(t, b.ID)

	p := readProblem(t, s.do(t, "GET", "/v1/generations/"+a.ID+"/result", nil), http.StatusGone)
	if p.Type != problemDocs+"result-gone" {
		t.Errorf("problem %+v", p)
	}
	if resp := s.do(t, "GET", "/v1/generations/"+b.ID+"/result", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("newest result: %d", resp.StatusCode)
	}
	_, again := s.submit(t, first, nil)
	if again.Cached || s.final(t, again.ID).Status != jobs.StateSucceeded || s.gen.calls() != 3 {
		t.Errorf("resubmitting an evicted result: %+v, %d generator calls", again, s.gen.calls())
	}
}

func TestCorruptStoredResultIsDroppedAndRegenerated(t *testing.T) {
	dir := t.TempDir()
	img := testPNG(t, 16, 16, 7)
	s1 := newTestServer(t, nil, func(c *Config) { c.ResultsDir = dir })
	_, st := s1.submit(t, img, nil)
	s1.final(t, st.ID)
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*", "mesh.obj"))
	if len(files) != 1 {
		t.Fatalf("store files %v", files)
	}
	if err := os.WriteFile(files[0], []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := newTestServer(t, nil, func(c *Config) { c.ResultsDir = dir })
	_, st2 := s2.submit(t, img, nil)
	if st2.Cached {
		t.Fatal("served a corrupt result")
	}
	if got := s2.final(t, st2.ID); got.Status != jobs.StateSucceeded || s2.gen.calls() != 1 {
		t.Fatalf("regeneration: %+v", got)
	}
}

func TestConcurrentIdenticalRequestsShareOneJob(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	img := testPNG(t, 16, 16, 8)
	const n = 6
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, st := s.submit(t, img, map[string]string{"format": []string{"glb", "obj"}[i%2]})
			ids[i] = st.ID
		}()
	}
	wg.Wait()
	waitFor(t, gen.started, "the job to start")
	close(gen.gate)
	etag := ""
	coalesced := 0
	for _, id := range ids {
		st := s.final(t, id)
		if st.Status != jobs.StateSucceeded {
			t.Fatalf("%s: %+v", id, st)
		}
		if etag == "" {
			etag = st.Result.Formats["glb"].ETag
		} else if st.Result.Formats["glb"].ETag != etag {
			t.Error("coalesced generations got different results")
		}
		if st.Coalesced {
			coalesced++
		}
	}
	if gen.calls() != 1 {
		t.Fatalf("generator called %d times for %d identical requests", gen.calls(), n)
	}
	if coalesced != n-1 {
		t.Errorf("%d generations marked coalesced, want %d", coalesced, n-1)
	}
}

func TestCancellingOneOfTwoCoalescedRequestsKeepsTheJob(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	img := testPNG(t, 16, 16, 10)
	_, a := s.submit(t, img, nil)
	_, b := s.submit(t, img, nil)
	batch := waitFor(t, gen.started, "the job to start")
	var st Status
	decodeJSON(t, s.do(t, "DELETE", "/v1/generations/"+a.ID, nil), &st)
	if st.Status != jobs.StateCancelled {
		t.Fatalf("cancelled generation: %+v", st)
	}
	if batch[0].Context.Err() != nil {
		t.Fatal("the shared job was cancelled while another request still wanted it")
	}
	close(gen.gate)
	if got := s.final(t, b.ID); got.Status != jobs.StateSucceeded {
		t.Fatalf("the other request: %+v", got)
	}
	if got := s.final(t, a.ID); got.Status != jobs.StateCancelled || got.Error == nil {
		t.Fatalf("the cancelled request after the job ended: %+v", got)
	}
}

func TestCancelQueuedAndRunningJobs(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 2)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, running := s.submit(t, testPNG(t, 16, 16, 11), nil)
	batch := waitFor(t, gen.started, "the first job to start")
	_, queued := s.submit(t, testPNG(t, 16, 16, 12), nil)
	if queued.Status != jobs.StateQueued || queued.QueuePosition != 1 || queued.EstimatedWaitSeconds <= 0 {
		t.Fatalf("second job: %+v", queued)
	}

	decodeJSON(t, s.do(t, "DELETE", "/v1/generations/"+queued.ID, nil), &queued)
	if queued.Status != jobs.StateCancelled {
		t.Fatalf("queued cancel: %+v", queued)
	}
	decodeJSON(t, s.do(t, "DELETE", "/v1/generations/"+running.ID, nil), &running)
	if running.Status != jobs.StateCancelled {
		t.Fatalf("running cancel: %+v", running)
	}
	waitFor(t, batch[0].Context.Done(), "the running job's context to end")
	if got := s.final(t, running.ID); got.Status != jobs.StateCancelled {
		t.Fatalf("final %+v", got)
	}
	readProblem(t, s.do(t, "DELETE", "/v1/generations/"+running.ID, nil), http.StatusConflict)
	readProblem(t, s.do(t, "GET", "/v1/generations/"+running.ID+"/result", nil), http.StatusConflict)
	if gen.calls() != 1 {
		t.Errorf("the cancelled queued job still ran (%d batches)", gen.calls())
	}
}

func TestPriorityOrdersTheQueueAndPromotesSharedJobs(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 8)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, running := s.submit(t, testPNG(t, 16, 16, 40), nil)
	waitFor(t, gen.started, "the first job to start")

	type queued struct {
		name     string
		shade    uint8
		priority string
	}
	arrivals := []queued{{"low 1", 41, "low"}, {"normal 1", 42, ""}, {"high 1", 43, "high"},
		{"low 2", 44, "low"}, {"normal 2", 45, "normal"}, {"high 2", 46, "HIGH"}}
	ids := map[string]string{}
	for _, q := range arrivals {
		fields := map[string]string{}
		if q.priority != "" {
			fields["priority"] = q.priority
		}
		_, st := s.submit(t, testPNG(t, 16, 16, q.shade), fields)
		ids[q.name] = st.ID
	}
	// A high-priority request for low 2's picture joins that job and moves it
	// up to the high-priority jobs' end of the queue.
	_, joined := s.submit(t, testPNG(t, 16, 16, 44), map[string]string{"priority": "high"})
	if !joined.Coalesced || joined.Params.Priority != "high" {
		t.Fatalf("joining request: %+v", joined)
	}
	want := []string{"high 1", "high 2", "low 2", "normal 1", "normal 2", "low 1"}
	byPicture := map[string]string{} // preprocessed picture hash → name
	for pos, name := range want {
		var st Status
		decodeJSON(t, s.do(t, "GET", "/v1/generations/"+ids[name], nil), &st)
		if st.QueuePosition != pos+1 {
			t.Errorf("%s at queue position %d, want %d", name, st.QueuePosition, pos+1)
		}
		byPicture[st.Input.SHA256] = name
	}
	for range len(want) + 1 {
		gen.gate <- struct{}{}
	}
	s.final(t, running.ID)
	for i, name := range want {
		batch := waitFor(t, gen.started, name+" to start")
		if got := byPicture[hex.EncodeToString(batch[0].Input.Hash[:])]; got != name {
			t.Errorf("run %d was %s, want %s", i+1, got, name)
		}
	}
}

// A queued generation's watchers (SSE, synchronous waits) hear of every
// change of its queue position: a job jumping ahead, the queue advancing.
func TestQueuePositionChangesAreEvents(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 4)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, running := s.submit(t, testPNG(t, 16, 16, 60), nil)
	waitFor(t, gen.started, "the first job to start")
	_, queued := s.submit(t, testPNG(t, 16, 16, 61), nil)

	position := func() (int, <-chan struct{}) {
		snap, changed, err := s.engine.Watch(context.Background(), queued.ID)
		if err != nil {
			t.Fatal(err)
		}
		return snap.QueuePosition, changed
	}
	pos, changed := position()
	if pos != 1 {
		t.Fatalf("queue position %d, want 1", pos)
	}
	s.submit(t, testPNG(t, 16, 16, 62), map[string]string{"priority": "high"})
	waitFor(t, changed, "an event for the job that jumped ahead")
	if pos, changed = position(); pos != 2 {
		t.Fatalf("after a high-priority arrival: position %d, want 2", pos)
	}
	gen.gate <- struct{}{} // the running job ends; the high-priority one starts
	waitFor(t, changed, "an event for the queue advancing")
	if pos, _ = position(); pos != 1 {
		t.Fatalf("after the queue advanced: position %d, want 1", pos)
	}
	close(gen.gate)
	s.final(t, running.ID)
	s.final(t, queued.ID)
}

func TestLowPriorityLeavesTheLastQuarterOfTheQueueToOthers(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 8)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxQueue = 4; c.MaxBatch = 1 })
	s.submit(t, testPNG(t, 16, 16, 50), nil)
	waitFor(t, gen.started, "the first job to start")
	for i := range 3 {
		if resp, _ := s.submit(t, testPNG(t, 16, 16, uint8(51+i)), map[string]string{"priority": "low"}); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("low-priority job %d: %d", i, resp.StatusCode)
		}
	}
	resp, _ := s.submit(t, testPNG(t, 16, 16, 55), map[string]string{"priority": "low"})
	if p := readProblem(t, resp, http.StatusServiceUnavailable); p.Type != problemDocs+"queue-full" || !strings.Contains(p.Detail, "low-priority") {
		t.Errorf("problem %+v", p)
	}
	if resp, _ := s.submit(t, testPNG(t, 16, 16, 56), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a normal job at 3 of 4: %d", resp.StatusCode)
	}
	resp, _ = s.submit(t, testPNG(t, 16, 16, 57), map[string]string{"priority": "high"})
	readProblem(t, resp, http.StatusServiceUnavailable)
}

func TestFullQueueShedsWith503AndRetryAfterButKeepsAcceptedJobs(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 4)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxQueue = 2; c.MaxBatch = 1 })
	_, first := s.submit(t, testPNG(t, 16, 16, 20), nil)
	waitFor(t, gen.started, "the first job to start")
	var accepted = []string{first.ID}
	for i := range 2 {
		resp, st := s.submit(t, testPNG(t, 16, 16, uint8(21+i)), nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("queued job %d: %d", i, resp.StatusCode)
		}
		accepted = append(accepted, st.ID)
	}
	resp, _ := s.submit(t, testPNG(t, 16, 16, 30), nil)
	p := readProblem(t, resp, http.StatusServiceUnavailable)
	if p.Type != problemDocs+"queue-full" {
		t.Errorf("type %s", p.Type)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	// Two jobs ahead at the default 2 s estimate with one worker: 6 s for
	// the third position.
	if err != nil || ra != 6 {
		t.Errorf("Retry-After %q, want 6", resp.Header.Get("Retry-After"))
	}
	// Identical requests still join the jobs in flight while the queue is full.
	if resp, st := s.submit(t, testPNG(t, 16, 16, 21), nil); resp.StatusCode != http.StatusAccepted || !st.Coalesced {
		t.Errorf("coalescing under a full queue: %d %+v", resp.StatusCode, st)
	}
	close(gen.gate)
	for _, id := range accepted {
		if st := s.final(t, id); st.Status != jobs.StateSucceeded {
			t.Errorf("accepted job %s ended %s", id, st.Status)
		}
	}
	var stats telemetry.StatsView
	decodeJSON(t, s.do(t, "GET", "/v1/stats", nil), &stats)
	if stats.Shed["queue_full"] != 1 || stats.Jobs.Succeeded != 3 {
		t.Errorf("stats %+v", stats)
	}
}

func TestRetryAfterRoundsUpAndIsNeverZero(t *testing.T) {
	if retryAfterSeconds(7500*time.Millisecond) != 8 || retryAfterSeconds(0) != 1 {
		t.Error("Retry-After must round up and never be 0")
	}
}

func TestQueuedJobsRunInBatchesOfOneModel(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}, 8), started: make(chan []jobs.Job, 8)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 4 })
	_, first := s.submit(t, testPNG(t, 16, 16, 40), nil)
	waitFor(t, gen.started, "the first batch")
	var ids []string
	for i := range 5 {
		model := "tiny"
		if i%2 == 1 {
			model = "tiny-turbo" // MaxBatch 2 of its own
		}
		_, st := s.submit(t, testPNG(t, 16, 16, uint8(41+i)), map[string]string{"model": model})
		ids = append(ids, st.ID)
	}
	for range 4 {
		gen.gate <- struct{}{}
	}
	for _, id := range append(ids, first.ID) {
		if st := s.final(t, id); st.Status != jobs.StateSucceeded {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	// Each model set has its own step loop: first alone, then the three tiny
	// jobs that queued behind it together; the turbo jobs never share a
	// batch with tiny ones, nor exceed turbo's MaxBatch of 2.
	var tiny []int
	turbo := 0
	for i := range gen.calls() {
		b := gen.batch(i)
		for _, j := range b[1:] {
			if j.Params.Model != b[0].Params.Model {
				t.Fatalf("batch %d mixes models", i)
			}
		}
		if b[0].Params.Model == "tiny" {
			tiny = append(tiny, len(b))
		} else if len(b) > 2 {
			t.Errorf("turbo batch of %d", len(b))
		} else {
			turbo += len(b)
		}
	}
	if len(tiny) != 2 || tiny[0] != 1 || tiny[1] != 3 || turbo != 2 {
		t.Errorf("tiny batches %v, turbo jobs %d", tiny, turbo)
	}
}

func TestDeadlineFailsTheGeneration(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	_, st := s.submit(t, testPNG(t, 16, 16, 50), map[string]string{"timeout": "0.05"})
	batch := waitFor(t, gen.started, "the job to start")
	final := s.final(t, st.ID)
	if final.Status != jobs.StateFailed || final.Error == nil || final.Error.Type != problemDocs+"deadline-exceeded" {
		t.Fatalf("%+v", final)
	}
	waitFor(t, batch[0].Context.Done(), "the job's context to end")
	if !errors.Is(context.Cause(batch[0].Context), jobs.ErrAbandoned) {
		t.Errorf("cause %v", context.Cause(batch[0].Context))
	}
}

func TestSynchronousClientThatLeavesAbandonsItsJob(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.ts.URL+"/v1/generate", bytes.NewReader(testPNG(t, 16, 16, 51)))
	req.Header.Set("Content-Type", "image/png")
	errc := make(chan error, 1)
	go func() {
		resp, err := s.ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	batch := waitFor(t, gen.started, "the job to start")
	cancel()
	waitFor(t, errc, "the client to give up")
	waitFor(t, batch[0].Context.Done(), "the abandoned job's context to end")
}

func TestGeneratorFailureAndPanicFailTheJobNotTheServer(t *testing.T) {
	for _, gen := range []*fakeGenerator{{fail: errors.New("engine on fire")}, {panics: true}} {
		s := newTestServer(t, gen)
		_, st := s.submit(t, testPNG(t, 16, 16, 52), nil)
		final := s.final(t, st.ID)
		if final.Status != jobs.StateFailed || final.Error == nil || final.Error.Status != http.StatusInternalServerError {
			t.Fatalf("%+v", final)
		}
		resp := s.do(t, "POST", "/v1/generate", bytes.NewReader(testPNG(t, 16, 16, 53)), "Content-Type", "image/png")
		readProblem(t, resp, http.StatusInternalServerError)
	}
}

func TestLongSynchronousAndStreamingAnswersOutliveConnectionTimeouts(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen, func(c *Config) {
		c.ReadTimeout, c.WriteTimeout = 50*time.Millisecond, 50*time.Millisecond
	})
	img := testPNG(t, 16, 16, 55)
	_, async := s.submit(t, img, nil)
	batch := waitFor(t, gen.started, "the job")

	type answer struct {
		status int
		body   []byte
		err    error
	}
	get := func(ch chan<- answer, req *http.Request) {
		resp, err := s.ts.Client().Do(req)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- answer{resp.StatusCode, b, err}
	}
	syncAnswer, stream := make(chan answer, 1), make(chan answer, 1)
	post, _ := http.NewRequest("POST", s.ts.URL+"/v1/generate", bytes.NewReader(img))
	post.Header.Set("Content-Type", "image/png")
	go get(syncAnswer, post)
	events, _ := http.NewRequest("GET", s.ts.URL+"/v1/generations/"+async.ID+"/events", nil)
	go get(stream, events)
	until(t, "the synchronous request to join the job", func() bool {
		return s.engine.Load().Generations == 2
	})
	// Longer than both timeouts: a server that let them apply would have
	// cut the synchronous answer and the stream by now.
	time.Sleep(200 * time.Millisecond)
	s.do(t, "DELETE", "/v1/generations/"+async.ID, nil)
	if batch[0].Context.Err() != nil {
		t.Fatal("the synchronous request left the job while it waited")
	}
	close(gen.gate)
	a := waitFor(t, syncAnswer, "the synchronous answer")
	if a.err != nil || a.status != http.StatusOK || !bytes.HasPrefix(a.body, []byte("glTF")) {
		t.Fatalf("%d %v %q", a.status, a.err, a.body)
	}
	e := waitFor(t, stream, "the event stream")
	if e.err != nil || !bytes.Contains(e.body, []byte(`"status":"cancelled"`)) {
		t.Fatalf("stream: %v %s", e.err, e.body)
	}
}

func TestCoalescedRequestKeepsItsOwnDeadline(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	img := testPNG(t, 16, 16, 52)
	_, patient := s.submit(t, img, nil)
	batch := waitFor(t, gen.started, "the job to start")
	_, hurried := s.submit(t, img, map[string]string{"timeout": "0.05"})
	if !hurried.Coalesced {
		t.Fatalf("the identical request was not coalesced: %+v", hurried)
	}
	final := s.final(t, hurried.ID)
	if final.Status != jobs.StateFailed || final.Error == nil || final.Error.Type != problemDocs+"deadline-exceeded" {
		t.Fatalf("the coalesced request past its own deadline: %+v", final)
	}
	if batch[0].Context.Err() != nil {
		t.Fatal("the shared job ended with the deadline of one of its requests")
	}
	close(gen.gate)
	if got := s.final(t, patient.ID); got.Status != jobs.StateSucceeded {
		t.Fatalf("the request without a deadline: %+v", got)
	}
}

func TestCancellingAJobAheadIsAQueueEvent(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 4)}
	s := newTestServer(t, gen, func(c *Config) { c.MaxBatch = 1 })
	_, running := s.submit(t, testPNG(t, 16, 16, 63), nil)
	waitFor(t, gen.started, "the first job to start")
	_, ahead := s.submit(t, testPNG(t, 16, 16, 64), nil)
	_, behind := s.submit(t, testPNG(t, 16, 16, 65), nil)
	snap, changed, err := s.engine.Watch(context.Background(), behind.ID)
	if err != nil || snap.QueuePosition != 2 {
		t.Fatalf("position %d (%v), want 2", snap.QueuePosition, err)
	}
	readAll(t, s.do(t, "DELETE", "/v1/generations/"+ahead.ID, nil))
	waitFor(t, changed, "an event for the job behind the cancelled one")
	if snap, _, _ = s.engine.Watch(context.Background(), behind.ID); snap.State != jobs.StateQueued || snap.QueuePosition != 1 {
		t.Fatalf("after the cancel: %s at position %d, want queued at 1", snap.State, snap.QueuePosition)
	}
	close(gen.gate)
	s.final(t, running.ID)
	s.final(t, behind.ID)
}
