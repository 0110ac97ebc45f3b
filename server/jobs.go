package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

// State is where a generation is in its life.
type State string

// States. Succeeded, failed and cancelled are terminal.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

func (s State) terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// task is one unit of work for the generator. Identical requests share one
// task; each request holds its own generation that points at it. Every
// mutable field is guarded by the scheduler's mutex.
type task struct {
	id         string // for logs
	key        Key
	model      *Model
	params     Params
	input      *Prepared
	preprocess time.Duration
	priority   int // priorityRank of the most urgent generation attached
	ctx        context.Context
	cancel     context.CancelCauseFunc

	state    State
	progress Progress
	enqueued time.Time
	started  time.Time
	finished time.Time
	refs     int           // generations still attached
	gens     []*generation // every generation ever attached
	uploads  []Key         // upload keys that find this task while it is in flight
	summary  *resultSummary
	pinned   *Result // kept in memory only when the store failed to keep it
	failure  *Problem
	changed  chan struct{} // closed and replaced on every change
}

func (t *task) notify() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// generation is what one client request created and what its id names.
type generation struct {
	id        string
	task      *task
	params    Params
	client    string
	upload    Key // of the request's upload; zero when it had none
	created   time.Time
	deadline  time.Time
	cached    bool
	coalesced bool

	// own is set when this generation left its task before the task ended
	// (client cancel or deadline); it then wins over the task's state.
	own      State
	failure  *Problem
	finished time.Time
	timer    *time.Timer
}

func (g *generation) state() State {
	if g.own != "" {
		return g.own
	}
	return g.task.state
}

// resultSummary is what a status needs to know about a result: no bytes.
type resultSummary struct {
	vertices, faces int
	formats         map[string]formatSummary
	stages          []StageTiming
	warnings        []string
}

type formatSummary struct {
	bytes int
	etag  string
}

func summarize(r *Result) *resultSummary {
	s := &resultSummary{vertices: r.Vertices, faces: r.Faces, formats: map[string]formatSummary{},
		stages: r.Stages, warnings: r.Warnings}
	for f, m := range r.Meshes {
		s.formats[f] = formatSummary{bytes: len(m.Data), etag: m.ETag()}
	}
	return s
}

// Status is the JSON view of a generation.
type Status struct {
	ID                   string         `json:"id"`
	Status               State          `json:"status"`
	Params               Params         `json:"params"`
	CreatedAt            time.Time      `json:"created_at"`
	StartedAt            *time.Time     `json:"started_at,omitempty"`
	FinishedAt           *time.Time     `json:"finished_at,omitempty"`
	QueuePosition        int            `json:"queue_position,omitempty"`
	EstimatedWaitSeconds float64        `json:"estimated_wait_seconds,omitempty"`
	Progress             *Progress      `json:"progress,omitempty"`
	Stages               []StageStatus  `json:"stages,omitempty"`
	Cached               bool           `json:"cached"`
	Coalesced            bool           `json:"coalesced"`
	Input                *InputStatus   `json:"input,omitempty"`
	Result               *ResultStatus  `json:"result,omitempty"`
	Error                *StatusError   `json:"error,omitempty"`
	Warnings             []string       `json:"warnings,omitempty"`
	Links                map[string]any `json:"links"`
}

// StageStatus is one stage's duration.
type StageStatus struct {
	Stage        string  `json:"stage"`
	Milliseconds float64 `json:"ms"`
}

// InputStatus describes the uploaded picture.
type InputStatus struct {
	Format string `json:"format"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	SHA256 string `json:"sha256"` // of the preprocessed pixels
}

// ResultStatus describes a finished mesh.
type ResultStatus struct {
	Vertices int                     `json:"vertices"`
	Faces    int                     `json:"faces"`
	Formats  map[string]FormatStatus `json:"formats"`
}

// FormatStatus is one downloadable format of a result.
type FormatStatus struct {
	URL       string `json:"url"`
	MediaType string `json:"media_type"`
	Bytes     int    `json:"bytes"`
	ETag      string `json:"etag"`
}

// StatusError says why a generation failed or was cancelled.
type StatusError struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"` // the HTTP status a synchronous request gets for it
	Detail string `json:"detail,omitempty"`
}

// Failures a generation can end with, beyond the generator's own errors.
func failureCancelled() *Problem {
	return newProblem(http.StatusConflict, "cancelled", "Generation cancelled", "cancelled by the client")
}

func failureDeadline(d time.Duration) *Problem {
	return newProblem(http.StatusGatewayTimeout, "deadline-exceeded", "Deadline exceeded",
		fmt.Sprintf("the generation did not finish within %s", d))
}

func failureShutdown(started bool) *Problem {
	detail := "the server shut down before the job ran"
	if started {
		detail = "the server shut down while the job ran"
	}
	return newProblem(http.StatusServiceUnavailable, "shutdown", "Server shut down", detail)
}

func failureGenerator(err error) *Problem {
	p := newProblem(http.StatusInternalServerError, "generation-failed", "Generation failed", err.Error())
	p.cause = err
	return p
}

// newID returns a random UUID (version 4), the shape Hunyuan3D's clients expect.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // cannot fail: since Go 1.24 it crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
