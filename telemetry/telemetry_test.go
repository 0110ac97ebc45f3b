package telemetry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/rs/zerolog"
)

// fakeGPU is a GPU sampler with fixed readings.
type fakeGPU struct {
	samples []GPUSample
	err     error
}

func (f *fakeGPU) Sample() ([]GPUSample, error) { return f.samples, f.err }

func TestGPUSamplingErrorIsReportedNotFatal(t *testing.T) {
	g := &fakeGPU{err: errors.New("GPU is lost")}
	m := NewGPUMonitor(g, "", time.Second, zerolog.Nop())
	m.Poll(time.Now())
	if v := m.View(); !v.Available || v.Error != "GPU is lost" {
		t.Fatalf("%+v", v)
	}
}

func TestNVMLSamplerReadsEveryMetric(t *testing.T) {
	dev := &mock.Device{
		GetNameFunc:               func() (string, nvml.Return) { return "NVIDIA A100", nvml.SUCCESS },
		GetUUIDFunc:               func() (string, nvml.Return) { return "GPU-1234", nvml.SUCCESS },
		GetUtilizationRatesFunc:   func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 87, Memory: 40}, nvml.SUCCESS },
		GetMemoryInfoFunc:         func() (nvml.Memory, nvml.Return) { return nvml.Memory{Total: 80 << 30, Used: 60 << 30}, nvml.SUCCESS },
		GetTemperatureFunc:        func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 71, nvml.SUCCESS },
		GetPowerUsageFunc:         func() (uint32, nvml.Return) { return 312500, nvml.SUCCESS },
		GetEnforcedPowerLimitFunc: func() (uint32, nvml.Return) { return 400000, nvml.SUCCESS },
		GetClockInfoFunc: func(c nvml.ClockType) (uint32, nvml.Return) {
			if c == nvml.CLOCK_SM {
				return 1410, nvml.SUCCESS
			}
			return 1215, nvml.SUCCESS
		},
		GetCurrentClocksEventReasonsFunc: func() (uint64, nvml.Return) {
			return nvml.ClocksEventReasonGpuIdle | nvml.ClocksEventReasonSwPowerCap | nvml.ClocksThrottleReasonHwThermalSlowdown, nvml.SUCCESS
		},
	}
	// A second board that supports nothing but its name.
	bare := &mock.Device{
		GetNameFunc:                      func() (string, nvml.Return) { return "old", nvml.SUCCESS },
		GetUUIDFunc:                      func() (string, nvml.Return) { return "", nvml.ERROR_NOT_SUPPORTED },
		GetUtilizationRatesFunc:          func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED },
		GetMemoryInfoFunc:                func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_NOT_SUPPORTED },
		GetTemperatureFunc:               func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED },
		GetPowerUsageFunc:                func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED },
		GetEnforcedPowerLimitFunc:        func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED },
		GetClockInfoFunc:                 func(nvml.ClockType) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED },
		GetCurrentClocksEventReasonsFunc: func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED },
	}
	devices := []nvml.Device{dev, bare}
	shut := false
	lib := &mock.Interface{
		InitFunc:           func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:       func() nvml.Return { shut = true; return nvml.SUCCESS },
		DeviceGetCountFunc: func() (int, nvml.Return) { return len(devices), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			return devices[i], nvml.SUCCESS
		},
	}
	n, err := OpenNVML(lib)
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d devices", len(got))
	}
	a := got[0]
	if a.Name != "NVIDIA A100" || a.UUID != "GPU-1234" || a.UtilizationGPU != 87 || a.UtilizationMemory != 40 ||
		a.MemoryUsedBytes != 60<<30 || a.MemoryTotalBytes != 80<<30 || a.TemperatureC != 71 ||
		a.PowerWatts != 312.5 || a.PowerLimitWatts != 400 || a.SMClockMHz != 1410 || a.MemoryClockMHz != 1215 {
		t.Errorf("%+v", a)
	}
	if strings.Join(a.ThrottleReasons, ",") != "sw_power_cap,hw_thermal_slowdown" {
		t.Errorf("throttle reasons %v (idle is not throttling)", a.ThrottleReasons)
	}
	if b := got[1]; b.Name != "old" || b.Index != 1 || b.UtilizationGPU != 0 || len(b.ThrottleReasons) != 0 {
		t.Errorf("unsupported readings must stay zero: %+v", b)
	}
	if err := n.Close(); err != nil || !shut {
		t.Errorf("close: %v %v", err, shut)
	}
}

func TestOpenNVMLFailsCleanlyWithoutADriver(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	if _, err := OpenNVML(lib); err == nil || !strings.Contains(err.Error(), "ERROR_LIBRARY_NOT_FOUND") {
		t.Fatalf("%v", err)
	}
}

func TestLabelValuesAreEscaped(t *testing.T) {
	if got := labels("a", "x\"y\\z\nw"); got != `{a="x\"y\\z\nw"}` {
		t.Errorf("%s", got)
	}
}

func TestRecommendationsFollowTheMeasurements(t *testing.T) {
	stage := func(name string, share float64) StageStats {
		return StageStats{Stage: name, Samples: 10, Share: share}
	}
	cases := []struct {
		name  string
		view  StatsView
		posts uint64
		want  []string
	}{
		{"quiet and healthy", StatsView{GPU: GPUStats{Available: true, Utilization: 0.9}, Queue: QueueStats{MaxBatch: 4}}, 0, nil},
		{"sampling bound", StatsView{GPU: GPUStats{Available: true, Utilization: 0.9}, Stages: []StageStats{stage("sample", 0.8)}}, 0, []string{"sampling-dominates"}},
		{"too few samples say nothing", StatsView{GPU: GPUStats{Available: true, Utilization: 0.9},
			Stages: []StageStats{{Stage: "decode", Samples: 2, Share: 0.9}}}, 0, nil},
		{"idle GPU with a queue", StatsView{GPU: GPUStats{Available: true, Utilization: 0.2}, Queue: QueueStats{Depth: 5, MaxBatch: 4}}, 0,
			[]string{"gpu-underutilized"}},
		{"full batches with a queue", StatsView{GPU: GPUStats{Available: true, Utilization: 0.95}, Queue: QueueStats{Depth: 5, MaxBatch: 4},
			Jobs: JobStats{MeanBatchSize: 4}}, 0, []string{"batches-full"}},
		{"memory and throttling", StatsView{GPU: GPUStats{Available: true, Utilization: 0.9, MemoryUsed: 0.97,
			ThrottleReasons: []string{"hw_slowdown", "hw_slowdown"}}}, 0, []string{"gpu-memory-high", "gpu-throttled"}},
		{"shedding", StatsView{GPU: GPUStats{Available: true, Utilization: 0.9}, Shed: map[string]uint64{"queue_full": 10}}, 100,
			[]string{"shedding"}},
		{"no telemetry", StatsView{}, 0, []string{"no-gpu-telemetry"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, r := range recommend(c.view, c.posts, "no NVML") {
				got = append(got, r.ID)
				if r.Message == "" {
					t.Errorf("%s has no message", r.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestWindowQuantiles(t *testing.T) {
	var w window
	for i := 1; i <= 100; i++ {
		w.add(float64(i))
	}
	mean, q := w.quantiles(0.5, 0.9, 0.99, 1)
	if mean != 50.5 || q[0] != 50 || q[1] != 90 || q[2] != 99 || q[3] != 100 {
		t.Errorf("mean %v quantiles %v", mean, q)
	}
	for i := range windowSize {
		w.add(float64(1000 + i))
	}
	if _, q := w.quantiles(0); q[0] != 1000 || len(w.samples) != windowSize {
		t.Errorf("window did not roll over: %v", q)
	}
}

func TestDecodeAdviceDependsOnTheDecodeModeInUse(t *testing.T) {
	view := func(dense float64) StatsView {
		return StatsView{GPU: GPUStats{Available: true, Utilization: 0.9}, Jobs: JobStats{DenseDecodeShare: dense},
			Stages: []StageStats{{Stage: "decode", Samples: 10, Share: 0.6}}}
	}
	for _, c := range []struct {
		dense float64
		want  string
	}{{0.9, "use decode=coarse_to_fine"}, {0.1, "lower the resolution"}} {
		recs := recommend(view(c.dense), 0, "")
		if len(recs) != 1 || recs[0].ID != "decode-dominates" || !strings.Contains(recs[0].Message, c.want) {
			t.Errorf("dense share %v: %+v", c.dense, recs)
		}
	}
}
