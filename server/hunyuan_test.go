package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/jobs"
)

func hunyuanBody(t *testing.T, fields map[string]any) *bytes.Reader {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func TestHunyuanGenerateReturnsTheMeshFile(t *testing.T) {
	s := newTestServer(t, nil)
	img := base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 80))
	resp := s.do(t, "POST", "/generate", hunyuanBody(t, map[string]any{
		"image": img, "seed": 1234, "octree_resolution": 128, "num_inference_steps": 5,
		"guidance_scale": 5.0, "type": "obj", "face_count": 40000,
	}), "Content-Type", "application/json")
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "model/obj" || !bytes.HasPrefix(body, []byte("v ")) {
		t.Fatalf("%d %q %.40q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	p := s.gen.batch(0)[0].Params
	if p.Resolution != 128 || p.Steps != 5 || p.Guidance != 5 || p.Seed != 1234 || p.Faces != 40000 || p.Format != "obj" {
		t.Errorf("mapped params %+v", p)
	}
}

func TestHunyuanDefaultsMatchApiServer(t *testing.T) {
	s := newTestServer(t, nil)
	img := base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 81))
	resp := s.do(t, "POST", "/generate", hunyuanBody(t, map[string]any{"image": img}), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "model/gltf-binary" {
		t.Fatalf("%d %s", resp.StatusCode, readAll(t, resp))
	}
	p := s.gen.batch(0)[0].Params
	if p.Resolution != 128 || p.Steps != 5 || p.Guidance != 5 || p.Seed != 1234 || p.Format != "glb" {
		t.Errorf("defaults %+v", p)
	}
}

func TestHunyuanSendThenStatus(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{}), started: make(chan []jobs.Job, 1)}
	s := newTestServer(t, gen)
	img := base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 82))
	resp := s.do(t, "POST", "/send", hunyuanBody(t, map[string]any{"image": img, "texture": true}), "Content-Type", "application/json")
	var sent map[string]string
	decodeJSON(t, resp, &sent)
	if resp.StatusCode != http.StatusOK || len(sent) != 1 || sent["uid"] == "" {
		t.Fatalf("%d %v", resp.StatusCode, sent)
	}
	if resp.Header.Get("Warning") == "" {
		t.Error("texture=true was ignored silently")
	}
	uid := sent["uid"]
	waitFor(t, gen.started, "the job")
	var st map[string]string
	decodeJSON(t, s.do(t, "GET", "/status/"+uid, nil), &st)
	if len(st) != 1 || st["status"] != "processing" {
		t.Fatalf("while running: %v", st)
	}
	close(gen.gate)
	s.final(t, uid)
	decodeJSON(t, s.do(t, "GET", "/status/"+uid, nil), &st)
	if st["status"] != "completed" {
		t.Fatalf("after: %v", st)
	}
	mesh, err := base64.StdEncoding.DecodeString(st["model_base64"])
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, s.do(t, "GET", "/v1/generations/"+uid+"/result?format=glb", nil))
	if !bytes.Equal(mesh, want) {
		t.Error("model_base64 differs from the stored GLB")
	}
}

func TestHunyuanErrorsCarryItsFields(t *testing.T) {
	s := newTestServer(t, nil)
	img := base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 83))
	cases := []struct {
		name   string
		method string
		path   string
		body   map[string]any
		status int
		field  string
	}{
		{"no image", "POST", "/generate", map[string]any{"seed": 1}, http.StatusUnprocessableEntity, "image"},
		{"text prompt", "POST", "/send", map[string]any{"text": "a chair"}, http.StatusUnprocessableEntity, "text"},
		{"multi-view", "POST", "/generate", map[string]any{"image": img, "image_left": img}, http.StatusUnprocessableEntity, "image_left"},
		{"bad steps", "POST", "/generate", map[string]any{"image": img, "num_inference_steps": 0}, http.StatusUnprocessableEntity, "steps"},
		{"unknown uid", "GET", "/status/nope", nil, http.StatusNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var resp *http.Response
			if c.body != nil {
				resp = s.do(t, c.method, c.path, hunyuanBody(t, c.body), "Content-Type", "application/json")
			} else {
				resp = s.do(t, c.method, c.path, nil)
			}
			p := readProblem(t, resp, c.status)
			if p.ErrorCode != 1 || p.Text == "" {
				t.Errorf("api_server.py fields missing: %+v", p)
			}
			if c.field != "" && !hasFieldError(p, c.field) {
				t.Errorf("no field error for %s: %+v", c.field, p.Errors)
			}
		})
	}
}

func TestHunyuanImageFrontAloneIsTheImage(t *testing.T) {
	s := newTestServer(t, nil)
	img := base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 84))
	resp := s.do(t, "POST", "/generate", hunyuanBody(t, map[string]any{"image_front": img}), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, readAll(t, resp))
	}
}

func TestHunyuanIgnoredFieldsAreLoggedOncePerRequest(t *testing.T) {
	s := newTestServer(t, nil)
	fields := map[string]any{"image": base64.StdEncoding.EncodeToString(testPNG(t, 16, 16, 84))}
	for i := 0; i < 30; i++ {
		fields[fmt.Sprintf("extra%02d", i)] = i
	}
	resp := s.do(t, "POST", "/send", hunyuanBody(t, fields), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, readAll(t, resp))
	}
	var lines []map[string]any
	for _, l := range strings.Split(s.logs(), "\n") {
		if strings.Contains(l, "extra") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d log lines name the ignored fields, want 1:\n%s", len(lines), s.logs())
	}
	names, _ := lines[0]["fields"].([]any)
	if lines[0]["count"] != float64(30) || len(names) != maxLoggedFields || lines[0]["level"] != "info" {
		t.Errorf("log line %v: want level info, count 30 and %d names", lines[0], maxLoggedFields)
	}
}
