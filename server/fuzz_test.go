package server

import (
	"bytes"
	"errors"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// checkDecoded holds every decoder to its contract: a Problem, or an image
// within the limit and parameters that are all plain text.
func checkDecoded(t *testing.T, req *decodedRequest, err error, limit int64) {
	t.Helper()
	if err != nil {
		var p *Problem
		if !errors.As(err, &p) || p.Status < 400 || p.Status >= 500 {
			t.Fatalf("decoder error is not a 4xx problem: %T %v", err, err)
		}
		return
	}
	if len(req.image) == 0 || int64(len(req.image)) > limit {
		t.Fatalf("image of %d bytes accepted (limit %d)", len(req.image), limit)
	}
	for k := range req.raw {
		if k == "image" {
			t.Fatal("image leaked into the parameters")
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"image": "aGVsbG8=", "steps": 5, "seed": "7", "decode": null}`))
	f.Add([]byte(`{"image": "data:image/png;base64,aGVsbG8", "guidance": 1e400}`))
	f.Add([]byte(`{"image": "aGVs\nbG8=", "steps": [1], "x": {}}`))
	f.Add([]byte(`{"image": 5}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"image": "aGk="} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 10
		r := httptest.NewRequest("POST", "/v1/generations?model=tiny", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		req, err := decodeGeneration(r, limit)
		checkDecoded(t, req, err, limit)
	})
}

func FuzzDecodeMultipart(f *testing.F) {
	body, ct := multipartBody(f, []byte("\x89PNG fake"), map[string]string{"steps": "5"})
	f.Add(readBody(f, body), ct)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a\"\r\n\r\nxyz\r\n--b--\r\n"), "multipart/form-data; boundary=b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\ny\r\n--b--\r\n"), "multipart/form-data; boundary=b")
	f.Add([]byte("--b\r\n\r\n\r\n--b--"), "multipart/form-data; boundary=b")
	f.Add([]byte("garbage"), "multipart/form-data")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		const limit = 1 << 10
		r := httptest.NewRequest("POST", "/v1/generations", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		req, err := decodeGeneration(r, limit)
		checkDecoded(t, req, err, limit)
	})
}

func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"aGVsbG8=", "aGVsbG8", "aGVs bG8=", "data:image/png;base64,aGk=", "data:,x", "data:image/png;base64", "-_-_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeBase64("image", s)
		if err == nil && len(b) > len(s) {
			t.Fatalf("decoded %d bytes from %d characters", len(b), len(s))
		}
	})
}

func FuzzParseParams(f *testing.F) {
	f.Add("steps", "5", "guidance", "5.0")
	f.Add("seed", "-1", "resolution", "1e3")
	f.Add("timeout", "NaN", "decode", "COARSE-TO-FINE")
	f.Add("faces", "99999999999999999999", "model", "tiny")
	p := paramParser{models: map[string]*Model{}, defaultModel: "tiny", limits: DefaultLimits, jobTimeout: time.Minute}
	for _, m := range testModels() {
		p.models[m.Name] = &m
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		out, errs := p.parse(map[string]string{k1: v1, k2: v2})
		if len(errs) > 0 {
			return
		}
		l := p.limits
		if out.Steps < 1 || out.Steps > l.MaxSteps || out.Guidance < 0 || out.Guidance > l.MaxGuidance ||
			out.Resolution < l.MinResolution || out.Resolution > l.MaxResolution || out.Seed < 0 ||
			out.Faces < minFaces || out.Faces > l.MaxFaces || out.Timeout <= 0 || out.Timeout > l.MaxTimeout ||
			!results.IsFormat(out.Format) || p.models[out.Model] == nil ||
			(out.Decode != jobs.DecodeDense && out.Decode != jobs.DecodeCoarseToFine) {
			t.Fatalf("accepted out-of-range parameters %+v from %q=%q %q=%q", out, k1, v1, k2, v2)
		}
	})
}

func FuzzNegotiate(f *testing.F) {
	f.Add("model/obj;q=0.5, */*;q=0.1", "gzip;q=0, zstd")
	f.Add("a/b;q=x,,;", "*;q=1e9")
	f.Fuzz(func(t *testing.T, accept, encoding string) {
		format, err := negotiateFormat("", accept, "glb", results.Formats)
		if err == nil && !slices.Contains(results.Formats, format) {
			t.Fatalf("negotiated %q", format)
		}
		if c := chooseCoding(encoding); c != "" && c != "gzip" && c != "zstd" {
			t.Fatalf("coding %q", c)
		}
	})
}

func TestHunyuanRequestDecodingHandlesHostileBodies(t *testing.T) {
	s := newTestServer(t, nil)
	for _, body := range []string{``, `null`, `[]`, `{"image": {}}`, `{"image": "####"}`, `{"texture": "yes", "image": "aGk="}`} {
		resp := s.do(t, "POST", "/send", bytes.NewReader([]byte(body)), "Content-Type", "application/json")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%q: %d", body, resp.StatusCode)
		}
		if p := readProblem(t, resp, resp.StatusCode); p.ErrorCode != 1 {
			t.Errorf("%q: %+v", body, p)
		}
	}
}

// A texturing upload comes back from the queue (and, with a broker, from
// another machine's disk): unpacking never panics and gives back what was
// packed.
func FuzzTextureUpload(f *testing.F) {
	f.Add([]byte("\x89PNG picture"), []byte("glTF mesh"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte(textureUploadMagic+"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), []byte("x"))
	f.Fuzz(func(t *testing.T, picture, meshFile []byte) {
		p, m, err := unpackTextureUpload(packTextureUpload(picture, meshFile))
		if err != nil || !bytes.Equal(p, picture) || !bytes.Equal(m, meshFile) {
			t.Fatalf("round trip: %v", err)
		}
		// Hostile bytes: an error or a split that adds up.
		raw := append([]byte(textureUploadMagic), picture...)
		if p, m, err := unpackTextureUpload(raw); err == nil && len(p)+len(m) > len(raw) {
			t.Fatalf("split of %d bytes into %d and %d", len(raw), len(p), len(m))
		}
	})
}

// An uploaded mesh file is sniffed and parsed: never a panic, and whatever
// parses is a valid mesh with triangles.
func FuzzMeshFile(f *testing.F) {
	f.Add([]byte("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"))
	f.Add([]byte("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"))
	f.Add([]byte("solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid t\n"))
	f.Add([]byte("glTF\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeshFile(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil || m.TriangleCount() == 0 {
			t.Fatalf("parsed an invalid mesh: %v (%d triangles)", err, m.TriangleCount())
		}
	})
}
