package server

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// gpuMonitor samples the GPUs in the background so that /v1/gpu, /metrics
// and the recommendations never wait on the driver.
type gpuMonitor struct {
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

func newGPUMonitor(sampler GPUSampler, reason string, interval time.Duration, log zerolog.Logger) *gpuMonitor {
	return &gpuMonitor{sampler: sampler, reason: reason, interval: interval, log: log}
}

func (m *gpuMonitor) run(ctx context.Context) {
	if m.sampler == nil {
		return
	}
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		m.sample(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (m *gpuMonitor) sample(now time.Time) {
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

func (m *gpuMonitor) view() GPUView {
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
