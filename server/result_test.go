package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/jobs"
	"github.com/klauspost/compress/zstd"
)

// finishedGeneration runs one generation to the end and returns its id.
func finishedGeneration(t *testing.T, s *testServer, fields map[string]string) string {
	t.Helper()
	_, st := s.submit(t, testPNG(t, 16, 16, 60), fields)
	if got := s.final(t, st.ID); got.Status != jobs.StateSucceeded {
		t.Fatalf("%+v", got)
	}
	return st.ID
}

func TestResultNegotiatesTheFormat(t *testing.T) {
	s := newTestServer(t, nil)
	id := finishedGeneration(t, s, map[string]string{"format": "stl"})
	cases := []struct {
		name, query, accept, want string
		status                    int
	}{
		{"the generation's own format", "", "", "model/stl", 200},
		{"query wins over Accept", "?format=obj", "model/stl", "model/obj", 200},
		{"accept glb", "", "model/gltf-binary", "model/gltf-binary", 200},
		{"accept ply alias", "", "model/x-ply", "application/ply", 200},
		{"q-values", "", "model/obj;q=0.5, application/ply;q=0.9", "application/ply", 200},
		{"q=0 excludes", "", "model/obj;q=0, model/stl", "model/stl", 200},
		{"wildcard falls back", "", "application/json, */*;q=0.1", "model/stl", 200},
		{"model/* falls back", "", "model/*", "model/stl", 200},
		{"q=0 on the fallback beats model/*", "", "model/*, model/stl;q=0", "model/gltf-binary", 200},
		{"q=0 on the fallback beats */*", "", "*/*;q=0.5, model/stl;q=0, model/x.stl-ascii;q=0", "model/gltf-binary", 200},
		{"NaN q is ignored", "", "model/obj;q=NaN, model/stl;q=0.2", "model/stl", 200},
		{"q above 1 is ignored", "", "model/obj;q=2, application/ply;q=0.2", "application/ply", 200},
		{"only an invalid q", "", "model/obj;q=NaN", "", http.StatusNotAcceptable},
		{"nothing acceptable", "", "application/json", "", http.StatusNotAcceptable},
		{"unknown format", "?format=fbx", "", "", http.StatusUnprocessableEntity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(t, "GET", "/v1/generations/"+id+"/result"+c.query, nil, "Accept", c.accept)
			if c.status != 200 {
				readProblem(t, resp, c.status)
				return
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.want {
				t.Fatalf("%d %q, want %q", resp.StatusCode, resp.Header.Get("Content-Type"), c.want)
			}
			if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, id+".") {
				t.Errorf("Content-Disposition %q", cd)
			}
		})
	}
}

func TestResultETagRangeAndConditionalRequests(t *testing.T) {
	s := newTestServer(t, nil)
	id := finishedGeneration(t, s, nil)
	path := "/v1/generations/" + id + "/result?format=glb"
	full := s.do(t, "GET", path, nil)
	body := readAll(t, full)
	etag := full.Header.Get("ETag")
	if full.StatusCode != 200 || etag == "" || full.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("%d %v", full.StatusCode, full.Header)
	}

	notModified := s.do(t, "GET", path, nil, "If-None-Match", etag)
	if notModified.StatusCode != http.StatusNotModified || len(readAll(t, notModified)) != 0 {
		t.Errorf("If-None-Match: %d", notModified.StatusCode)
	}
	if stale := s.do(t, "GET", path, nil, "If-None-Match", `"other"`); stale.StatusCode != 200 {
		t.Errorf("stale If-None-Match: %d", stale.StatusCode)
	}

	part := s.do(t, "GET", path, nil, "Range", "bytes=2-9")
	got := readAll(t, part)
	if part.StatusCode != http.StatusPartialContent || !bytes.Equal(got, body[2:10]) {
		t.Errorf("Range: %d %q", part.StatusCode, got)
	}
	if cr := part.Header.Get("Content-Range"); !strings.HasPrefix(cr, "bytes 2-9/") {
		t.Errorf("Content-Range %q", cr)
	}
	if r := s.do(t, "GET", path, nil, "Range", "bytes=2-9", "If-Range", `"other"`); r.StatusCode != 200 {
		t.Errorf("If-Range with a stale ETag must send everything: %d", r.StatusCode)
	}
	if r := s.do(t, "GET", path, nil, "Range", "bytes=99999-"); r.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: %d", r.StatusCode)
	}

	head := s.do(t, "HEAD", path, nil)
	if head.StatusCode != 200 || head.Header.Get("ETag") != etag || len(readAll(t, head)) != 0 {
		t.Errorf("HEAD: %d", head.StatusCode)
	}
}

func TestTextFormatsAreCompressedWhenTheClientAcceptsIt(t *testing.T) {
	s := newTestServer(t, nil)
	id := finishedGeneration(t, s, nil)
	base := "/v1/generations/" + id + "/result?format="
	plain := s.do(t, "GET", base+"obj", nil, "Accept-Encoding", "identity")
	want := readAll(t, plain)
	if plain.Header.Get("Content-Encoding") != "" {
		t.Fatal("identity request got an encoding")
	}
	decoders := map[string]func(io.Reader) ([]byte, error){
		"gzip": func(r io.Reader) ([]byte, error) {
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, err
			}
			return io.ReadAll(zr)
		},
		"zstd": func(r io.Reader) ([]byte, error) {
			zr, err := zstd.NewReader(r)
			if err != nil {
				return nil, err
			}
			defer zr.Close()
			return io.ReadAll(zr)
		},
	}
	for _, c := range []struct{ accept, want string }{
		{"gzip", "gzip"}, {"zstd", "zstd"}, {"gzip, zstd", "zstd"}, {"zstd;q=0.5, gzip", "gzip"}, {"br", ""},
		{"gzip;q=0, *", "zstd"}, {"gzip;q=0, zstd;q=0, *", ""}, {"*;q=0.5, gzip", "gzip"}, {"*", "zstd"},
		{"gzip;q=NaN", ""}, {"gzip;q=nan, zstd;q=0.1", "zstd"}, {"gzip;q=1.5", ""},
	} {
		// A raw transport, so the client does not undo gzip itself.
		req, _ := http.NewRequest("GET", s.ts.URL+base+"obj", nil)
		req.Header.Set("Accept-Encoding", c.accept)
		resp, err := (&http.Transport{}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(t, resp)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding"); got != c.want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", c.accept, got, c.want)
			continue
		}
		if c.want == "" {
			continue
		}
		if len(raw) >= len(want) {
			t.Errorf("%s did not shrink the OBJ: %d ≥ %d", c.want, len(raw), len(want))
		}
		dec, err := decoders[c.want](bytes.NewReader(raw))
		if err != nil || !bytes.Equal(dec, want) {
			t.Errorf("%s round trip: %v", c.want, err)
		}
		if etag := resp.Header.Get("ETag"); etag == plain.Header.Get("ETag") || !strings.Contains(etag, c.want) {
			t.Errorf("compressed ETag %q must differ from the identity one", etag)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Error("no Vary: Accept-Encoding")
		}
	}
	// Binary formats go out as they are.
	req, _ := http.NewRequest("GET", s.ts.URL+base+"glb", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" {
		t.Error("GLB was compressed")
	}
}

func TestCompressibleDetectsTextMeshes(t *testing.T) {
	cases := []struct {
		format string
		data   string
		want   bool
	}{
		{"obj", "v 0 0 0\n", true},
		{"ply", "ply\nformat ascii 1.0\n", true},
		{"ply", "ply\nformat binary_little_endian 1.0\n", false},
		{"stl", "solid x\n facet normal 0 0 1\n", true},
		{"stl", "solid-looking binary header", false},
		{"glb", "glTF", false},
	}
	for _, c := range cases {
		if got := compressible(c.format, []byte(c.data)); got != c.want {
			t.Errorf("compressible(%s, %q) = %v", c.format, c.data, got)
		}
	}
}

func TestUpperCaseGenerationIDsNameTheSameGeneration(t *testing.T) {
	s := newTestServer(t, nil)
	id := strings.ToUpper(finishedGeneration(t, s, nil))
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/generations/" + id, http.StatusOK},
		{"GET", "/v1/generations/" + id + "/result", http.StatusOK},
		{"GET", "/v1/generations/" + id + "/events", http.StatusOK},
		{"GET", "/status/" + id, http.StatusOK},
		{"DELETE", "/v1/generations/" + id, http.StatusConflict}, // found, and already finished
	} {
		resp := s.do(t, c.method, c.path, nil)
		readAll(t, resp)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
	}
}

func TestRangeAndPreconditionFailuresAreProblems(t *testing.T) {
	s := newTestServer(t, nil)
	id := finishedGeneration(t, s, nil)
	path := "/v1/generations/" + id + "/result?format=glb"
	unsatisfiable := s.do(t, "GET", path, nil, "Range", "bytes=99999-")
	readProblem(t, unsatisfiable, http.StatusRequestedRangeNotSatisfiable)
	if cr := unsatisfiable.Header.Get("Content-Range"); !strings.HasPrefix(cr, "bytes */") {
		t.Errorf("416 Content-Range %q, want bytes */size", cr)
	}
	failed := s.do(t, "GET", path, nil, "If-Match", `"other"`)
	readProblem(t, failed, http.StatusPreconditionFailed)
}
