// Package telemetry owns what hy3d measures about itself: the Prometheus
// metrics (counters, histograms and recent-sample windows, rendered in the
// text exposition format), the GPU monitor that samples NVML in the
// background (behind a small GPUSampler interface, tested with fakes), and
// the /v1/stats view with the tuning advice derived from the measurements.
// It hears the job engine through jobs.Observer and knows nothing of HTTP
// beyond the request counts the server reports.
package telemetry

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hy3d/hy3d/jobs"
)

// Histogram bucket bounds, in seconds for latencies.
var (
	latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320}
	httpBuckets    = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300}
)

// windowSize is how many recent samples per stage the percentiles of
// /v1/stats are computed over.
const windowSize = 512

// throughputWindow is the span /v1/stats measures throughput over.
const throughputWindow = 5 * time.Minute

// Metrics holds every counter, histogram and recent-sample window the server
// exposes on /metrics and summarizes on /v1/stats. One mutex guards all of
// it: updates happen a few times per request or pipeline step, far below the
// rate where it would contend.
type Metrics struct {
	mu sync.Mutex

	httpRequests map[[3]string]uint64 // route, method, code
	httpDuration map[string]*histogram

	stages      map[string]*histogram
	stageWindow map[string]*window
	stageOrder  []string // first-seen order, which is pipeline order
	jobDuration *histogram
	queueWait   *histogram
	batchSizes  []float64              // the buckets of every graph's batch sizes
	batches     map[string]*batchCalls // graph (condition, dit, decode) → its calls

	outcomes  map[string]uint64 // succeeded, failed, cancelled
	decodes   map[string]uint64 // succeeded jobs by decode mode
	cache     map[string]uint64 // memory_hit, disk_hit, miss
	coalesced uint64
	shed      map[string]uint64 // rate_limited, queue_full, busy, draining

	completions []time.Time // finish times inside throughputWindow
}

// batchCalls counts the calls of one graph by the number of jobs they ran.
type batchCalls struct {
	sizes  *histogram
	calls  uint64
	jobs   uint64
	bySize map[int]uint64
}

// NewMetrics makes the metrics of a server whose batches hold at most
// maxBatch jobs.
func NewMetrics(maxBatch int) *Metrics {
	sizes := make([]float64, 0, maxBatch)
	for b := 1; b <= maxBatch; b *= 2 {
		sizes = append(sizes, float64(b))
	}
	if len(sizes) == 0 || sizes[len(sizes)-1] != float64(maxBatch) {
		sizes = append(sizes, float64(maxBatch))
	}
	return &Metrics{
		httpRequests: map[[3]string]uint64{},
		httpDuration: map[string]*histogram{},
		stages:       map[string]*histogram{},
		stageWindow:  map[string]*window{},
		jobDuration:  newHistogram(latencyBuckets),
		queueWait:    newHistogram(latencyBuckets),
		batchSizes:   sizes,
		batches:      map[string]*batchCalls{},
		outcomes:     map[string]uint64{},
		decodes:      map[string]uint64{},
		cache:        map[string]uint64{},
		shed:         map[string]uint64{},
	}
}

// Request counts one HTTP request by route, method and status.
func (m *Metrics) Request(route, method string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.httpRequests[[3]string{route, method, strconv.Itoa(code)}]++
	h := m.httpDuration[route]
	if h == nil {
		h = newHistogram(httpBuckets)
		m.httpDuration[route] = h
	}
	h.observe(d.Seconds())
}

// Stage records one stage's duration for one job.
func (m *Metrics) Stage(name string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.stages[name]
	if h == nil {
		h = newHistogram(latencyBuckets)
		m.stages[name] = h
		m.stageWindow[name] = &window{}
		m.stageOrder = append(m.stageOrder, name)
	}
	h.observe(d.Seconds())
	m.stageWindow[name].add(d.Seconds())
}

// Batch counts one call of a graph over size jobs.
func (m *Metrics) Batch(graph string, size int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.batches[graph]
	if b == nil {
		b = &batchCalls{sizes: newHistogram(m.batchSizes), bySize: map[int]uint64{}}
		m.batches[graph] = b
	}
	b.sizes.observe(float64(size))
	b.calls++
	b.jobs += uint64(size)
	b.bySize[size]++
}

// Finished counts a job's end.
func (m *Metrics) Finished(outcome, decode string, queued, ran time.Duration, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[outcome]++
	if outcome == string(jobs.StateSucceeded) {
		m.decodes[decode]++
		m.queueWait.observe(queued.Seconds())
		m.jobDuration.observe(ran.Seconds())
		m.completions = append(m.completions, now)
		m.trimCompletions(now)
	}
}

func (m *Metrics) trimCompletions(now time.Time) {
	i := sort.Search(len(m.completions), func(i int) bool { return now.Sub(m.completions[i]) < throughputWindow })
	m.completions = append(m.completions[:0], m.completions[i:]...)
}

// CacheLookup counts a result lookup by the tier that answered.
func (m *Metrics) CacheLookup(tier string) { m.add(&m.cache, tier) }

// Shed counts a refusal by its reason.
func (m *Metrics) Shed(reason string) { m.add(&m.shed, reason) }

// Coalesced counts a request that joined an identical job in flight.
func (m *Metrics) Coalesced() {
	m.mu.Lock()
	m.coalesced++
	m.mu.Unlock()
}

func (m *Metrics) add(counters *map[string]uint64, label string) {
	m.mu.Lock()
	(*counters)[label]++
	m.mu.Unlock()
}

// Gauge is a value read at scrape time; Counter marks one that only grows
// but is owned elsewhere (the result store's evictions).
type Gauge struct {
	Name, Help string
	Labels     []string // alternating label name, value
	Value      float64
	Counter    bool
}

// Write renders every metric in the Prometheus text exposition format
// (version 0.0.4); gauges come from the caller because their owners
// (scheduler, GPU monitor) are read at scrape time.
func (m *Metrics) Write(w io.Writer, gauges []Gauge) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	pw := &promWriter{w: w}

	pw.header("hy3d_http_requests_total", "counter", "HTTP requests by route, method and status code.")
	keys := make([][3]string, 0, len(m.httpRequests))
	for k := range m.httpRequests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return strings.Join(keys[i][:], "\x00") < strings.Join(keys[j][:], "\x00")
	})
	for _, k := range keys {
		pw.sample("hy3d_http_requests_total", labels("route", k[0], "method", k[1], "code", k[2]), float64(m.httpRequests[k]))
	}
	pw.histogramVec("hy3d_http_request_duration_seconds", "HTTP request latency by route.", "route", m.httpDuration)
	pw.histogramVec("hy3d_stage_duration_seconds", "Pipeline stage latency per job.", "stage", m.stages)
	pw.histogram("hy3d_job_queue_wait_seconds", "Time a job waited in the queue before running.", m.queueWait)
	pw.histogram("hy3d_job_duration_seconds", "Time a job spent running, from its start to its result.", m.jobDuration)
	if len(m.batches) > 0 {
		hs := map[string]*histogram{}
		for g, b := range m.batches {
			hs[g] = b.sizes
		}
		pw.histogramVec("hy3d_batch_size", "Jobs per call of each graph (condition: jobs started together; dit: jobs in one sampling step; decode: jobs decoded together).", "graph", hs)
	}
	pw.counterVec("hy3d_jobs_total", "Finished jobs by outcome.", "outcome", m.outcomes)
	pw.counterVec("hy3d_cache_lookups_total", "Result cache lookups by result (memory_hit, disk_hit, miss).", "result", m.cache)
	pw.header("hy3d_coalesced_total", "counter", "Requests that joined an identical job already in flight.")
	pw.sample("hy3d_coalesced_total", "", float64(m.coalesced))
	pw.counterVec("hy3d_shed_total", "Requests refused to protect the server, by reason.", "reason", m.shed)

	seen := map[string]bool{}
	for _, g := range gauges {
		if !seen[g.Name] {
			kind := "gauge"
			if g.Counter {
				kind = "counter"
			}
			pw.header(g.Name, kind, g.Help)
			seen[g.Name] = true
		}
		pw.sample(g.Name, labels(g.Labels...), g.Value)
	}
	return pw.err
}

type promWriter struct {
	w   io.Writer
	err error
}

func (p *promWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *promWriter) header(name, kind, help string) {
	p.printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

func (p *promWriter) sample(name, labels string, v float64) {
	p.printf("%s%s %s\n", name, labels, formatFloat(v))
}

func (p *promWriter) counterVec(name, help, label string, m map[string]uint64) {
	p.header(name, "counter", help)
	for _, k := range sortedKeys(m) {
		p.sample(name, labels(label, k), float64(m[k]))
	}
}

func (p *promWriter) histogramVec(name, help, label string, hs map[string]*histogram) {
	p.header(name, "histogram", help)
	for _, k := range sortedKeys(hs) {
		p.histogramSamples(name, label, k, hs[k])
	}
}

func (p *promWriter) histogram(name, help string, h *histogram) {
	p.header(name, "histogram", help)
	p.histogramSamples(name, "", "", h)
}

func (p *promWriter) histogramSamples(name, label, value string, h *histogram) {
	base := []string{}
	if label != "" {
		base = []string{label, value}
	}
	cum := uint64(0)
	for i, b := range h.bounds {
		cum += h.counts[i]
		p.sample(name+"_bucket", labels(append(base, "le", formatFloat(b))...), float64(cum))
	}
	p.sample(name+"_bucket", labels(append(base, "le", "+Inf")...), float64(h.count))
	p.sample(name+"_sum", labels(base...), h.sum)
	p.sample(name+"_count", labels(base...), float64(h.count))
}

func labels(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabel(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// histogram counts observations into fixed buckets; its owner locks it.
type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, not cumulative
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *histogram) observe(v float64) {
	h.sum += v
	h.count++
	if i := sort.SearchFloat64s(h.bounds, v); i < len(h.bounds) {
		h.counts[i]++
	}
}

// window keeps the most recent windowSize samples for percentiles.
type window struct {
	samples []float64
	next    int
}

func (w *window) add(v float64) {
	if len(w.samples) < windowSize {
		w.samples = append(w.samples, v)
		return
	}
	w.samples[w.next] = v
	w.next = (w.next + 1) % windowSize
}

// quantiles returns the mean and the requested quantiles (nearest rank).
func (w *window) quantiles(qs ...float64) (mean float64, out []float64) {
	if len(w.samples) == 0 {
		return 0, make([]float64, len(qs))
	}
	s := append([]float64(nil), w.samples...)
	sort.Float64s(s)
	for _, v := range s {
		mean += v
	}
	mean /= float64(len(s))
	for _, q := range qs {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		out = append(out, s[i])
	}
	return mean, out
}
