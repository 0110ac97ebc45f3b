package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/internal/testwait"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/results"
	"github.com/hy3d/hy3d/telemetry"
)

// safety bounds how long a test waits for something that must happen; it
// is a guard against hangs, never a measurement.
const safety = 10 * time.Second

// fakePreprocessor decodes PNG and JPEG with the standard library and
// hashes the decoded pixels, like the real one, so that two encodings of one
// picture share a key.
type fakePreprocessor struct {
	maxPixels int
	panics    bool
	gate      chan struct{} // if non-nil, every preprocessing waits for a token
	calls     atomic.Int64
}

func (f *fakePreprocessor) Preprocess(ctx context.Context, model string, data []byte) (*Prepared, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.panics {
		panic("preprocessor exploded")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, fmt.Errorf("sniffed: %w", pipeline.ErrUnsupportedFormat)
		}
		return nil, fmt.Errorf("%w: %v", pipeline.ErrCorruptImage, err)
	}
	if f.maxPixels > 0 && cfg.Width*cfg.Height > f.maxPixels {
		return nil, fmt.Errorf("%w: %d×%d", pipeline.ErrTooManyPixels, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pipeline.ErrCorruptImage, err)
	}
	h := sha256.New()
	opaque := false
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			h.Write([]byte{c.R, c.G, c.B, c.A})
			opaque = opaque || c.A > 0
		}
	}
	if !opaque {
		return nil, fmt.Errorf("%w: fully transparent", pipeline.ErrNoObject)
	}
	p := &Prepared{Format: format, Width: cfg.Width, Height: cfg.Height}
	h.Sum(p.Hash[:0])
	return p, nil
}

// fakeGenerator records the batches it starts (the jobs the engine
// conditions together). With a gate, every Start waits for a token from it
// (or for its jobs to be cancelled), which lets tests hold jobs in the
// running state for as long as they need. A job samples for its Params.Steps
// steps, then Finish makes its meshes.
type fakeGenerator struct {
	gate    chan struct{}
	started chan []jobs.Job // receives every batch as it starts, if non-nil
	fail    error           // every Finish fails with it
	panics  bool

	mu      sync.Mutex
	batches [][]jobs.Job
	steps   []int // jobs per Step call
}

// fakeSampling is a job's sampling position in a fakeGenerator.
type fakeSampling struct{ step, steps int }

func (s *fakeSampling) Done() bool { return s.step >= s.steps }

func (f *fakeGenerator) Start(ctx context.Context, batch []jobs.Job) ([]jobs.Sampling, []error) {
	f.mu.Lock()
	f.batches = append(f.batches, batch)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- batch
	}
	if f.panics {
		panic("generator exploded")
	}
	for _, j := range batch {
		j.Progress(jobs.Progress{Stage: "sample", Step: 1, Steps: j.Params.Steps})
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
		case <-allDone(batch):
		}
	}
	states := make([]jobs.Sampling, len(batch))
	errs := make([]error, len(batch))
	for i, j := range batch {
		switch {
		case ctx.Err() != nil:
			errs[i] = context.Cause(ctx)
		case j.Context.Err() != nil:
			errs[i] = context.Cause(j.Context)
		default:
			states[i] = &fakeSampling{steps: j.Params.Steps}
		}
	}
	return states, errs
}

func (f *fakeGenerator) Step(ctx context.Context, states []jobs.Sampling) error {
	f.mu.Lock()
	f.steps = append(f.steps, len(states))
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, s := range states {
		s.(*fakeSampling).step++
	}
	return nil
}

func (f *fakeGenerator) Finish(ctx context.Context, j jobs.Job, _ jobs.Sampling) jobs.Output {
	switch {
	case ctx.Err() != nil:
		return jobs.Output{Err: context.Cause(ctx)}
	case j.Context.Err() != nil:
		return jobs.Output{Err: context.Cause(j.Context)}
	case f.fail != nil:
		return jobs.Output{Err: f.fail}
	}
	return fakeOutput(j)
}

// allDone is closed when every job of the batch is cancelled.
func allDone(batch []jobs.Job) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for _, j := range batch {
			<-j.Context.Done()
		}
		close(ch)
	}()
	return ch
}

func (f *fakeGenerator) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.batches)
}

func (f *fakeGenerator) batch(i int) []jobs.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches[i]
}

func (f *fakeGenerator) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, b := range f.batches {
		out = append(out, len(b))
	}
	return out
}

// fakeOutput derives every format's bytes from the picture and parameters,
// so equal inputs give equal bytes; OBJ is long enough to be compressed.
func fakeOutput(j jobs.Job) jobs.Output {
	id := fmt.Sprintf("%x steps=%d seed=%d res=%d faces=%d decode=%s", j.Input.Hash[:6], j.Params.Steps,
		j.Params.Seed, j.Params.Resolution, j.Params.Faces, j.Params.Decode)
	var obj strings.Builder
	for i := range 200 {
		fmt.Fprintf(&obj, "v %d.0 %d.5 0.25 # %s\n", i, i, id)
	}
	return jobs.Output{
		Meshes: map[string][]byte{
			"glb": append([]byte("glTF\x02\x00\x00\x00"), []byte(id)...),
			"obj": []byte(obj.String()),
			"ply": []byte("ply\nformat binary_little_endian 1.0\n" + id),
			"stl": append(make([]byte, 80), []byte(id)...),
		},
		Stages: []results.StageTiming{
			{Stage: "condition", Duration: 3 * time.Millisecond},
			{Stage: "sample", Duration: 20 * time.Millisecond},
			{Stage: "decode", Duration: 70 * time.Millisecond},
			{Stage: "surface", Duration: 5 * time.Millisecond},
		},
		Vertices: 200, Faces: 396,
	}
}

// fakeGPU is a GPU sampler with fixed readings.
type fakeGPU struct {
	samples []telemetry.GPUSample
	err     error
}

func (f *fakeGPU) Sample() ([]telemetry.GPUSample, error) { return f.samples, f.err }

func testModels() []Model {
	d := Defaults{Steps: 5, Guidance: 5, Resolution: 64, Faces: 40000, Decode: jobs.DecodeCoarseToFine}
	return []Model{
		{Name: "tiny", Family: "hunyuan3d-2mini", Backend: "fake", Fingerprint: "tiny-v1", Defaults: d},
		{Name: "tiny-turbo", Family: "hunyuan3d-2mini", Backend: "fake", Fingerprint: "turbo-v1", Defaults: d, MaxBatch: 2},
	}
}

type testServer struct {
	*Server
	ts   *httptest.Server
	gen  *fakeGenerator
	pre  *fakePreprocessor
	logw *lockedWriter
}

// logs is everything the server logged so far.
func (s *testServer) logs() string {
	s.logw.mu.Lock()
	defer s.logw.mu.Unlock()
	return s.logw.w.(*bytes.Buffer).String()
}

// newTestServer starts a server over fakes; opts adjust the config. The
// cleanup drains it (aborting anything still gated) and closes it.
func newTestServer(t testing.TB, gen *fakeGenerator, opts ...func(*Config)) *testServer {
	t.Helper()
	if gen == nil {
		gen = &fakeGenerator{}
	}
	logw := &lockedWriter{w: &bytes.Buffer{}}
	pre := &fakePreprocessor{maxPixels: 64 * 64}
	cfg := Config{
		Models:       testModels(),
		Preprocessor: pre,
		Generator:    gen,
		Logger:       zerolog.New(logw),
		ResultsDir:   t.TempDir(),
		RateLimit:    -1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The server's own http.Server settings, timeouts included.
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = s.HTTPServer("")
	ts.Listener = problemListener{ts.Listener} // as Serve does
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = s.Drain(ctx)
		ts.Close()
		s.Close()
	})
	return &testServer{Server: s, ts: ts, gen: gen, pre: pre, logw: logw}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// testPNG draws a w×h picture with a transparent border around an opaque
// square whose colour depends on shade, so different shades hash apart.
func testPNG(t testing.TB, w, h int, shade uint8) []byte {
	t.Helper()
	return testPNGLevel(t, w, h, shade, png.DefaultCompression)
}

func testPNGLevel(t testing.TB, w, h int, shade uint8, level png.CompressionLevel) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := h / 4; y < 3*h/4; y++ {
		for x := w / 4; x < 3*w/4; x++ {
			img.Set(x, y, color.NRGBA{R: shade, G: 100, B: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: level}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multipartBody builds a form with the picture in "image" and the fields.
func multipartBody(t testing.TB, img []byte, fields map[string]string) (io.Reader, string) {
	t.Helper()
	return multipartFiles(t, map[string][]byte{"image": img}, fields)
}

// multipartFiles builds a form with the given files (nil ones left out)
// and fields.
func multipartFiles(t testing.TB, files map[string][]byte, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range files {
		if b == nil {
			continue
		}
		fw, err := mw.CreateFormFile(name, name+".bin")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(b)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func (s *testServer) do(t testing.TB, method, path string, body io.Reader, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// submit posts a multipart generation and returns the response status JSON.
func (s *testServer) submit(t testing.TB, img []byte, fields map[string]string) (*http.Response, Status) {
	t.Helper()
	body, ct := multipartBody(t, img, fields)
	resp := s.do(t, "POST", "/v1/generations", body, "Content-Type", ct)
	var st Status
	if resp.StatusCode < 300 {
		decodeJSON(t, resp, &st)
	}
	return resp, st
}

func decodeJSON(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitStatus follows the events stream until the generation ends, and
// returns every status it saw.
func (s *testServer) waitStatus(t testing.TB, id string) []Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.ts.URL+"/v1/generations/"+id+"/events", nil)
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	var seen []Status
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var st Status
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			seen = append(seen, st)
		}
	}
	if len(seen) == 0 || !seen[len(seen)-1].Status.Terminal() {
		t.Fatalf("event stream ended without a terminal status: %+v (err %v)", seen, sc.Err())
	}
	return seen
}

func (s *testServer) final(t testing.TB, id string) Status {
	t.Helper()
	seen := s.waitStatus(t, id)
	return seen[len(seen)-1]
}

// problem reads and checks an application/problem+json response.
func readProblem(t testing.TB, resp *http.Response, status int) Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, readAll(t, resp))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p Problem
	decodeJSON(t, resp, &p)
	if p.Status != status || p.Title == "" || !strings.HasPrefix(p.Type, problemDocs) || !strings.HasPrefix(p.Instance, "urn:hy3d:request:") {
		t.Fatalf("malformed problem: %+v", p)
	}
	return p
}

func hasFieldError(p Problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field && e.Message != "" {
			return true
		}
	}
	return false
}

// waitFor receives from ch or fails the test after the safety bound.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	return testwait.Recv(t, ch, what, safety)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// until polls cond, for states no channel announces; the safety bound only
// guards against a hang.
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
