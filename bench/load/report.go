package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// dist summarises a set of durations in milliseconds.
type dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// newDist uses nearest-rank percentiles: every reported value was observed.
func newDist(v []float64) dist {
	if len(v) == 0 {
		return dist{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := func(p float64) float64 {
		return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)]
	}
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return dist{N: len(s), Mean: sum / float64(len(s)), P50: rank(0.5), P90: rank(0.9), P99: rank(0.99), Max: s[len(s)-1]}
}

type stageDist struct {
	Stage string `json:"stage"`
	dist
}

type gpuSummary struct {
	Samples          int     `json:"samples"`
	UtilMeanPct      float64 `json:"utilization_mean_percent"`
	UtilMaxPct       uint32  `json:"utilization_max_percent"`
	MemoryMaxBytes   uint64  `json:"memory_used_max_bytes"`
	PowerMeanWatts   float64 `json:"power_mean_watts"`
	PowerMaxWatts    float64 `json:"power_max_watts"`
	TemperatureMaxC  uint32  `json:"temperature_max_celsius"`
	ThrottledSamples int     `json:"throttled_samples"`
}

type summary struct {
	URL                 string            `json:"url"`
	Mode                string            `json:"mode"`
	Params              map[string]string `json:"params"`
	Requests            int               `json:"requests"`
	Concurrency         int               `json:"concurrency"`
	RepeatShare         float64           `json:"repeat_share"`
	WallSeconds         float64           `json:"wall_seconds"`
	Succeeded           int               `json:"succeeded"`
	Failed              int               `json:"failed"`
	Generated           int               `json:"generated"` // succeeded by a job of their own
	Cached              int               `json:"cached"`
	Coalesced           int               `json:"coalesced"`    // rode on an identical job in flight
	ShedAnswers         int               `json:"shed_answers"` // 429 and 503 before a retry
	ThroughputPerMinute float64           `json:"generated_per_minute"`
	LatencyGenerated    dist              `json:"latency_generated"`
	LatencyCached       dist              `json:"latency_cached"`
	LatencyCoalesced    dist              `json:"latency_coalesced"`
	Queue               dist              `json:"queue_wait"`
	Run                 dist              `json:"run"`
	Stages              []stageDist       `json:"stages"`
	GPU                 *gpuSummary       `json:"gpu,omitempty"`
	GPUNote             string            `json:"gpu_note,omitempty"`
	ServerMeanBatchSize float64           `json:"server_mean_batch_size"`
	Errors              map[string]int    `json:"errors,omitempty"`
}

func summarize(cfg config, recs []record, gpu []gpuRow, wall time.Duration) summary {
	s := summary{URL: cfg.url, Mode: cfg.mode, Params: cfg.params, Requests: len(recs), Concurrency: cfg.concurrency,
		RepeatShare: cfg.repeat, WallSeconds: wall.Seconds(), Errors: map[string]int{}}
	var latGen, latCached, latCoalesced, queue, run []float64
	stages := map[string][]float64{}
	for _, r := range recs {
		s.ShedAnswers += r.Shed
		if r.Err != "" {
			s.Failed++
			s.Errors[r.Err]++
			continue
		}
		s.Succeeded++
		switch {
		case r.Cached:
			s.Cached++
			latCached = append(latCached, r.ClientMS)
			continue
		case r.Coalesced:
			s.Coalesced++
			latCoalesced = append(latCoalesced, r.ClientMS)
			continue
		}
		s.Generated++
		latGen = append(latGen, r.ClientMS)
		queue = append(queue, r.QueueMS)
		run = append(run, r.RunMS)
		for _, st := range r.Stages {
			stages[st.Stage] = append(stages[st.Stage], st.MS)
		}
	}
	if s.WallSeconds > 0 {
		s.ThroughputPerMinute = float64(s.Generated) / s.WallSeconds * 60
	}
	s.LatencyGenerated, s.LatencyCached, s.LatencyCoalesced = newDist(latGen), newDist(latCached), newDist(latCoalesced)
	s.Queue, s.Run = newDist(queue), newDist(run)
	for _, name := range stageNames(recs) {
		s.Stages = append(s.Stages, stageDist{Stage: name, dist: newDist(stages[name])})
	}
	if len(gpu) > 0 {
		g := &gpuSummary{Samples: len(gpu)}
		for _, r := range gpu {
			g.UtilMeanPct += float64(r.UtilizationPct)
			g.UtilMaxPct = max(g.UtilMaxPct, r.UtilizationPct)
			g.MemoryMaxBytes = max(g.MemoryMaxBytes, r.MemoryUsedBytes)
			g.PowerMeanWatts += r.PowerWatts
			g.PowerMaxWatts = max(g.PowerMaxWatts, r.PowerWatts)
			g.TemperatureMaxC = max(g.TemperatureMaxC, r.TemperatureC)
			if r.Throttled {
				g.ThrottledSamples++
			}
		}
		g.UtilMeanPct /= float64(len(gpu))
		g.PowerMeanWatts /= float64(len(gpu))
		s.GPU = g
	}
	return s
}

// stageNames lists the stages the server reported, in its order.
func stageNames(recs []record) []string {
	var names []string
	for _, r := range recs {
		for _, st := range r.Stages {
			if !slices.Contains(names, st.Stage) {
				names = append(names, st.Stage)
			}
		}
	}
	return names
}

// markdown prints the summary as a newcomer reads it.
func (s summary) markdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## hy3d load: %d %s requests, %d in flight, %.0f %% repeated pictures, params %v\n\n",
		s.Requests, s.Mode, s.Concurrency, 100*s.RepeatShare, s.Params)
	p("%s in %.1f s: %d succeeded (%d generated, %d from the cache, %d coalesced), %d failed, %d shed answers (429/503) retried.\n",
		s.URL, s.WallSeconds, s.Succeeded, s.Generated, s.Cached, s.Coalesced, s.Failed, s.ShedAnswers)
	p("Throughput: %.1f generated meshes per minute; server's mean batch size %.2f.\n\n", s.ThroughputPerMinute, s.ServerMeanBatchSize)
	p("| ms | n | mean | p50 | p90 | p99 | max |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	row := func(name string, d dist) {
		if d.N > 0 {
			p("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", name, d.N, d.Mean, d.P50, d.P90, d.P99, d.Max)
		}
	}
	row("request, generated", s.LatencyGenerated)
	row("request, coalesced", s.LatencyCoalesced)
	row("request, cached", s.LatencyCached)
	row("queue wait", s.Queue)
	row("run (batch wall)", s.Run)
	for _, st := range s.Stages {
		row("stage "+st.Stage, st.dist)
	}
	p("\n")
	switch {
	case s.GPU != nil:
		g := s.GPU
		p("GPU (%d samples): utilization mean %.0f %%, max %d %%; memory used max %.2f GiB; power mean %.0f W, max %.0f W; temperature max %d °C; %d samples throttled.\n",
			g.Samples, g.UtilMeanPct, g.UtilMaxPct, float64(g.MemoryMaxBytes)/(1<<30), g.PowerMeanWatts, g.PowerMaxWatts, g.TemperatureMaxC, g.ThrottledSamples)
	case s.GPUNote != "":
		p("GPU: %s.\n", s.GPUNote)
	}
	errs := make([]string, 0, len(s.Errors))
	for e := range s.Errors {
		errs = append(errs, e)
	}
	slices.Sort(errs)
	for _, e := range errs {
		p("error ×%d: %s\n", s.Errors[e], e)
	}
}

// write stores requests.csv, gpu.csv and summary.json in dir.
func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stages := stageNames(r.records)
	header := []string{"index", "picture", "repeat", "start_ms", "http_status", "attempts", "shed", "client_ms",
		"queue_ms", "run_ms", "cached", "coalesced", "faces", "bytes", "error"}
	for _, s := range stages {
		header = append(header, "stage_"+s+"_ms")
	}
	rows := [][]string{header}
	for _, rec := range r.records {
		row := []string{strconv.Itoa(rec.Index), strconv.Itoa(rec.Picture), strconv.FormatBool(rec.Repeat),
			num(rec.StartMS), strconv.Itoa(rec.Status), strconv.Itoa(rec.Attempts), strconv.Itoa(rec.Shed),
			num(rec.ClientMS), num(rec.QueueMS), num(rec.RunMS), strconv.FormatBool(rec.Cached),
			strconv.FormatBool(rec.Coalesced), strconv.Itoa(rec.Faces), strconv.Itoa(rec.Bytes), rec.Err}
		for _, name := range stages {
			v := ""
			for _, st := range rec.Stages {
				if st.Stage == name {
					v = num(st.MS)
				}
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	if err := writeCSV(filepath.Join(dir, "requests.csv"), rows); err != nil {
		return err
	}
	rows = [][]string{{"at_ms", "gpu", "name", "utilization_percent", "memory_used_bytes", "memory_total_bytes",
		"power_watts", "temperature_celsius", "sm_clock_mhz", "throttled"}}
	for _, g := range r.gpu {
		rows = append(rows, []string{num(g.AtMS), strconv.Itoa(g.Index), g.Name, strconv.Itoa(int(g.UtilizationPct)),
			strconv.FormatUint(g.MemoryUsedBytes, 10), strconv.FormatUint(g.MemoryTotalBytes, 10), num(g.PowerWatts),
			strconv.Itoa(int(g.TemperatureC)), strconv.Itoa(int(g.SMClockMHz)), strconv.FormatBool(g.Throttled)})
	}
	if err := writeCSV(filepath.Join(dir, "gpu.csv"), rows); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r.summary, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644)
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
