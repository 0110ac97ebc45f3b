package server

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// manyFieldsBody is a JSON generation request followed by n unknown
// numeric fields, the shape of a memory-exhaustion attempt.
func manyFieldsBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"image":"AAAA"`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,"k%d":0`, i)
	}
	b.WriteString("}")
	return b.Bytes()
}

// serveInProcess runs one request through the server's handler without a
// socket, so that every allocation it causes is the server's own.
func serveInProcess(s *testServer, method, path string, body []byte, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	s.ts.Config.Handler.ServeHTTP(rec, req)
	return rec
}

func TestHugeJSONObjectIsRefusedWithinTwiceItsSizeOfMemory(t *testing.T) {
	s := newTestServer(t, nil)
	body := manyFieldsBody(600_000) // about 7 MB
	for _, path := range []string{"/v1/generations", "/send"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rec := serveInProcess(s, "POST", path, body, "application/json")
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte body: %d bytes allocated, %d-byte answer", len(body), allocated, rec.Body.Len())
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400; body %.300s", rec.Code, rec.Body.String())
			}
			if allocated > 2*uint64(len(body)) {
				t.Errorf("allocated %d bytes for a %d-byte body, want at most twice its size", allocated, len(body))
			}
			if rec.Body.Len() > 4096 {
				t.Errorf("answer of %d bytes, want a short problem", rec.Body.Len())
			}
		})
	}
}

func TestJSONObjectKeyLimit(t *testing.T) {
	for _, tc := range []struct {
		fields int
		status int
	}{
		{maxJSONFields - 1, http.StatusUnprocessableEntity}, // image plus unknown fields: reported, capped
		{maxJSONFields, http.StatusBadRequest},
	} {
		t.Run(fmt.Sprint(tc.fields), func(t *testing.T) {
			s := newTestServer(t, nil)
			resp := s.do(t, "POST", "/v1/generations", bytes.NewReader(manyFieldsBody(tc.fields)), "Content-Type", "application/json")
			p := readProblem(t, resp, tc.status)
			if tc.status == http.StatusUnprocessableEntity && len(p.Errors) != maxFieldErrors {
				t.Errorf("%d errors listed for %d bad fields, want the first %d", len(p.Errors), tc.fields, maxFieldErrors)
			}
		})
	}
}

func TestInvalidParamsCapsTheErrorsList(t *testing.T) {
	errs := make([]FieldError, 3*maxFieldErrors)
	p := invalidParams(errs)
	if len(p.Errors) != maxFieldErrors || !strings.Contains(p.Detail, fmt.Sprint(len(errs))) {
		t.Errorf("errors %d, detail %q; want %d listed and the total in the detail", len(p.Errors), p.Detail, maxFieldErrors)
	}
}

func TestRepeatedJSONKeyIsRefused(t *testing.T) {
	img := base64.StdEncoding.EncodeToString(testPNG(t, 32, 32, 200))
	for _, path := range []string{"/v1/generations", "/send"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			s := newTestServer(t, nil)
			body := fmt.Sprintf(`{"image":%q,"seed":5,"seed":6}`, img)
			resp := s.do(t, "POST", path, strings.NewReader(body), "Content-Type", "application/json")
			if p := readProblem(t, resp, http.StatusBadRequest); !hasFieldError(p, "seed") {
				t.Errorf("errors %+v, want one on seed", p.Errors)
			}
		})
	}
}
