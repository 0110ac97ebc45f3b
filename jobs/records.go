package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/hy3d/hy3d/results"
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

// Terminal reports whether s is an end state.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// task is one unit of work for the generator. Identical requests share one
// task; each request holds its own generation that points at it. Every
// mutable field is guarded by the engine's mutex.
type task struct {
	id         string // for logs
	key        results.Key
	model      *Model
	params     Params
	input      *Prepared
	preprocess time.Duration
	priority   int    // priorityRank of the most urgent generation attached
	owner      string // the client whose request created the job
	ctx        context.Context
	cancel     context.CancelCauseFunc

	state    State
	progress Progress
	enqueued time.Time
	started  time.Time
	finished time.Time
	refs     int           // generations still attached
	gens     []*generation // every generation ever attached
	uploads  []results.Key // upload keys that find this task while it is in flight
	summary  *ResultSummary
	pinned   *results.Result // kept in memory only when the store failed to keep it
	failure  *Failure
	changed  chan struct{} // closed and replaced on every change

	// remote marks a task the broker holds: this engine mirrors the state
	// a worker (perhaps on another machine) records, as of revision.
	remote   bool
	revision uint64
	// delivery is set on a task a step loop took from the broker: the
	// worker's copy, which reports to the broker rather than to watchers.
	delivery Delivery

	// handoff is what the generator handed on to the next model's loop,
	// until that loop starts the job; carried keeps the stages and warnings
	// of the phases the job already ran.
	handoff any
	carried Output
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
	upload    results.Key // of the request's upload; zero when it had none
	created   time.Time
	cached    bool
	coalesced bool

	// own is set when this generation left its task before the task ended
	// (client cancel or deadline); it then wins over the task's state.
	own      State
	failure  *Failure
	finished time.Time
	timer    *time.Timer
}

func (g *generation) state() State {
	if g.own != "" {
		return g.own
	}
	return g.task.state
}

// ResultSummary is what a status needs to know about a result: no bytes.
type ResultSummary struct {
	Vertices, Faces int
	Formats         map[string]FormatSummary
	Stages          []results.StageTiming
	Warnings        []string
}

// FormatSummary describes one format of a result.
type FormatSummary struct {
	Bytes int
	ETag  string
}

func summarize(r *results.Result) *ResultSummary {
	s := &ResultSummary{Vertices: r.Vertices, Faces: r.Faces, Formats: map[string]FormatSummary{},
		Stages: r.Stages, Warnings: r.Warnings}
	for f, m := range r.Meshes {
		s.Formats[f] = FormatSummary{Bytes: len(m.Data), ETag: m.ETag()}
	}
	return s
}

// Snapshot is a generation's state at one instant.
type Snapshot struct {
	ID     string
	State  State
	Params Params
	// Created, Started and Finished are zero until they happen.
	Created, Started, Finished time.Time
	QueuePosition              int // 1-based while queued
	EstimatedWait              time.Duration
	Progress                   *Progress // while running
	Cached                     bool      // answered from the store on arrival
	Coalesced                  bool      // joined an identical job in flight
	Input                      *Prepared // without its tensor
	Result                     *ResultSummary
	Failure                    *Failure
}

// NewID returns a random UUID (version 4), the shape Hunyuan3D's clients expect.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // cannot fail: since Go 1.24 it crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
