package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHy3d answers the routes the benchmark uses, as docs/api.md describes
// them: the first generation is shed once with Retry-After, a picture seen
// before is a cache hit (synchronous: the mesh at once; asynchronous: a
// terminal status at once), otherwise an asynchronous generation is queued
// and its event stream goes running → succeeded.
type fakeHy3d struct {
	mu     sync.Mutex
	posts  int
	seen   map[[32]byte]bool
	cached map[string]bool
	polls  int
}

// status is a generation's status JSON in the given state.
func (f *fakeHy3d) status(id, state string) string {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	started, finished := t0.Add(40*time.Millisecond), t0.Add(100*time.Millisecond)
	if state != "succeeded" {
		return fmt.Sprintf(`{"id":%q,"status":%q,"created_at":%q}`, id, state, t0.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf(`{"id":%q,"status":"succeeded","created_at":%q,"started_at":%q,"finished_at":%q,"cached":%t,
		"coalesced":false,"stages":[{"stage":"preprocess","ms":5},{"stage":"sample","ms":50}],"result":{"faces":1000}}`,
		id, t0.Format(time.RFC3339Nano), started.Format(time.RFC3339Nano), finished.Format(time.RFC3339Nano), f.cached[id])
}

// create takes a generation request; it answers false after writing a refusal.
func (f *fakeHy3d) create(w http.ResponseWriter, r *http.Request) (string, bool) {
	f.posts++
	if f.posts == 1 {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return "", false
	}
	file, _, err := r.FormFile("image")
	if err != nil || r.FormValue("steps") != "5" {
		http.Error(w, "bad form", http.StatusBadRequest)
		return "", false
	}
	img, _ := io.ReadAll(file)
	sum := sha256.Sum256(img)
	id := fmt.Sprintf("g%d", f.posts)
	f.cached[id] = f.seen[sum]
	f.seen[sum] = true
	return id, true
}

func (f *fakeHy3d) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.Path
	switch {
	case path == "/readyz":
		fmt.Fprint(w, `{"status":"ready"}`)
	case r.Method == http.MethodPost && path == "/v1/generate":
		if id, ok := f.create(w, r); ok {
			w.Header().Set("Location", "/v1/generations/"+id)
			fmt.Fprint(w, "glTF mesh bytes")
		}
	case r.Method == http.MethodPost && path == "/v1/generations":
		if id, ok := f.create(w, r); ok {
			if f.cached[id] {
				fmt.Fprint(w, f.status(id, "succeeded"))
				return
			}
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, f.status(id, "queued"))
		}
	case strings.HasSuffix(path, "/events"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/generations/"), "/events")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, ": keep-alive\n\nid: 1\nevent: status\ndata: %s\n\n", f.status(id, "running"))
		fmt.Fprintf(w, "id: 2\nevent: status\ndata: %s\n\n", strings.ReplaceAll(f.status(id, "succeeded"), "\n", ""))
	case strings.HasSuffix(path, "/result"):
		fmt.Fprint(w, "glTF mesh bytes")
	case strings.HasPrefix(path, "/v1/generations/"):
		fmt.Fprint(w, f.status(strings.TrimPrefix(path, "/v1/generations/"), "succeeded"))
	case path == "/v1/gpu":
		f.polls++
		fmt.Fprintf(w, `{"available":true,"devices":[{"index":0,"name":"NVIDIA GeForce RTX 3090",
			"utilization_gpu_percent":%d,"memory_used_bytes":%d,"memory_total_bytes":25769803776,
			"power_watts":%d,"temperature_celsius":60,"throttle_reasons":[]}]}`, 40+20*(f.polls%2), 1<<30*f.polls, 200+f.polls)
	case path == "/v1/stats":
		fmt.Fprint(w, `{"jobs":{"mean_batch_size":2}}`)
	default:
		http.NotFound(w, r)
	}
}

func TestLoadReportsWhatTheServerAnswered(t *testing.T) {
	for _, mode := range []string{modeSync, modeAsync} {
		t.Run(mode, func(t *testing.T) { testLoadReports(t, mode) })
	}
}

func testLoadReports(t *testing.T, mode string) {
	fake := &fakeHy3d{seen: map[[32]byte]bool{}, cached: map[string]bool{}}
	ts := httptest.NewServer(fake)
	defer ts.Close()
	out := t.TempDir()
	cfg, err := parseConfig([]string{"-url", ts.URL, "-mode", mode, "-requests", "8", "-concurrency", "3", "-repeat", "0.5",
		"-param", "steps=5", "-out", out, "-gpu-interval", "1h"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	repeats := 0
	for _, r := range rep.records {
		if r.Repeat {
			repeats++
		}
	}
	s := rep.summary
	if repeats == 0 || repeats == 8 {
		t.Fatalf("seed 1 at -repeat 0.5 should repeat some pictures, repeated %d", repeats)
	}
	if s.Succeeded != 8 || s.Failed != 0 || s.Cached != repeats || s.Generated != 8-repeats || s.ShedAnswers != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.Queue.P50 != 40 || s.Run.Max != 60 || s.LatencyGenerated.N != 8-repeats || s.LatencyCached.N != repeats {
		t.Errorf("timings: queue %+v run %+v", s.Queue, s.Run)
	}
	if len(s.Stages) != 2 || s.Stages[0].Stage != "preprocess" || s.Stages[1].Mean != 50 {
		t.Errorf("stages %+v", s.Stages)
	}
	// Polled at the start and at the end even with a long interval.
	if s.GPU == nil || s.GPU.Samples != 2 || s.GPU.UtilMaxPct != 60 || s.GPU.MemoryMaxBytes != 2<<30 || s.ServerMeanBatchSize != 2 {
		t.Errorf("gpu %+v, batch %v", s.GPU, s.ServerMeanBatchSize)
	}

	if err := rep.write(out); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, filepath.Join(out, "requests.csv"))
	if len(rows) != 9 || rows[0][len(rows[0])-1] != "stage_sample_ms" || rows[1][len(rows[1])-1] != "50.000" {
		t.Errorf("requests.csv: %d rows, header %v, first %v", len(rows), rows[0], rows[1])
	}
	if gpu := readCSV(t, filepath.Join(out, "gpu.csv")); len(gpu) != 3 || gpu[1][2] != "NVIDIA GeForce RTX 3090" {
		t.Errorf("gpu.csv %v", gpu)
	}
	var back summary
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Generated != s.Generated || back.Params["steps"] != "5" {
		t.Errorf("summary.json: %v %+v", err, back)
	}
	var md strings.Builder
	s.markdown(&md)
	for _, want := range []string{"8 " + mode + " requests", "| stage sample | ", "1 shed answers", "GPU (2 samples)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestRequestsGiveUpAfterTheirAttempts(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
		case "/v1/gpu":
			fmt.Fprint(w, `{"available":false,"reason":"NVML unavailable"}`)
		case "/v1/generate":
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	cfg, err := parseConfig([]string{"-url", ts.URL, "-requests", "2", "-attempts", "3"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.summary
	if s.Failed != 2 || s.ShedAnswers != 6 || s.Errors["shed 3 times"] != 2 || s.GPU != nil || !strings.Contains(s.GPUNote, "NVML") {
		t.Errorf("summary %+v", s)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestNearestRankPercentiles(t *testing.T) {
	tests := []struct {
		in   []float64
		want dist
	}{
		{nil, dist{}},
		{[]float64{7}, dist{N: 1, Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}},
		{[]float64{4, 1, 3, 2}, dist{N: 4, Mean: 2.5, P50: 2, P90: 4, P99: 4, Max: 4}},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, dist{N: 10, Mean: 5.5, P50: 5, P90: 9, P99: 10, Max: 10}},
	}
	for _, tc := range tests {
		if got := newDist(tc.in); got != tc.want {
			t.Errorf("newDist(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"3", 3 * time.Second},
		{"0", 0},
		{"", time.Second},
		{"Wed, 21 Oct 2026 07:28:00 GMT", time.Second},
		{"-4", time.Second},
		{"600", 30 * time.Second},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.header, 30*time.Second); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestPicturesRepeatOnlyEarlierOnesAndDiffer(t *testing.T) {
	for _, repeat := range []float64{0, 0.25, 0.9} {
		order := pictureOrder(200, repeat, 3)
		next := 0
		repeats := 0
		for _, p := range order {
			switch {
			case p == next:
				next++
			case p < next:
				repeats++
			default:
				t.Fatalf("repeat %v: picture %d before %d", repeat, p, next)
			}
		}
		if got := float64(repeats) / 200; got < repeat-0.1 || got > repeat+0.1 {
			t.Errorf("repeat %v: share %v", repeat, got)
		}
	}
	colours := map[color.NRGBA]int{}
	for k := range pictureColours {
		c := pictureColour(k)
		if j, dup := colours[c]; dup {
			t.Fatalf("pictures %d and %d share colour %v", j, k, c)
		}
		colours[c] = k
	}
}

func TestSummaryCountsEachRequestOnce(t *testing.T) {
	recs := []record{
		{ClientMS: 100, QueueMS: 10, RunMS: 80, Stages: []stageTime{{"sample", 50}}},
		{ClientMS: 300, QueueMS: 30, RunMS: 90, Stages: []stageTime{{"sample", 70}, {"decode", 9}}},
		{ClientMS: 90, Coalesced: true},
		{ClientMS: 2, Cached: true},
		{Err: "shed 3 times", Shed: 3},
	}
	s := summarize(config{concurrency: 2}, recs, nil, 30*time.Second)
	if s.Succeeded != 4 || s.Failed != 1 || s.Generated != 2 || s.Coalesced != 1 || s.Cached != 1 || s.ShedAnswers != 3 {
		t.Errorf("counts %+v", s)
	}
	if s.ThroughputPerMinute != 4 || s.LatencyGenerated.Max != 300 || s.LatencyCoalesced.N != 1 || s.LatencyCached.Mean != 2 {
		t.Errorf("rates %+v", s)
	}
	if len(s.Stages) != 2 || s.Stages[0].Stage != "sample" || s.Stages[0].Mean != 60 || s.Stages[1].N != 1 || s.GPU != nil {
		t.Errorf("stages %+v", s.Stages)
	}
}

func TestRepeatModeMeasuresTheServerAndTheStaticReference(t *testing.T) {
	fake := &fakeHy3d{seen: map[[32]byte]bool{}, cached: map[string]bool{}}
	ts := httptest.NewServer(fake)
	defer ts.Close()
	out := t.TempDir()
	cfg, err := parseConfig([]string{"-url", ts.URL, "-mode", modeRepeat, "-requests", "30", "-concurrency", "3",
		"-duration", "20s", "-param", "steps=5", "-out", out})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runRepeat(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 2 || sum.Results[0].Target != "hy3d" || sum.Results[1].Target != "static" {
		t.Fatalf("results %+v", sum.Results)
	}
	for _, r := range sum.Results {
		// Bounded by -requests well before -duration.
		if r.Requests != 30 || r.OK != 30 || r.ServerError != 0 || len(r.Other) != 0 || r.Latency.N != 30 || r.PerSecond <= 0 {
			t.Errorf("%s: %+v", r.Target, r)
		}
	}
	if sum.MeshBytes != len("glTF mesh bytes") {
		t.Errorf("mesh of %d bytes", sum.MeshBytes)
	}
	if err := sum.write(out); err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	sum.markdown(&md)
	if !strings.Contains(md.String(), "| static | 30 | 30 | 0 | 0 |") || !strings.Contains(md.String(), "hy3d / static:") {
		t.Errorf("markdown:\n%s", md.String())
	}
}
