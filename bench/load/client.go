package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// record is one request as the client and the server saw it.
type record struct {
	Index     int
	Picture   int
	Repeat    bool
	StartMS   float64 // since the run began
	Status    int     // HTTP status of the last attempt; 0 when none answered
	Attempts  int
	Shed      int // 429 and 503 answers before the last attempt
	ClientMS  float64
	QueueMS   float64 // from the server's status: created → started
	RunMS     float64 // started → finished
	Cached    bool
	Coalesced bool
	Faces     int
	Bytes     int
	Stages    []stageTime // in the server's order
	Err       string
}

type stageTime struct {
	Stage string  `json:"stage"`
	MS    float64 `json:"ms"`
}

// gpuRow is one device at one poll of /v1/gpu.
type gpuRow struct {
	AtMS             float64
	Index            int
	Name             string
	UtilizationPct   uint32
	MemoryUsedBytes  uint64
	MemoryTotalBytes uint64
	PowerWatts       float64
	TemperatureC     uint32
	SMClockMHz       uint32
	Throttled        bool
}

// The parts of hy3d's JSON the benchmark reads (docs/api.md).
type generationStatus struct {
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  *time.Time  `json:"started_at"`
	FinishedAt *time.Time  `json:"finished_at"`
	Cached     bool        `json:"cached"`
	Coalesced  bool        `json:"coalesced"`
	Stages     []stageTime `json:"stages"`
	Result     *struct {
		Faces int `json:"faces"`
	} `json:"result"`
}

type gpuView struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
	Devices   []struct {
		Index           int      `json:"index"`
		Name            string   `json:"name"`
		Utilization     uint32   `json:"utilization_gpu_percent"`
		MemoryUsed      uint64   `json:"memory_used_bytes"`
		MemoryTotal     uint64   `json:"memory_total_bytes"`
		Temperature     uint32   `json:"temperature_celsius"`
		Power           float64  `json:"power_watts"`
		SMClock         uint32   `json:"sm_clock_mhz"`
		ThrottleReasons []string `json:"throttle_reasons"`
	} `json:"devices"`
}

type serverStats struct {
	Jobs struct {
		MeanBatchSize float64 `json:"mean_batch_size"`
	} `json:"jobs"`
}

type report struct {
	records []record
	gpu     []gpuRow
	summary summary
}

func run(ctx context.Context, cfg config) (*report, error) {
	// One idle connection per request in flight, so that none is reopened.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.concurrency + 1
	c := &client{cfg: cfg, http: &http.Client{Transport: transport}}
	if err := c.ready(ctx); err != nil {
		return nil, err
	}
	pictures := pictureOrder(cfg.requests, cfg.repeat, cfg.seed)
	repeats := make([]bool, len(pictures))
	sent := map[int]bool{}
	for i, p := range pictures {
		repeats[i] = sent[p]
		sent[p] = true
	}
	start := time.Now()
	gpuCtx, stopGPU := context.WithCancel(ctx)
	gpuDone := make(chan struct{})
	var gpuRows []gpuRow
	var gpuNote string
	go func() {
		defer close(gpuDone)
		gpuRows, gpuNote = c.pollGPU(gpuCtx, start)
	}()

	records := make([]record, cfg.requests)
	next := make(chan int)
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				records[i] = c.one(ctx, start, i, pictures[i], repeats[i])
			}
		}()
	}
	for i := range cfg.requests {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	stopGPU()
	<-gpuDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var st serverStats
	statsErr := c.getJSON(context.Background(), "/v1/stats", &st)
	sum := summarize(cfg, records, gpuRows, wall)
	sum.GPUNote = gpuNote
	if statsErr == nil {
		sum.ServerMeanBatchSize = st.Jobs.MeanBatchSize
	}
	return &report{records: records, gpu: gpuRows, summary: sum}, nil
}

// pictureOrder says which picture each request sends: a new one, or with
// probability repeat one sent before.
func pictureOrder(n int, repeat float64, seed int64) []int {
	rng := rand.New(rand.NewSource(seed))
	out := make([]int, n)
	fresh := 0
	for i := range out {
		if fresh > 0 && rng.Float64() < repeat {
			out[i] = out[rng.Intn(i)]
			continue
		}
		out[i] = fresh
		fresh++
	}
	return out
}

// picture is a 256² PNG of a coloured disc, square or ring on white. The
// server's preprocessing crops and recenters the object, so place and size
// do not tell pictures apart: the colour does, distinct for every k below
// pictureColours.
func picture(k int) []byte {
	const size = 256
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	col := pictureColour(k)
	cx, cy := 128+k%17-8, 128+k%13-6
	r := 50 + k%40
	for y := range size {
		for x := range size {
			dx, dy := x-cx, y-cy
			d2 := dx*dx + dy*dy
			var in bool
			switch k % 3 {
			case 0:
				in = d2 <= r*r
			case 1:
				in = abs(dx) <= r*4/5 && abs(dy) <= r*4/5
			default:
				in = d2 <= r*r && d2 >= r*r/4
			}
			if in {
				img.SetNRGBA(x, y, col)
			} else {
				img.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // encoding an in-memory image cannot fail
	}
	return buf.Bytes()
}

const pictureColours = 180 * 180

func pictureColour(k int) color.NRGBA {
	k %= pictureColours
	return color.NRGBA{uint8(40 + k%180), uint8(40 + k/180), uint8(200 - 60*(k%3)), 255}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

type client struct {
	cfg  config
	http *http.Client
}

func (c *client) ready(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.url+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := c.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready (GET /readyz: %v)", c.cfg.url, statusOrErr(resp, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func statusOrErr(resp *http.Response, err error) any {
	if err != nil {
		return err
	}
	return resp.Status
}

// one sends request i synchronously, honouring Retry-After when the server
// sheds load, then reads the generation's status for the server's timings.
func (c *client) one(ctx context.Context, start time.Time, i, pic int, repeat bool) record {
	rec := record{Index: i, Picture: pic, Repeat: repeat}
	body, contentType, err := c.form(picture(pic))
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	t0 := time.Now()
	rec.StartMS = ms(t0.Sub(start))
	var resp *http.Response
	for rec.Attempts < c.cfg.maxAttempts {
		rec.Attempts++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.url+"/v1/generate", bytes.NewReader(body))
		if err != nil {
			rec.Err = err.Error()
			return rec
		}
		req.Header.Set("Content-Type", contentType)
		resp, err = c.http.Do(req)
		if err != nil {
			rec.Err = err.Error()
			return rec
		}
		rec.Status = resp.StatusCode
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), c.cfg.maxBackoff)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resp = nil
		rec.Shed++
		select {
		case <-ctx.Done():
			rec.Err = ctx.Err().Error()
			return rec
		case <-time.After(wait):
		}
	}
	if resp == nil {
		rec.Err = fmt.Sprintf("shed %d times", rec.Shed)
		return rec
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	rec.ClientMS = ms(time.Since(t0))
	rec.Bytes = len(data)
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	if resp.StatusCode != http.StatusOK {
		rec.Err = firstLine(data)
		return rec
	}
	var st generationStatus
	if err := c.getJSON(ctx, resp.Header.Get("Location"), &st); err != nil {
		rec.Err = "status: " + err.Error()
		return rec
	}
	rec.Cached, rec.Coalesced = st.Cached, st.Coalesced
	if st.StartedAt != nil {
		rec.QueueMS = ms(st.StartedAt.Sub(st.CreatedAt))
		if st.FinishedAt != nil {
			rec.RunMS = ms(st.FinishedAt.Sub(*st.StartedAt))
		}
	}
	if st.Result != nil {
		rec.Faces = st.Result.Faces
	}
	rec.Stages = st.Stages
	return rec
}

func (c *client) form(img []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile("image", "picture.png")
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(img); err != nil {
		return nil, "", err
	}
	names := make([]string, 0, len(c.cfg.params))
	for k := range c.cfg.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := w.WriteField(k, c.cfg.params[k]); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// retryAfter reads a Retry-After in seconds (the form hy3d sends), capped;
// an absent or unreadable one waits a second.
func retryAfter(v string, limit time.Duration) time.Duration {
	s, err := strconv.Atoi(v)
	if err != nil || s < 0 {
		return min(time.Second, limit)
	}
	return min(time.Duration(s)*time.Second, limit)
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	return string(line)
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// pollGPU reads /v1/gpu at once, every interval, and once more when ctx
// ends, so that even a short run has a reading from before and after. The
// note says why there are no rows when the server has no telemetry.
func (c *client) pollGPU(ctx context.Context, start time.Time) ([]gpuRow, string) {
	var rows []gpuRow
	var note string
	read := func() {
		var v gpuView
		at := ms(time.Since(start))
		if err := c.getJSON(context.Background(), "/v1/gpu", &v); err != nil {
			note = err.Error()
			return
		}
		if !v.Available {
			note = "GPU telemetry unavailable: " + v.Reason
			return
		}
		if v.Error != "" {
			note = v.Error
		}
		for _, d := range v.Devices {
			rows = append(rows, gpuRow{AtMS: at, Index: d.Index, Name: d.Name, UtilizationPct: d.Utilization,
				MemoryUsedBytes: d.MemoryUsed, MemoryTotalBytes: d.MemoryTotal, PowerWatts: d.Power,
				TemperatureC: d.Temperature, SMClockMHz: d.SMClock, Throttled: len(d.ThrottleReasons) > 0})
		}
	}
	read()
	tick := time.NewTicker(c.cfg.gpuInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			read()
			return rows, note
		case <-tick.C:
			read()
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
