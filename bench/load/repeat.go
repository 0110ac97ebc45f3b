package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The repeat mode sends one request (the same picture and parameters) over
// and over from every client, the load of retries, page reloads and many
// clients fetching one asset, and measures in the same run a reference: a
// plain net/http server in this process that reads the same request and
// answers with the same bytes. The ratio of the two is what a cache hit
// costs beyond serving a file.

// target is one server the repeat mode measures.
type target struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// repeatResult is one target's share of a repeat run.
type repeatResult struct {
	Target      string         `json:"target"`
	Requests    int            `json:"requests"`
	WallSeconds float64        `json:"wall_seconds"`
	PerSecond   float64        `json:"requests_per_second"`
	OK          int            `json:"ok"`
	ServerError int            `json:"server_errors"` // 5xx
	Other       map[string]int `json:"other,omitempty"`
	Latency     dist           `json:"latency_ok"`
}

// repeatSummary is the report of a repeat run.
type repeatSummary struct {
	Params      map[string]string `json:"params"`
	Concurrency int               `json:"concurrency"`
	Duration    float64           `json:"duration_seconds"`
	BodyBytes   int               `json:"request_bytes"`
	MeshBytes   int               `json:"response_bytes"`
	Results     []repeatResult    `json:"results"`
}

func runRepeat(ctx context.Context, cfg config) (*repeatSummary, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.concurrency + 1
	transport.MaxIdleConns = 2*cfg.concurrency + 2
	c := &client{cfg: cfg, http: &http.Client{Transport: transport}}
	if err := c.ready(ctx); err != nil {
		return nil, err
	}
	body, contentType, err := c.form(picture(0))
	if err != nil {
		return nil, err
	}
	// The first answer makes the result the others repeat.
	mesh, err := c.post(ctx, c.cfg.url, body, contentType)
	if err != nil {
		return nil, fmt.Errorf("first request: %w", err)
	}
	ref, err := startReference(mesh)
	if err != nil {
		return nil, err
	}
	defer ref.Close()

	sum := &repeatSummary{Params: cfg.params, Concurrency: cfg.concurrency, Duration: cfg.duration.Seconds(),
		BodyBytes: len(body), MeshBytes: len(mesh)}
	targets := []target{{"hy3d", cfg.url}, {"static", "http://" + ref.Addr}}
	for _, tg := range targets {
		res := c.hammer(ctx, tg, body, contentType, len(mesh))
		sum.Results = append(sum.Results, res)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return sum, nil
}

// post sends one synchronous request, honouring Retry-After when the
// server sheds load, and returns the mesh.
func (c *client) post(ctx context.Context, base string, body []byte, contentType string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/generate", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return nil, err
		case resp.StatusCode == http.StatusOK:
			return b, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) &&
			attempt < c.cfg.maxAttempts:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(retryAfter(resp.Header.Get("Retry-After"), c.cfg.maxBackoff)):
			}
		default:
			return nil, fmt.Errorf("%s: %s", resp.Status, firstLine(b))
		}
	}
}

// hammer runs cfg.concurrency clients that repeat the request against tg
// until cfg.duration has passed or cfg.requests were sent.
func (c *client) hammer(ctx context.Context, tg target, body []byte, contentType string, meshBytes int) repeatResult {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.duration)
	defer cancel()
	var sent atomic.Int64
	type outcome struct {
		status int
		err    string
		ms     float64
	}
	perClient := make([][]outcome, c.cfg.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range c.cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && sent.Add(1) <= int64(c.cfg.requests) {
				t0 := time.Now()
				o := outcome{}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, tg.URL+"/v1/generate", bytes.NewReader(body))
				if err != nil {
					o.err = err.Error()
				} else {
					req.Header.Set("Content-Type", contentType)
					resp, err := c.http.Do(req)
					if err != nil {
						o.err = "transport error"
					} else {
						n, rerr := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						o.status = resp.StatusCode
						switch {
						case rerr != nil:
							o.err = "body cut short"
						case resp.StatusCode == http.StatusOK && int(n) != meshBytes:
							o.err = fmt.Sprintf("%d bytes, want %d", n, meshBytes)
						}
					}
				}
				if ctx.Err() != nil && o.err != "" {
					break // cut by the end of the run, not answered wrongly
				}
				o.ms = ms(time.Since(t0))
				perClient[i] = append(perClient[i], o)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	res := repeatResult{Target: tg.Name, WallSeconds: wall.Seconds(), Other: map[string]int{}}
	var lat []float64
	for _, outs := range perClient {
		for _, o := range outs {
			res.Requests++
			switch {
			case o.err != "":
				res.Other[o.err]++
			case o.status == http.StatusOK:
				res.OK++
				lat = append(lat, o.ms)
			case o.status >= 500:
				res.ServerError++
			default:
				res.Other[http.StatusText(o.status)]++
			}
		}
	}
	res.PerSecond = float64(res.OK) / wall.Seconds()
	res.Latency = newDist(lat)
	return res
}

// reference is the plain static server of a repeat run.
type reference struct {
	Addr string
	srv  *http.Server
}

// startReference listens on a loopback port and answers every request by
// reading its body and sending mesh, as a file server would.
func startReference(mesh []byte) (*reference, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("reference server: %w", err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "model/gltf-binary")
			w.Header().Set("Content-Length", fmt.Sprint(len(mesh)))
			_, _ = w.Write(mesh)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	return &reference{Addr: ln.Addr().String(), srv: srv}, nil
}

func (r *reference) Close() { _ = r.srv.Close() }

func (s *repeatSummary) markdown(w io.Writer) {
	fmt.Fprintf(w, "One repeated request (%d-byte upload, %d-byte mesh), %d clients, %.0f s per target:\n\n",
		s.BodyBytes, s.MeshBytes, s.Concurrency, s.Duration)
	fmt.Fprintln(w, "| target | requests | 200 | 5xx | other | req/s | p50 ms | p99 ms |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range s.Results {
		other := 0
		for _, n := range r.Other {
			other += n
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %.0f | %.1f | %.1f |\n", r.Target, r.Requests, r.OK, r.ServerError,
			other, r.PerSecond, r.Latency.P50, r.Latency.P99)
	}
	if len(s.Results) == 2 && s.Results[1].PerSecond > 0 && s.Results[1].Latency.P99 > 0 {
		h, ref := s.Results[0], s.Results[1]
		fmt.Fprintf(w, "\nhy3d / static: %.2f× the requests per second, %.2f× the p99 latency\n",
			h.PerSecond/ref.PerSecond, h.Latency.P99/ref.Latency.P99)
	}
	for _, r := range s.Results {
		for what, n := range r.Other {
			fmt.Fprintf(w, "%s: %d × %s\n", r.Target, n, what)
		}
	}
}

func (s *repeatSummary) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "repeat.json"), b, 0o644)
}
