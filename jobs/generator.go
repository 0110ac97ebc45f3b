package jobs

import (
	"context"

	"github.com/hy3d/hy3d/results"
)

// Generator runs the stages of jobs for the engine, which decides what runs
// together and when. Every call concerns jobs of one model. A job whose
// Context is done should fail with that context's error while the others go
// on. ctx is cancelled only when the engine gives up on everything
// (shutdown past the drain timeout).
type Generator interface {
	// Start prepares jobs that arrived together for sampling (the
	// conditioner, batched over them) and returns each job's sampling state,
	// or the error that ends it.
	Start(ctx context.Context, jobs []Job) ([]Sampling, []error)
	// Step advances every state by one sampling step, in shared DiT calls.
	// On error no state advanced, and the engine fails their jobs.
	Step(ctx context.Context, states []Sampling) error
	// Finish runs the stages after sampling (decode, surface, cleanup,
	// export) for one job whose sampling is done. It may run concurrently
	// with Step and Start.
	Finish(ctx context.Context, job Job, s Sampling) Output
}

// Sampling is one job's position in the sampling loop; the Generator that
// made it owns its contents.
type Sampling interface {
	// Done reports whether every sampling step has run.
	Done() bool
}

// Job is one generation as the Generator sees it.
type Job struct {
	ID string // names the job in logs
	// Context is done when this job alone is cancelled or misses its deadline.
	Context  context.Context
	Input    *Prepared
	Params   Params
	Formats  []string       // every format the engine wants bytes for
	Progress func(Progress) // safe to call from any goroutine
	// Handoff is what the Finish of the job's previous model handed on
	// (Output.Handoff.State); nil when this model runs the job from its
	// input.
	Handoff any
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
	Stages   []results.StageTiming
	Vertices int
	Faces    int
	Warnings []string
	Err      error
	// Handoff, when set, passes the job on to another model's step loop
	// instead of ending it: a textured generation's mesh goes on from the
	// shape model to the paint model. The Stages and Warnings reported so
	// far join the job's final result.
	Handoff *Handoff
}

// Handoff passes a running job on to the step loop of another model (or
// again to the same one, for a job whose next phase needs its loop).
type Handoff struct {
	Model string // the model whose step loop runs the job next
	State any    // given back to the Generator as Job.Handoff
}

// Prepared is a preprocessed picture.
type Prepared struct {
	// Hash is the SHA-256 of the preprocessed pixels: two uploads that differ
	// only in encoding produce the same hash and share one result.
	Hash          [32]byte
	Format        string // source format: png, jpeg or webp
	Width, Height int    // source size in pixels
	Warnings      []string
	// Input is the preprocessor's own representation of the picture; the
	// engine hands it to the Generator untouched.
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

// Model kinds: a shape model makes meshes from pictures; a paint model
// textures meshes.
const (
	KindShape = "shape"
	KindPaint = "paint"
)

// Model describes one model set the engine can run.
type Model struct {
	Name        string
	Kind        string // KindShape (the default when empty) or KindPaint
	Family      string
	Description string
	Backend     string
	// Fingerprint changes whenever the engines or the backend change; it is
	// part of the cache keys so that a result store kept across upgrades
	// never answers with a mesh another model produced.
	Fingerprint string
	Defaults    Defaults
	MaxBatch    int // the engines' largest batch of jobs; 0 means no limit of its own
}

// IsPaint reports whether m textures meshes.
func (m *Model) IsPaint() bool { return m.Kind == KindPaint }

// graphs names, for the Observer, the calls of m's step loop: the one that
// starts jobs, the one that steps them and the one that finishes a job.
func (m *Model) graphs() (start, step, finish string) {
	if m.IsPaint() {
		return "paint_condition", "paint_unet", "paint_decode"
	}
	return "condition", "dit", "decode"
}

// Defaults are the parameters a request gets for the fields it leaves out.
type Defaults struct {
	Steps      int
	Guidance   float64
	Resolution int
	Faces      int
	Decode     string
}
