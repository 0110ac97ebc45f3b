package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"github.com/hy3d/hy3d/jobs"
	"net/http"
	"strings"
	"testing"
)

func TestCreateGenerationAcceptsEveryRequestShape(t *testing.T) {
	s := newTestServer(t, nil)
	img := testPNG(t, 16, 16, 1)
	jsonBody := func(image string) []byte {
		b, _ := json.Marshal(map[string]any{"image": image, "steps": 7, "seed": "42", "decode": "dense"})
		return b
	}
	form, ct := multipartBody(t, img, map[string]string{"steps": "7", "seed": "42", "decode": "dense"})
	cases := []struct {
		name, path, ct string
		body           []byte
	}{
		{"multipart", "/v1/generations", ct, readBody(t, form)},
		{"raw body with query", "/v1/generations?steps=7&seed=42&decode=dense", "image/png", img},
		{"json base64", "/v1/generations", "application/json", jsonBody(base64.StdEncoding.EncodeToString(img))},
		{"json data url", "/v1/generations", "application/json; charset=utf-8",
			jsonBody("data:image/png;base64," + base64.StdEncoding.EncodeToString(img))},
		{"json unpadded url-safe", "/v1/generations", "application/json", jsonBody(base64.RawURLEncoding.EncodeToString(img))},
	}
	var firstID string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(t, "POST", c.path, bytes.NewReader(c.body), "Content-Type", c.ct)
			if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
			}
			var st Status
			decodeJSON(t, resp, &st)
			if loc := resp.Header.Get("Location"); loc != "/v1/generations/"+st.ID {
				t.Errorf("Location %q for id %s", loc, st.ID)
			}
			if st.Params.Steps != 7 || st.Params.Seed != 42 || st.Params.Decode != jobs.DecodeDense || st.Params.Model != "tiny" {
				t.Errorf("params %+v", st.Params)
			}
			if got := s.final(t, st.ID); got.Status != jobs.StateSucceeded {
				t.Fatalf("final %+v", got)
			}
			// Every shape carries the same bytes and parameters: once the
			// first has finished, the others are answered with it.
			if firstID == "" {
				firstID = st.ID
			} else if st.ID != firstID || resp.StatusCode != http.StatusOK {
				t.Errorf("repeat answered %d with generation %s, not the first, %s", resp.StatusCode, st.ID, firstID)
			}
		})
	}
	if n := s.gen.calls(); n != 1 {
		t.Errorf("generator called %d times for one distinct request", n)
	}
}

func readBody(t testing.TB, r interface{ Read([]byte) (int, error) }) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGenerationStatusReportsStagesResultAndLinks(t *testing.T) {
	s := newTestServer(t, nil)
	_, st := s.submit(t, testPNG(t, 16, 16, 2), map[string]string{"format": "obj"})
	final := s.final(t, st.ID)
	var got Status
	decodeJSON(t, s.do(t, "GET", "/v1/generations/"+st.ID, nil), &got)
	if got.Status != jobs.StateSucceeded || got.FinishedAt == nil || got.StartedAt == nil {
		t.Fatalf("status %+v", got)
	}
	var stages []string
	for _, x := range got.Stages {
		stages = append(stages, x.Stage)
	}
	if strings.Join(stages, ",") != "preprocess,condition,sample,decode,surface" {
		t.Errorf("stages %v", stages)
	}
	if got.Result == nil || got.Result.Faces != 396 || len(got.Result.Formats) != 4 {
		t.Fatalf("result %+v", got.Result)
	}
	obj := got.Result.Formats["obj"]
	if obj.MediaType != "model/obj" || obj.URL != "/v1/generations/"+st.ID+"/result?format=obj" || obj.ETag == "" {
		t.Errorf("obj entry %+v", obj)
	}
	if got.Input == nil || got.Input.Format != "png" || got.Input.Width != 16 {
		t.Errorf("input %+v", got.Input)
	}
	if got.Links["events"] != "/v1/generations/"+st.ID+"/events" || final.ID != st.ID {
		t.Errorf("links %+v", got.Links)
	}
}

func TestSynchronousRoutesReturnTheMesh(t *testing.T) {
	s := newTestServer(t, nil)
	img := testPNG(t, 16, 16, 3)
	cases := []struct {
		name, path, accept, wantType string
		wantTiming                   []string // in Server-Timing; the first request generates, the rest hit the cache
	}{
		{"generate default glb", "/v1/generate", "", "model/gltf-binary", []string{"queue;dur=", ", preprocess;dur="}},
		{"generate format param", "/v1/generate?format=stl", "", "model/stl", []string{`cache;desc="hit"`}},
		{"generate accept", "/v1/generate", "model/obj", "model/obj", []string{`cache;desc="hit"`}},
		{"wait=true", "/v1/generations?wait=true&format=ply", "", "application/ply", []string{`cache;desc="hit"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(t, "POST", c.path, bytes.NewReader(img), "Content-Type", "image/png", "Accept", c.accept)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != c.wantType {
				t.Errorf("Content-Type %q, want %q", ct, c.wantType)
			}
			id := resp.Header.Get("X-Generation-Id")
			if id == "" || resp.Header.Get("Location") != "/v1/generations/"+id || resp.Header.Get("ETag") == "" {
				t.Errorf("headers %v", resp.Header)
			}
			if len(body) == 0 {
				t.Error("empty mesh")
			}
			for _, want := range c.wantTiming {
				if got := resp.Header.Get("Server-Timing"); !strings.Contains(got, want) {
					t.Errorf("Server-Timing %q lacks %q", got, want)
				}
			}
		})
	}
}

func TestSynchronousRouteRefusesUnacceptableAcceptBeforeRunning(t *testing.T) {
	s := newTestServer(t, nil)
	resp := s.do(t, "POST", "/v1/generate", bytes.NewReader(testPNG(t, 16, 16, 3)),
		"Content-Type", "image/png", "Accept", "application/json")
	readProblem(t, resp, http.StatusNotAcceptable)
	if s.gen.calls() != 0 {
		t.Error("a job ran for a request whose answer could not be sent")
	}
}

func TestModelsListsDefaults(t *testing.T) {
	s := newTestServer(t, nil)
	var body struct{ Models []ModelView }
	decodeJSON(t, s.do(t, "GET", "/v1/models", nil), &body)
	if len(body.Models) != 2 || body.Models[0].Name != "tiny" || !body.Models[0].Default || body.Models[1].Default {
		t.Fatalf("models %+v", body.Models)
	}
	// tiny's engines set no limit of their own, tiny-turbo's take 2: the
	// server's --max-batch (4 by default) bounds the one, the engines the other.
	if body.Models[0].MaxBatch != 4 || body.Models[1].MaxBatch != 2 {
		t.Errorf("max_batch %d and %d, want 4 and 2", body.Models[0].MaxBatch, body.Models[1].MaxBatch)
	}
	d := body.Models[0].Defaults
	if d.Steps != 5 || d.Resolution != 64 || d.Decode != jobs.DecodeCoarseToFine || d.Seed != DefaultSeed || d.Format != "glb" {
		t.Errorf("defaults %+v", d)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := newTestServer(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp := s.do(t, "GET", path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestModelChoiceRoutesToThatModel(t *testing.T) {
	s := newTestServer(t, nil)
	_, st := s.submit(t, testPNG(t, 16, 16, 4), map[string]string{"model": "tiny-turbo"})
	if got := s.final(t, st.ID); got.Status != jobs.StateSucceeded || got.Params.Model != "tiny-turbo" {
		t.Fatalf("%+v", got)
	}
	if m := s.gen.batch(0)[0].Params.Model; m != "tiny-turbo" {
		t.Errorf("generator got model %q", m)
	}
}
