package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/telemetry"
)

func busyGPU() *fakeGPU {
	return &fakeGPU{samples: []telemetry.GPUSample{{
		Index: 0, Name: "Fake 4090", UtilizationGPU: 30, MemoryUsedBytes: 23 << 30, MemoryTotalBytes: 24 << 30,
		TemperatureC: 84, PowerWatts: 430, SMClockMHz: 2100, ThrottleReasons: []string{"sw_thermal_slowdown"},
	}}}
}

func TestGPUEndpointReportsTheSampledDevices(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.GPU = busyGPU() })
	s.gpu.Poll(time.Now()) // the background sampler may not have run yet
	var v telemetry.GPUView
	decodeJSON(t, s.do(t, "GET", "/v1/gpu", nil), &v)
	if !v.Available || len(v.Devices) != 1 || v.Devices[0].Name != "Fake 4090" || v.SampledAt == nil || v.MemoryUsed < 0.95 {
		t.Fatalf("%+v", v)
	}
	metrics := string(readAll(t, s.do(t, "GET", "/metrics", nil)))
	for _, want := range []string{
		`hy3d_gpu_telemetry_available 1`,
		`hy3d_gpu_utilization_ratio{gpu="0",name="Fake 4090"} 0.3`,
		`hy3d_gpu_temperature_celsius{gpu="0",name="Fake 4090"} 84`,
		`hy3d_gpu_throttled{gpu="0",name="Fake 4090"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestWithoutNVMLTheServerSaysSoAndCarriesOn(t *testing.T) {
	s := newTestServer(t, nil, func(c *Config) { c.GPUUnavailable = "NVML unavailable: ERROR_LIBRARY_NOT_FOUND" })
	var v telemetry.GPUView
	decodeJSON(t, s.do(t, "GET", "/v1/gpu", nil), &v)
	if v.Available || !strings.Contains(v.Reason, "ERROR_LIBRARY_NOT_FOUND") || v.Devices == nil {
		t.Fatalf("%+v", v)
	}
	if !strings.Contains(s.logs(), "GPU telemetry off") {
		t.Error("not logged")
	}
	if id := finishedGeneration(t, s, nil); id == "" {
		t.Fatal("no generation")
	}
}

func TestMetricsExposition(t *testing.T) {
	s := newTestServer(t, nil)
	finishedGeneration(t, s, nil)
	finishedGeneration(t, s, nil) // a cache hit
	// A request is counted once its response is written, which the client
	// may see first.
	until(t, "the POSTs to be counted", func() bool {
		var b strings.Builder
		if err := s.met.Write(&b, nil); err != nil {
			t.Fatal(err)
		}
		n := 0.0
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(line, `hy3d_http_requests_total{route="/v1/generations",`) {
				v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
				n += v
			}
		}
		return n == 2
	})
	resp := s.do(t, "GET", "/metrics", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	body := string(readAll(t, resp))
	for _, want := range []string{
		"# TYPE hy3d_stage_duration_seconds histogram",
		`hy3d_stage_duration_seconds_bucket{stage="decode",le="0.1"} 1`,
		`hy3d_stage_duration_seconds_bucket{stage="decode",le="0.05"} 0`,
		`hy3d_stage_duration_seconds_bucket{stage="decode",le="+Inf"} 1`,
		`hy3d_stage_duration_seconds_count{stage="sample"} 1`,
		`hy3d_jobs_total{outcome="succeeded"} 1`,
		`hy3d_cache_lookups_total{result="memory_hit"} 1`,
		`hy3d_cache_lookups_total{result="miss"} 1`,
		"# TYPE hy3d_queue_depth gauge",
		"hy3d_queue_depth 0",
		`hy3d_batch_size_count{graph="condition"} 1`,
		`hy3d_batch_size_count{graph="dit"} 5`,
		`hy3d_batch_size_count{graph="decode"} 1`,
		"hy3d_gpu_telemetry_available 0",
		"hy3d_result_store_results 1",
		"hy3d_result_store_limit_bytes 1.073741824e+10",
		"# TYPE hy3d_result_store_evictions_total counter",
		"hy3d_result_store_evictions_total 0",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The two POSTs were counted above; a job the fake generator finishes
	// before its POST is answered gets 200 instead of 202, so either code
	// may appear, and no other.
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, `hy3d_http_requests_total{route="/v1/generations",method="POST",`) &&
			!strings.Contains(line, `code="202"`) && !strings.Contains(line, `code="200"`) {
			t.Errorf("unexpected POST count %q", line)
		}
	}
	// Every sample line belongs to a declared metric.
	declared := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			declared[f[2]] = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !declared[name] && !declared[base] {
			t.Errorf("undeclared sample %q", line)
		}
	}
}

func TestStatsSummarizeStagesCacheAndQueue(t *testing.T) {
	s := newTestServer(t, nil)
	for i := range 6 {
		_, st := s.submit(t, testPNG(t, 16, 16, uint8(110+i)), nil)
		s.final(t, st.ID)
	}
	s.submit(t, testPNG(t, 16, 16, 110), nil) // a hit
	var v telemetry.StatsView
	decodeJSON(t, s.do(t, "GET", "/v1/stats", nil), &v)
	if v.Jobs.Succeeded != 6 || v.Jobs.ThroughputPerMinute <= 0 || v.Jobs.MeanBatchSize != 1 || v.Jobs.SecondsPerJob <= 0 {
		t.Errorf("jobs %+v", v.Jobs)
	}
	if v.Cache.MemoryHits+v.Cache.DiskHits != 1 || v.Cache.Misses != 6 || v.Cache.HitRatio < 0.14 || v.Cache.HitRatio > 0.15 {
		t.Errorf("cache %+v", v.Cache)
	}
	if d := v.Cache.Disk; d.Results != 6 || d.Bytes <= 0 || d.LimitBytes != 10<<30 || d.Evicted != 0 {
		t.Errorf("result store %+v", d)
	}
	if v.Queue.Capacity != 64 || v.Queue.Workers != 1 || v.Queue.Policy != jobs.PolicyContinuous {
		t.Errorf("queue %+v", v.Queue)
	}
	// One job at a time: six conditioner calls, six decodes and 6 × 5
	// DiT steps, each over one job.
	calls := map[string]telemetry.BatchStats{}
	for _, b := range v.Batches {
		calls[b.Graph] = b
	}
	if c := calls["dit"]; c.Calls != 30 || c.Sizes["1"] != 30 || c.MeanSize != 1 ||
		calls["condition"].Calls != 6 || calls["decode"].Calls != 6 {
		t.Errorf("batches %+v", v.Batches)
	}
	var decode *telemetry.StageStats
	for i := range v.Stages {
		if v.Stages[i].Stage == "decode" {
			decode = &v.Stages[i]
		}
	}
	if decode == nil || decode.Samples != 6 || decode.P50MS != 70 || decode.P99MS != 70 || decode.Share < 0.7 {
		t.Fatalf("decode %+v", decode)
	}
	ids := map[string]bool{}
	for _, r := range v.Recommendations {
		ids[r.ID] = true
	}
	if !ids["decode-dominates"] || !ids["no-gpu-telemetry"] {
		t.Errorf("recommendations %+v", v.Recommendations)
	}
}
