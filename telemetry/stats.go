package telemetry

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
)

// StatsView is the body of /v1/stats.
type StatsView struct {
	UptimeSeconds   float64           `json:"uptime_seconds"`
	Queue           QueueStats        `json:"queue"`
	Jobs            JobStats          `json:"jobs"`
	Cache           CacheStats        `json:"cache"`
	Shed            map[string]uint64 `json:"shed"`
	Stages          []StageStats      `json:"stages"`
	Batches         []BatchStats      `json:"batches"`
	GPU             GPUStats          `json:"gpu"`
	Recommendations []Recommendation  `json:"recommendations"`
	// Workers are every worker sharing this server's queue, this one
	// included, as they last reported (none on a server alone).
	Workers []WorkerView `json:"workers,omitempty"`
}

// QueueStats is the job engine's state now.
type QueueStats struct {
	Depth    int         `json:"depth"`
	Capacity int         `json:"capacity"`
	Running  int         `json:"running"`
	Workers  int         `json:"workers"`
	MaxBatch int         `json:"max_batch"`
	Policy   jobs.Policy `json:"policy"`
	Draining bool        `json:"draining"`
}

// BatchStats counts the calls of one graph by the number of jobs each ran:
// condition (jobs started together), dit (jobs in one sampling step),
// decode (jobs decoded together).
type BatchStats struct {
	Graph    string            `json:"graph"`
	Calls    uint64            `json:"calls"`
	MeanSize float64           `json:"mean_size"`
	Sizes    map[string]uint64 `json:"sizes"` // jobs per call → calls
}

// JobStats summarizes finished jobs.
type JobStats struct {
	Succeeded           uint64  `json:"succeeded"`
	Failed              uint64  `json:"failed"`
	Cancelled           uint64  `json:"cancelled"`
	ThroughputPerMinute float64 `json:"throughput_per_minute"` // over the last 5 minutes
	SecondsPerJob       float64 `json:"seconds_per_job"`       // EWMA of a job's run time / jobs running beside it
	MeanBatchSize       float64 `json:"mean_batch_size"`       // jobs per DiT step
	DenseDecodeShare    float64 `json:"dense_decode_share"`    // of succeeded jobs
	Generations         int     `json:"generations_tracked"`
}

// CacheStats counts result lookups.
type CacheStats struct {
	MemoryHits uint64            `json:"memory_hits"`
	DiskHits   uint64            `json:"disk_hits"`
	Misses     uint64            `json:"misses"`
	Coalesced  uint64            `json:"coalesced"`
	HitRatio   float64           `json:"hit_ratio"`
	Disk       results.DiskStats `json:"disk"`
}

// StageStats are one stage's latencies over its last samples.
type StageStats struct {
	Stage   string  `json:"stage"`
	Samples int     `json:"samples"`
	MeanMS  float64 `json:"mean_ms"`
	P50MS   float64 `json:"p50_ms"`
	P90MS   float64 `json:"p90_ms"`
	P99MS   float64 `json:"p99_ms"`
	Share   float64 `json:"share"` // of the summed stage means
}

// GPUStats is the part of the GPU state the recommendations use.
type GPUStats struct {
	Available       bool     `json:"available"`
	Utilization     float64  `json:"utilization_avg"`
	MemoryUsed      float64  `json:"memory_used_fraction"`
	ThrottleReasons []string `json:"throttle_reasons"`
}

// Recommendation is one tuning hint derived from the measurements.
type Recommendation struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// minSamples is how much evidence a recommendation needs.
const minSamples = 5

// StatsInput is what /v1/stats summarizes besides the metrics: the job
// engine's state, the result store's and the GPU monitor.
type StatsInput struct {
	Now, Started  time.Time
	Queue         QueueStats
	SecondsPerJob float64
	Generations   int
	Disk          results.DiskStats
	GPU           *GPUMonitor
}

// Stats is the body of /v1/stats: the metrics summarized, with in, and the
// advice they support.
func (m *Metrics) Stats(in StatsInput) StatsView {
	now := in.Now
	v := StatsView{
		UptimeSeconds: now.Sub(in.Started).Seconds(),
		Queue:         in.Queue,
		Shed:          map[string]uint64{},
		Batches:       []BatchStats{},
	}
	v.Jobs.SecondsPerJob = in.SecondsPerJob
	v.Jobs.Generations = in.Generations

	m.mu.Lock()
	v.Jobs.Succeeded = m.outcomes[string(jobs.StateSucceeded)]
	v.Jobs.Failed = m.outcomes[string(jobs.StateFailed)]
	v.Jobs.Cancelled = m.outcomes[string(jobs.StateCancelled)]
	m.trimCompletions(now)
	span := min(throughputWindow, now.Sub(in.Started))
	if span > 0 {
		v.Jobs.ThroughputPerMinute = float64(len(m.completions)) / span.Minutes()
	}
	if n := m.decodes[jobs.DecodeDense] + m.decodes[jobs.DecodeCoarseToFine]; n > 0 {
		v.Jobs.DenseDecodeShare = float64(m.decodes[jobs.DecodeDense]) / float64(n)
	}
	for _, g := range sortedKeys(m.batches) {
		b := m.batches[g]
		bs := BatchStats{Graph: g, Calls: b.calls, MeanSize: round3(float64(b.jobs) / float64(b.calls)), Sizes: map[string]uint64{}}
		for size, n := range b.bySize {
			bs.Sizes[strconv.Itoa(size)] = n
		}
		v.Batches = append(v.Batches, bs)
		if g == "dit" {
			v.Jobs.MeanBatchSize = bs.MeanSize
		}
	}
	v.Cache = CacheStats{MemoryHits: m.cache[results.TierMemory], DiskHits: m.cache[results.TierDisk], Misses: m.cache[results.TierMiss],
		Coalesced: m.coalesced, Disk: in.Disk}
	if total := v.Cache.MemoryHits + v.Cache.DiskHits + v.Cache.Misses; total > 0 {
		v.Cache.HitRatio = float64(v.Cache.MemoryHits+v.Cache.DiskHits) / float64(total)
	}
	for k, n := range m.shed {
		v.Shed[k] = n
	}
	var sum float64
	for _, name := range m.stageOrder {
		w := m.stageWindow[name]
		mean, q := w.quantiles(0.5, 0.9, 0.99)
		v.Stages = append(v.Stages, StageStats{Stage: name, Samples: len(w.samples),
			MeanMS: ms(mean), P50MS: ms(q[0]), P90MS: ms(q[1]), P99MS: ms(q[2])})
		sum += mean
	}
	requests := uint64(0)
	for k, n := range m.httpRequests {
		if k[1] == "POST" {
			requests += n
		}
	}
	m.mu.Unlock()
	for i := range v.Stages {
		if sum > 0 {
			v.Stages[i].Share = round3(v.Stages[i].MeanMS / ms(sum))
		}
	}

	gv := in.GPU.View()
	v.GPU = GPUStats{Available: gv.Available, Utilization: gv.Utilization, MemoryUsed: gv.MemoryUsed,
		ThrottleReasons: []string{}}
	for _, d := range gv.Devices {
		v.GPU.ThrottleReasons = append(v.GPU.ThrottleReasons, d.ThrottleReasons...)
	}
	v.Recommendations = recommend(v, requests, in.GPU.Reason())
	return v
}

// recommend turns measurements into tuning hints. Each rule names the
// measurement it rests on, so an operator can check it.
func recommend(v StatsView, postRequests uint64, gpuReason string) []Recommendation {
	out := []Recommendation{}
	add := func(id, format string, args ...any) {
		out = append(out, Recommendation{ID: id, Message: fmt.Sprintf(format, args...)})
	}
	for _, st := range v.Stages {
		if st.Samples < minSamples {
			continue
		}
		switch {
		case strings.HasPrefix(st.Stage, "decode") && st.Share > 0.4 && v.Jobs.DenseDecodeShare > 0.5:
			add("decode-dominates", "decode takes %.0f%% of job time and %.0f%% of jobs decode densely: use decode=coarse_to_fine (refines only cells near the surface)", st.Share*100, v.Jobs.DenseDecodeShare*100)
		case strings.HasPrefix(st.Stage, "decode") && st.Share > 0.4:
			add("decode-dominates", "decode takes %.0f%% of job time even coarse-to-fine: lower the resolution, or raise --max-batch so that more jobs share each geometry call", st.Share*100)
		case strings.HasPrefix(st.Stage, "sample") && st.Share > 0.6:
			add("sampling-dominates", "sampling takes %.0f%% of job time: use fewer steps or a guidance-distilled (turbo) model", st.Share*100)
		case st.Stage == "preprocess" && st.Share > 0.3:
			add("preprocess-dominates", "preprocessing takes %.0f%% of job time: send RGBA pictures with alpha so that no matting is needed, or smaller pictures", st.Share*100)
		}
	}
	if !v.GPU.Available {
		add("no-gpu-telemetry", "no GPU telemetry (%s): GPU-based recommendations are off", gpuReason)
	} else {
		if v.GPU.Utilization < 0.5 && v.Queue.Depth > 0 {
			add("gpu-underutilized", "GPU utilization averages %.0f%% while %d jobs wait: raise --max-batch or --workers", v.GPU.Utilization*100, v.Queue.Depth)
		}
		if v.GPU.MemoryUsed > 0.9 {
			add("gpu-memory-high", "GPU memory is %.0f%% used: lower --max-batch before allocations fail", v.GPU.MemoryUsed*100)
		}
		if len(v.GPU.ThrottleReasons) > 0 {
			add("gpu-throttled", "GPU clocks are throttled (%s): check cooling and the power limit", strings.Join(dedupe(v.GPU.ThrottleReasons), ", "))
		}
	}
	if v.Queue.MaxBatch > 1 && v.Jobs.MeanBatchSize >= 0.9*float64(v.Queue.MaxBatch) && v.Queue.Depth > 0 {
		add("batches-full", "batches average %.1f of at most %d jobs and jobs still wait: raise --max-batch if GPU memory allows, or add GPUs", v.Jobs.MeanBatchSize, v.Queue.MaxBatch)
	}
	shed := uint64(0)
	for _, n := range v.Shed {
		shed += n
	}
	if postRequests >= 20 && float64(shed) > 0.05*float64(postRequests) {
		add("shedding", "%.0f%% of generation requests were refused (429/503): add capacity or raise --max-queue", 100*float64(shed)/float64(postRequests))
	}
	return out
}

func ms(seconds float64) float64 { return round3(seconds * 1000) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
