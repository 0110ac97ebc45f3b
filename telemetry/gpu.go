package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// GPUSampler reads one snapshot of every GPU. The NVML implementation lives
// in gpu_nvml.go; tests use a fake.
type GPUSampler interface {
	Sample() ([]GPUSample, error)
}

// GPUSample is one device's state at one instant.
type GPUSample struct {
	Index             int      `json:"index"`
	Name              string   `json:"name"`
	UUID              string   `json:"uuid,omitempty"`
	UtilizationGPU    uint32   `json:"utilization_gpu_percent"`
	UtilizationMemory uint32   `json:"utilization_memory_percent"`
	MemoryUsedBytes   uint64   `json:"memory_used_bytes"`
	MemoryTotalBytes  uint64   `json:"memory_total_bytes"`
	TemperatureC      uint32   `json:"temperature_celsius"`
	PowerWatts        float64  `json:"power_watts"`
	PowerLimitWatts   float64  `json:"power_limit_watts"`
	SMClockMHz        uint32   `json:"sm_clock_mhz"`
	MemoryClockMHz    uint32   `json:"memory_clock_mhz"`
	ThrottleReasons   []string `json:"throttle_reasons"`
}

// ewmaWeight is the weight of the newest sample in the utilization average.
const ewmaWeight = 0.2

// GPUMonitor samples the GPUs in the background so that /v1/gpu, /metrics
// and the recommendations never wait on the driver.
type GPUMonitor struct {
	sampler  GPUSampler // nil when no GPU telemetry is available
	reason   string     // why sampler is nil
	interval time.Duration
	log      zerolog.Logger

	mu      sync.Mutex
	last    []GPUSample
	lastAt  time.Time
	lastErr error
	// utilization is an EWMA of the mean GPU utilization (0..1), memory the
	// largest fraction of memory in use on any device at the last sample.
	utilization float64
	memory      float64
	samples     int
}

// NewGPUMonitor samples through sampler every interval; with a nil sampler
// it reports reason instead.
func NewGPUMonitor(sampler GPUSampler, reason string, interval time.Duration, log zerolog.Logger) *GPUMonitor {
	return &GPUMonitor{sampler: sampler, reason: reason, interval: interval, log: log}
}

// Run samples until ctx ends.
func (m *GPUMonitor) Run(ctx context.Context) {
	if m.sampler == nil {
		return
	}
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		m.Poll(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Poll takes one sample now.
func (m *GPUMonitor) Poll(now time.Time) {
	devs, err := m.sampler.Sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.lastErr == nil {
			m.log.Warn().Err(err).Msg("GPU sampling failed")
		}
		m.lastErr = err
		return
	}
	m.last, m.lastAt, m.lastErr = devs, now, nil
	if len(devs) == 0 {
		return
	}
	util, mem := 0.0, 0.0
	for _, d := range devs {
		util += float64(d.UtilizationGPU) / 100
		if d.MemoryTotalBytes > 0 {
			mem = max(mem, float64(d.MemoryUsedBytes)/float64(d.MemoryTotalBytes))
		}
	}
	util /= float64(len(devs))
	if m.samples == 0 {
		m.utilization = util
	} else {
		m.utilization = ewmaWeight*util + (1-ewmaWeight)*m.utilization
	}
	m.memory = mem
	m.samples++
}

// Reason says why there is no GPU telemetry ("" when there is).
func (m *GPUMonitor) Reason() string { return m.reason }

// GPUView is the body of /v1/gpu.
type GPUView struct {
	Available   bool        `json:"available"`
	Reason      string      `json:"reason,omitempty"`
	SampledAt   *time.Time  `json:"sampled_at,omitempty"`
	Error       string      `json:"error,omitempty"`
	Utilization float64     `json:"utilization_avg"`      // EWMA over samples, 0..1
	MemoryUsed  float64     `json:"memory_used_fraction"` // busiest device, last sample
	Devices     []GPUSample `json:"devices"`
}

// View is the last sample, for /v1/gpu.
func (m *GPUMonitor) View() GPUView {
	if m.sampler == nil {
		return GPUView{Reason: m.reason, Devices: []GPUSample{}}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := GPUView{Available: true, Utilization: m.utilization, MemoryUsed: m.memory,
		Devices: append([]GPUSample{}, m.last...)}
	if !m.lastAt.IsZero() {
		at := m.lastAt
		v.SampledAt = &at
	}
	if m.lastErr != nil {
		v.Error = m.lastErr.Error()
	}
	return v
}
