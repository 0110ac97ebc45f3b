package server

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/internal/tinypipeline"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/results"
	"github.com/hy3d/hy3d/telemetry"
)

// tinyServer serves the embedded tiny engines on ONNX Runtime through the
// real pipeline: the path `make run` takes.
func tinyServer(t *testing.T, opts ...func(*Config)) *testServer {
	t.Helper()
	return serveTiny(t, nil, opts)
}

// paintingServer is tinyServer with the embedded oracle paint set beside
// the tiny shape models.
func paintingServer(t *testing.T, opts ...func(*Config)) *testServer {
	t.Helper()
	set, err := engines.DefaultPaint()
	if err != nil {
		t.Fatal(err)
	}
	return serveTiny(t, set, opts)
}

// serveTiny serves the tiny shape models and, when paintSet is not nil,
// that paint set.
func serveTiny(t *testing.T, paintSet *engines.Set, opts []func(*Config)) *testServer {
	t.Helper()
	p, set := tinypipeline.Open(t, t.Skipf)
	g, err := NewPipelines([]PipelineModel{{Pipeline: p, Set: set}}, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	if paintSet != nil {
		painter, _ := tinypipeline.OpenPaintSet(t, paintSet, t.Skipf, 16<<20)
		if err := g.AddPaint(PaintModel{Painter: painter, Set: paintSet}); err != nil {
			t.Fatal(err)
		}
	}
	return newTestServer(t, nil, append([]func(*Config){func(c *Config) {
		c.Models = g.Models()
		c.Preprocessor = g
		c.Generator = g
	}}, opts...)...)
}

// disc draws an opaque disc with a bar on a transparent picture.
func disc(t *testing.T, size int, shade uint8) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	c, r := size/2, size/4
	for y := range size {
		for x := range size {
			dx, dy := x-c, y-c
			if dx*dx+dy*dy < r*r || (dx*dx < 4*r*r && dy*dy*25 < r*r) {
				img.SetNRGBA(x, y, color.NRGBA{R: shade, G: 90, B: 40, A: 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEndToEndThroughTheTinyEngines(t *testing.T) {
	s := tinyServer(t)
	var models struct{ Models []ModelView }
	decodeJSON(t, s.do(t, "GET", "/v1/models", nil), &models)
	if len(models.Models) != 1 || models.Models[0].Name != "tiny" || models.Models[0].Backend != "ort" {
		t.Fatalf("models %+v", models.Models)
	}

	// Synchronous: a GLB in one round trip.
	resp := s.do(t, "POST", "/v1/generate?resolution=24&steps=2&seed=3", bytes.NewReader(disc(t, 96, 200)),
		"Content-Type", "image/png")
	glb := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "model/gltf-binary" {
		t.Fatalf("%d %s", resp.StatusCode, glb)
	}
	if len(glb) < 20 || string(glb[:4]) != "glTF" || binary.LittleEndian.Uint32(glb[8:12]) != uint32(len(glb)) {
		t.Fatalf("not a GLB: %d bytes", len(glb))
	}
	id := resp.Header.Get("X-Generation-Id")

	var st Status
	decodeJSON(t, s.do(t, "GET", "/v1/generations/"+id, nil), &st)
	if st.Status != jobs.StateSucceeded || st.Result == nil || st.Result.Faces == 0 {
		t.Fatalf("%+v", st)
	}
	var stages []string
	for _, x := range st.Stages {
		stages = append(stages, x.Stage)
	}
	if strings.Join(stages, ",") != "preprocess,condition,sample,decode,surface,clean,export" {
		t.Errorf("stages %v", stages)
	}

	// Every other format parses back to the same mesh.
	parsers := map[string]func(io.Reader) (*mesh.Mesh, error){"obj": mesh.ParseOBJ, "ply": mesh.ParsePLY, "stl": mesh.ParseSTL}
	for f, parse := range parsers {
		b := readAll(t, s.do(t, "GET", "/v1/generations/"+id+"/result?format="+f, nil))
		m, err := parse(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if m.TriangleCount() != st.Result.Faces {
			t.Errorf("%s has %d faces, status says %d", f, m.TriangleCount(), st.Result.Faces)
		}
	}

	// The same picture with another seed reuses the conditioner output.
	_, again := s.submit(t, disc(t, 96, 200), map[string]string{"resolution": "24", "steps": "2", "seed": "4"})
	final := s.final(t, again.ID)
	if final.Status != jobs.StateSucceeded || final.Cached {
		t.Fatalf("%+v", final)
	}
	for _, x := range final.Stages {
		if x.Stage == "condition" {
			t.Error("conditioner ran again for a picture it had seen")
		}
	}
}

func TestEndToEndBatchOfDistinctPictures(t *testing.T) {
	s := tinyServer(t, func(c *Config) { c.MaxBatch = 3 })
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, st := s.submit(t, disc(t, 64+8*i, uint8(50*i)), map[string]string{"resolution": "16", "steps": "2"})
			mu.Lock()
			ids = append(ids, st.ID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if st := s.final(t, id); st.Status != jobs.StateSucceeded || st.Result.Faces == 0 {
			t.Errorf("%s: %+v", id, st)
		}
	}
}

func TestEndToEndRejectsWhatThePipelineRejects(t *testing.T) {
	s := tinyServer(t)
	cases := []struct {
		name   string
		body   []byte
		query  string
		status int
		field  string
	}{
		{"no object", disc(t, 1, 0), "", http.StatusUnprocessableEntity, "image"},
		{"truncated png", disc(t, 64, 1)[:60], "", http.StatusUnprocessableEntity, "image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(t, "POST", "/v1/generations"+c.query, bytes.NewReader(c.body), "Content-Type", "image/png")
			if p := readProblem(t, resp, c.status); !hasFieldError(p, c.field) {
				t.Errorf("%+v", p)
			}
		})
	}
}

func TestServerFormatsAreMeshFormats(t *testing.T) {
	for _, f := range results.Formats {
		if got, err := mesh.ParseFormat(f); err != nil || string(got) != f {
			t.Errorf("%s: %v %v", f, got, err)
		}
	}
}

func TestPipelineValidationAddsTheModelsOwnRules(t *testing.T) {
	set, err := engines.Open("../engines/tiny-turbo")
	if err != nil {
		t.Fatal(err)
	}
	g := &Pipelines{models: map[string]*pipelineModel{"tiny-turbo": {man: &set.Manifest}}}
	p := Params{Model: "tiny-turbo", Steps: 150, Guidance: 5, Resolution: 64, Faces: 1000, Decode: jobs.DecodeDense}
	errs := g.ValidateParams(p)
	if len(errs) != 1 || errs[0].Field != "steps" || errs[0].Message == "" {
		t.Fatalf("steps beyond the consistency schedule: %+v", errs)
	}
	p.Steps = 100
	if errs := g.ValidateParams(p); len(errs) != 0 {
		t.Fatalf("valid: %+v", errs)
	}
	if errs := g.ValidateParams(Params{Model: "nope"}); len(errs) != 1 || errs[0].Field != "model" {
		t.Fatalf("unknown model: %+v", errs)
	}
}

func TestFingerprintFollowsTheEngines(t *testing.T) {
	tiny, err := engines.Tiny()
	if err != nil {
		t.Fatal(err)
	}
	a, err := fingerprint(tiny, "ort")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fingerprint(tiny, "trt")
	again, _ := fingerprint(tiny, "ort")
	if a == b || a != again {
		t.Errorf("backend must change the fingerprint, nothing else: %s %s %s", a, b, again)
	}
	changed := *tiny
	changed.Manifest.ScaleFactor++
	if c, _ := fingerprint(&changed, "ort"); c == a {
		t.Error("a manifest change kept the fingerprint")
	}
}

func TestAJobJoiningMidSamplingGetsTheMeshOfASingleRun(t *testing.T) {
	long := map[string]string{"resolution": "24", "steps": "200", "seed": "1"}
	short := map[string]string{"resolution": "24", "steps": "6", "seed": "2"}
	meshOf := func(s *testServer, id string) *mesh.Mesh {
		t.Helper()
		if st := s.final(t, id); st.Status != jobs.StateSucceeded {
			t.Fatalf("%+v", st)
		}
		m, err := mesh.ParseOBJ(bytes.NewReader(readAll(t, s.do(t, "GET", "/v1/generations/"+id+"/result?format=obj", nil))))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	alone := tinyServer(t)
	_, st := alone.submit(t, disc(t, 64, 30), short)
	want := meshOf(alone, st.ID)

	s := tinyServer(t)
	_, first := s.submit(t, disc(t, 64, 200), long)
	until(t, "the long job to be sampling", func() bool {
		var st Status
		decodeJSON(t, s.do(t, "GET", "/v1/generations/"+first.ID, nil), &st)
		return st.Progress != nil && st.Progress.Stage == "sample" && st.Progress.Step >= 2
	})
	_, second := s.submit(t, disc(t, 64, 30), short)
	got := meshOf(s, second.ID)
	if firstSt := s.final(t, first.ID); firstSt.Status != jobs.StateSucceeded {
		t.Fatalf("%+v", firstSt)
	}
	// The two shared DiT steps: the short job joined the long one.
	var stats telemetry.StatsView
	decodeJSON(t, s.do(t, "GET", "/v1/stats", nil), &stats)
	shared := uint64(0)
	for _, b := range stats.Batches {
		if b.Graph == "dit" {
			shared = b.Sizes["2"]
		}
	}
	if shared == 0 {
		t.Fatalf("no DiT step ran both jobs: %+v", stats.Batches)
	}
	if len(got.Vertices) != len(want.Vertices) || !slices.Equal(got.Indices, want.Indices) {
		t.Fatalf("joined job's mesh has %d vertices, the single run's %d", got.VertexCount(), want.VertexCount())
	}
	worst := 0.0
	for i := range got.Vertices {
		worst = max(worst, math.Abs(float64(got.Vertices[i]-want.Vertices[i])))
	}
	if worst > 1e-5 {
		t.Errorf("vertices differ by up to %v", worst)
	}
}
