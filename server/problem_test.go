package server

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestErrorsAreProblemDetails(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.MaxBodyBytes = 4096 })
	png := testPNG(t, 16, 16, 1)
	cases := []struct {
		name        string
		method      string
		path        string
		ct          string
		body        []byte
		status      int
		fieldErrors []string
	}{
		{"not an image", "POST", "/v1/generations", "image/png", []byte("hello, I am text"), http.StatusUnsupportedMediaType, []string{"image"}},
		{"gif is not allowed", "POST", "/v1/generations", "image/png", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), http.StatusUnsupportedMediaType, []string{"image"}},
		{"too many pixels", "POST", "/v1/generations", "image/png", testPNG(t, 65, 65, 1), http.StatusRequestEntityTooLarge, []string{"image"}},
		{"no object", "POST", "/v1/generations", "image/png", testPNG(t, 1, 1, 1), http.StatusUnprocessableEntity, []string{"image"}},
		{"corrupt png", "POST", "/v1/generations", "image/png", png[:40], http.StatusUnprocessableEntity, []string{"image"}},
		{"bad params", "POST", "/v1/generations?steps=0&guidance=abc&decode=fast&resolution=4096&seed=-1&format=fbx&bogus=1&timeout=0&priority=urgent",
			"image/png", png, http.StatusUnprocessableEntity,
			[]string{"steps", "guidance", "decode", "resolution", "seed", "format", "bogus", "timeout", "priority"}},
		{"timeout under 1 ms", "POST", "/v1/generations?timeout=0.0009", "image/png", png, http.StatusUnprocessableEntity, []string{"timeout"}},
		{"timeout that rounds to 0", "POST", "/v1/generations?timeout=1e-300", "image/png", png, http.StatusUnprocessableEntity, []string{"timeout"}},
		{"unknown model", "POST", "/v1/generations?model=huge", "image/png", png, http.StatusUnprocessableEntity, []string{"model"}},
		{"param given twice", "POST", "/v1/generations?steps=1&steps=2", "image/png", png, http.StatusBadRequest, []string{"steps"}},
		{"no image", "POST", "/v1/generations", "application/json", []byte(`{"steps": 3}`), http.StatusBadRequest, []string{"image"}},
		{"bad base64", "POST", "/v1/generations", "application/json", []byte(`{"image": "!!!"}`), http.StatusBadRequest, []string{"image"}},
		{"json array field", "POST", "/v1/generations", "application/json", []byte(`{"image": "aGk=", "steps": [1]}`), http.StatusUnprocessableEntity, []string{"steps"}},
		{"malformed json", "POST", "/v1/generations", "application/json", []byte(`{"image": `), http.StatusBadRequest, nil},
		{"trailing json", "POST", "/v1/generations", "application/json", []byte(`{"image": "aGk="} {}`), http.StatusBadRequest, nil},
		{"unsupported content type", "POST", "/v1/generations", "text/plain", png, http.StatusUnsupportedMediaType, nil},
		{"missing content type", "POST", "/v1/generations", "", png, http.StatusUnsupportedMediaType, nil},
		{"body too large", "POST", "/v1/generations", "image/png", bytes.Repeat([]byte{1}, 5000), http.StatusRequestEntityTooLarge, nil},
		{"unknown generation", "GET", "/v1/generations/nope", "", nil, http.StatusNotFound, nil},
		{"unknown generation events", "GET", "/v1/generations/nope/events", "", nil, http.StatusNotFound, nil},
		{"unknown generation result", "GET", "/v1/generations/nope/result", "", nil, http.StatusNotFound, nil},
		{"cancel unknown", "DELETE", "/v1/generations/nope", "", nil, http.StatusNotFound, nil},
		{"unknown route", "GET", "/v2/everything", "", nil, http.StatusNotFound, nil},
		{"wrong method", "PUT", "/v1/models", "", nil, http.StatusMethodNotAllowed, nil},
		{"bad wait flag", "POST", "/v1/generations?wait=maybe", "image/png", png, http.StatusUnprocessableEntity, []string{"wait"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body *bytes.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
			} else {
				body = bytes.NewReader(nil)
			}
			resp := s.do(t, c.method, c.path, body, "Content-Type", c.ct)
			p := readProblem(t, resp, c.status)
			for _, f := range c.fieldErrors {
				if !hasFieldError(p, f) {
					t.Errorf("no field error for %q in %+v", f, p.Errors)
				}
			}
		})
	}
	if n := s.gen.calls(); n != 0 {
		t.Errorf("generator ran %d times for requests that were all refused", n)
	}
}

func TestChunkedBodyOverTheLimitIs413(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.MaxBodyBytes = 4096 })
	req, _ := http.NewRequest("POST", s.ts.URL+"/v1/generations", strings.NewReader(strings.Repeat("x", 10000)))
	req.ContentLength = -1 // chunked: the limit must cut the stream, not trust a header
	req.Header.Set("Content-Type", "image/png")
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	readProblem(t, resp, http.StatusRequestEntityTooLarge)
}

func TestPanicBecomesProblem(t *testing.T) {
	s := newTestServer(t, nil)
	s.pre.panics = true
	resp := s.do(t, "POST", "/v1/generations", bytes.NewReader(testPNG(t, 16, 16, 1)), "Content-Type", "image/png")
	p := readProblem(t, resp, http.StatusInternalServerError)
	if strings.Contains(p.Detail, "exploded") {
		t.Errorf("panic value leaked to the client: %q", p.Detail)
	}
	if !strings.Contains(s.logs(), "handler panicked") {
		t.Error("panic not logged")
	}
	// The server is still up.
	if resp := s.do(t, "GET", "/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after panic: %d", resp.StatusCode)
	}
}

func TestEveryRequestIsLoggedOnce(t *testing.T) {
	s := newTestServer(t, nil)
	s.do(t, "GET", "/v1/models", nil, "X-Request-Id", "abc-123")
	s.do(t, "GET", "/nowhere", nil)
	// The line is written once the response is, which the client may see first.
	var requests []string
	until(t, "two request lines", func() bool {
		requests = requests[:0]
		for _, l := range strings.Split(s.logs(), "\n") {
			if strings.Contains(l, `"message":"request"`) {
				requests = append(requests, l)
			}
		}
		return len(requests) >= 2
	})
	if len(requests) != 2 {
		t.Fatalf("want 2 request lines, got %d:\n%s", len(requests), s.logs())
	}
	for _, want := range []string{`"method":"GET"`, `"path":"/v1/models"`, `"status":200`, `"request_id":"abc-123"`, `"client":"127.0.0.1"`, `"duration":`, `"bytes_out":`} {
		if !strings.Contains(requests[0], want) {
			t.Errorf("request line lacks %s: %s", want, requests[0])
		}
	}
	if !strings.Contains(requests[1], `"status":404`) {
		t.Errorf("404 line: %s", requests[1])
	}
}

func TestEveryJobIsLoggedWithItsStages(t *testing.T) {
	s := newTestServer(t, nil)
	finishedGeneration(t, s, nil)
	until(t, "the job line", func() bool { return strings.Contains(s.logs(), `"message":"job finished"`) })
	for _, l := range strings.Split(s.logs(), "\n") {
		if strings.Contains(l, `"message":"job finished"`) {
			for _, want := range []string{`"stages":{"preprocess":`, `"decode":70`, `"status":"succeeded"`, `"job":"`, `"queued":`, `"ran":`} {
				if !strings.Contains(l, want) {
					t.Errorf("job line lacks %s: %s", want, l)
				}
			}
		}
	}
}
