package server

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/studio"
)

// TestPreprocessShowsWhatTheModelSees runs preprocessing alone over the tiny
// models: the preview is a PNG of the conditioner's input size, and the hash
// is the one the result cache keys generations by.
func TestPreprocessShowsWhatTheModelSees(t *testing.T) {
	s := tinyServer(t)
	body, ct := multipartBody(t, disc(t, 200, 180), nil)
	resp := s.do(t, http.MethodPost, "/v1/preprocess", body, "Content-Type", ct)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var got preprocessed
	decodeJSON(t, resp, &got)
	if got.Format != "png" || got.Width != 200 || got.Height != 200 || len(got.SHA256) != 64 || got.Model == "" {
		t.Errorf("answer %+v", got)
	}
	data, ok := strings.CutPrefix(got.Preview, "data:image/png;base64,")
	if !ok {
		t.Fatalf("preview %.40q is not a PNG data URL", got.Preview)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() != b.Dy() || b.Dx() < 16 {
		t.Fatalf("preview is %v, want the square conditioner input", b)
	}
	// The object (red-ish disc) sits in the middle on white.
	cr, cg, _, _ := img.At(b.Dx()/2, b.Dy()/2).RGBA()
	wr, wg, wb, _ := img.At(1, 1).RGBA()
	if cr>>8 < 150 || cg>>8 > 120 || wr>>8 < 240 || wg>>8 < 240 || wb>>8 < 240 {
		t.Errorf("centre %d,%d and corner %d,%d,%d: want the object on white", cr>>8, cg>>8, wr>>8, wg>>8, wb>>8)
	}
}

func TestPreprocessRefusesWhatGenerationRefuses(t *testing.T) {
	s := newTestServer(t, nil)
	for _, tc := range []struct {
		name   string
		img    []byte
		fields map[string]string
		status int
		field  string
	}{
		{"unknown model", testPNG(t, 64, 64, 1), map[string]string{"model": "nope"}, http.StatusUnprocessableEntity, "model"},
		{"not a picture", []byte("hello, this is text and not a picture"), nil, http.StatusUnsupportedMediaType, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := multipartBody(t, tc.img, tc.fields)
			p := readProblem(t, s.do(t, http.MethodPost, "/v1/preprocess", body, "Content-Type", ct), tc.status)
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v, want one for %s", p.Errors, tc.field)
			}
		})
	}
}

// TestStudioPagesNeedNoKey: the pages carry no data and are served without
// an API key (the page sends the key it is given); the API still asks for it.
// A binary built before the bundle answers a problem that says how to build it.
func TestStudioPagesNeedNoKey(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.APIKeys = []string{"secret"} })
	for _, path := range []string{"/", "/dashboard"} {
		resp := s.do(t, http.MethodGet, path, nil, "Accept-Encoding", "gzip")
		if !studio.Built() {
			if p := readProblem(t, resp, http.StatusNotFound); !strings.Contains(p.Detail, "make") {
				t.Errorf("%s: %q does not say how to build the pages", path, p.Detail)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: status %d, type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		resp.Body.Close()
	}
	readProblem(t, s.do(t, http.MethodGet, "/assets/missing.js", nil), http.StatusNotFound)
	readProblem(t, s.do(t, http.MethodGet, "/v1/models", nil), http.StatusUnauthorized)
	body, ct := multipartBody(t, testPNG(t, 64, 64, 1), nil)
	readProblem(t, s.do(t, http.MethodPost, "/v1/preprocess", body, "Content-Type", ct), http.StatusUnauthorized)
}
