package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawRequest writes head (the request line and headers, without the blank
// line) and the start of a body, and returns the connection, still open.
func rawRequest(t *testing.T, s *testServer, head, partialBody string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"+partialBody); err != nil {
		t.Fatal(err)
	}
	// A bound on the test only: a server that waits for the rest of the
	// body would never answer.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return conn
}

func TestBodyReadTimeoutIs408WithoutAddresses(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.ReadTimeout = 200 * time.Millisecond })
	conn := rawRequest(t, s, "POST /v1/generations HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 1000", `{"image": "AAAA`)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "tcp") {
		t.Errorf("the detail leaks the connection: %s", body)
	}
}

func TestEarlyErrorAnswersAtOnceAndClosesTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(*Config)
		head   string
		status int
	}{
		{"401 before the body", func(c *Config) { c.APIKeys = []string{"k"} },
			"POST /v1/generations HTTP/1.1\nHost: x\nContent-Type: image/png\nTransfer-Encoding: chunked", http.StatusUnauthorized},
		{"429 before the body", func(c *Config) { c.RateLimit, c.RateBurst = 0.001, 1 },
			"POST /v1/generations HTTP/1.1\nHost: x\nContent-Type: image/png\nTransfer-Encoding: chunked", http.StatusTooManyRequests},
		{"400 within the body", nil,
			"POST /v1/generations HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []func(*Config){func(c *Config) { c.ReadTimeout = 10 * time.Minute }}
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			s := newTestServer(t, nil, opts...)
			if tc.status == http.StatusTooManyRequests {
				// The one request of the burst.
				s.submit(t, testPNG(t, 16, 16, 90), nil)
			}
			// A body whose end never comes: a chunk, then silence.
			chunk := `{"a":1,"a":2,`
			conn := rawRequest(t, s, tc.head, strconv.FormatInt(int64(len(chunk)), 16)+"\r\n"+chunk+"\r\n")
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("no answer while the body is unfinished: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("status %d, close %v; want %d and Connection: close", resp.StatusCode, resp.Close, tc.status)
			}
		})
	}
}

func TestRequestsNetHTTPRefusesAreAnsweredWithProblems(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"header block too large", "GET /v1/models HTTP/1.1\nHost: x\nX-Big: " + strings.Repeat("a", 100<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"bad escape in the path", "GET /v1/generations/%zz HTTP/1.1\nHost: x", http.StatusBadRequest},
		{"no Host", "GET /v1/models HTTP/1.1", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, nil)
			conn := rawRequest(t, s, tc.head, "")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var p Problem
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" ||
				json.Unmarshal(body, &p) != nil || p.Status != tc.status || !strings.HasPrefix(p.Type, problemDocs) {
				t.Errorf("%d %q: %s; want a %d problem", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status)
			}
		})
	}
}

func TestHandlerAnswersAreNeverTakenForNetHTTPErrors(t *testing.T) {
	// What a handler's text answer looks like on the wire: sorted headers.
	handler := "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\n\r\nhi"
	if problemForPlainError([]byte(handler)) != nil {
		t.Error("a handler's answer was rewritten")
	}
}
