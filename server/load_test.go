package server

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestManyConcurrentClientsGetAnAnswerEach is the failure mode this server
// exists to avoid (Hunyuan3D's own server collapsed at 150 concurrent users):
// under a burst far above capacity every client gets either its mesh or a
// quick refusal that says when to come back, and nothing else.
func TestManyConcurrentClientsGetAnAnswerEach(t *testing.T) {
	gen := &fakeGenerator{gate: make(chan struct{})}
	s := newTestServer(t, gen, func(c *Config) { c.MaxQueue = 16; c.MaxBatch = 4 })
	const clients = 150
	pictures := make([][]byte, clients)
	for i := range pictures {
		pictures[i] = testPNG(t, 16, 16, uint8(i))
	}
	codes := make([]int, clients)
	retry := make([]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.ts.Client().Post(s.ts.URL+"/v1/generate", "image/png", bytes.NewReader(pictures[i]))
			if err != nil {
				codes[i] = -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i], retry[i] = resp.StatusCode, resp.Header.Get("Retry-After")
		}()
	}
	// Hold the generator until the queue has filled, so the burst meets a
	// full server, then let it drain.
	until(t, "a full queue", func() bool { return s.engine.Load().Queued == 16 })
	until(t, "the refusals", func() bool {
		shed := s.stats(time.Now()).Shed
		return shed["queue_full"]+shed["busy"] > 0
	})
	close(gen.gate)
	wg.Wait()
	var ok, refused int
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			refused++
			if n, err := strconv.Atoi(retry[i]); err != nil || n < 1 {
				t.Errorf("503 without Retry-After: %q", retry[i])
			}
		default:
			t.Errorf("client %d: status %d", i, c)
		}
	}
	if ok < 17 || ok+refused != clients {
		t.Errorf("%d meshes, %d refusals of %d clients", ok, refused, clients)
	}
	t.Logf("%d meshes, %d refusals", ok, refused)
}

// BenchmarkCacheHit measures the whole HTTP path of a repeated request:
// multipart upload, preprocessing (the fake's decode and hash of a 64×64
// PNG), cache lookup and the mesh in the answer.
func BenchmarkCacheHit(b *testing.B) {
	s := newTestServer(b, nil)
	img := testPNG(b, 64, 64, 1)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "a.png")
	fw.Write(img)
	mw.Close()
	post := func() {
		resp, err := s.ts.Client().Post(s.ts.URL+"/v1/generate", mw.FormDataContentType(), bytes.NewReader(body.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	post()
	b.ResetTimer()
	for b.Loop() {
		post()
	}
}
