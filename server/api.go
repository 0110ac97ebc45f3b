package server

import (
	"context"
	"time"
)

// Preprocessor decodes, validates and normalizes one uploaded picture for a
// model. It runs in the request path, before admission, because the hash of
// its output is what the cache and the coalescing of identical requests are
// keyed on.
type Preprocessor interface {
	Preprocess(ctx context.Context, model string, image []byte) (*Prepared, error)
}

// A Preprocessor refuses pictures by wrapping the pipeline's errors
// (pipeline.ErrUnsupportedFormat, ErrTooManyPixels, ErrNoObject,
// ErrCorruptImage); the server maps them to problems.

// Prepared is a preprocessed picture.
type Prepared struct {
	// Hash is the SHA-256 of the preprocessed pixels: two uploads that differ
	// only in encoding produce the same hash and share one result.
	Hash          [32]byte
	Format        string // source format: png, jpeg or webp
	Width, Height int    // source size in pixels
	Warnings      []string
	// Input is the preprocessor's own representation of the picture; the
	// server hands it back to the Generator untouched.
	Input any
}

// described is p without its Input: what a finished job's status still
// needs, without holding the (large) preprocessed tensor for as long as the
// status is kept.
func (p *Prepared) described() *Prepared {
	if p == nil || p.Input == nil {
		return p
	}
	q := *p
	q.Input = nil
	return &q
}

// Generator turns prepared pictures into meshes, one batch per call. Every
// job of a batch uses the same model. Generate returns one Output per job, in
// order. A job whose Context is done should be dropped and reported with
// that context's error while the others go on; a Generator that cannot drop
// one job from a running batch may finish it instead (the server keeps the
// result in its cache). ctx is cancelled only when the server gives up on the
// whole batch (shutdown past the drain timeout).
type Generator interface {
	Generate(ctx context.Context, batch []Job) []Output
}

// ParamValidator is implemented by a Generator whose models have rules of
// their own beyond the server's Limits (a consistency sampler's step limit,
// say); its field errors are reported along with the server's, before a job
// is admitted.
type ParamValidator interface {
	ValidateParams(p Params) []FieldError
}

// Job is one generation inside a batch.
type Job struct {
	ID string // names the job in logs
	// Context is done when this job alone is cancelled or misses its deadline.
	// It is carried per job because a batch outlives its individual members.
	Context  context.Context
	Input    *Prepared
	Params   Params
	Formats  []string       // every format the server wants bytes for
	Progress func(Progress) // safe to call from any goroutine
}

// Progress is a job's position inside the pipeline.
type Progress struct {
	Stage string `json:"stage"`
	Step  int    `json:"step,omitempty"`
	Steps int    `json:"steps,omitempty"`
}

// Output is the result of one job.
type Output struct {
	Meshes   map[string][]byte // format → file bytes
	Stages   []StageTiming     // in pipeline order
	Vertices int
	Faces    int
	Warnings []string
	Err      error
}

// StageTiming is the wall time one pipeline stage took for one job.
type StageTiming struct {
	Stage    string
	Duration time.Duration
}

// Model describes one model set the server can run.
type Model struct {
	Name        string
	Family      string
	Description string
	Backend     string
	// Fingerprint changes whenever the engines or the backend change; it is
	// part of the cache key so that a result store kept across upgrades never
	// answers with a mesh another model produced.
	Fingerprint string
	Defaults    Defaults
	MaxBatch    int // the engines' largest batch; 0 means no limit of its own
}

// Defaults are the parameters a request gets for the fields it leaves out.
type Defaults struct {
	Steps      int
	Guidance   float64
	Resolution int
	Faces      int
	Decode     string
}

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
