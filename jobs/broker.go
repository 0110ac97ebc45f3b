package jobs

import (
	"context"
	"time"

	"github.com/hy3d/hy3d/results"
)

// Broker keeps accepted jobs and the records of generations outside this
// process: a durable queue that the step loops of any number of engines
// (workers) take jobs from, and records that let any engine (gateway)
// answer for any generation, after a restart too. With a Broker the engine
// keeps no queue of its own: Submit returns only once the broker has stored
// the job, and the step loop takes as many jobs as its batch has room for.
// Without one (Config.Broker nil) the queue lives in the engine's memory.
//
// Calls may block on the network; the engine never makes them under its
// lock. Listen's callbacks come from the broker's goroutines.
type Broker interface {
	// Enqueue stores a new job under spec.Key, or finds the task already
	// stored there: unfinished (the request joins it, which the broker
	// counts), or succeeded with its result still to be had (returned).
	// A task that ended otherwise, or whose result is gone, is queued anew.
	Enqueue(ctx context.Context, spec Spec) (Enqueued, error)
	// SaveGeneration stores a generation's record.
	SaveGeneration(ctx context.Context, g GenerationRecord) error
	// LoadGeneration returns a stored generation and its task's record; it
	// fails with an error wrapping ErrNotFound when neither is stored.
	LoadGeneration(ctx context.Context, id string) (GenerationRecord, TaskRecord, error)
	// Leave records that a generation ended ahead of its task (cancelled,
	// past its deadline, abandoned). It reports false when the generation
	// had already ended. The last generation to leave a task cancels it.
	Leave(ctx context.Context, g GenerationRecord) (bool, error)
	// Result fetches a result kept where every machine finds it; nil when
	// there is none (or results are kept on this machine only).
	Result(ctx context.Context, key results.Key) (*results.Result, error)
	// Position is a queued task's place in the queue (1-based) as last
	// seen, without blocking; 0 when unknown.
	Position(key results.Key) int
	// Depth is the number of queued jobs as last seen, counting the ones
	// this process stored since, without blocking.
	Depth() int
	// Listen registers the engine's callbacks; the engine calls it once,
	// from Start.
	Listen(l Listener)
	// Take claims up to n queued jobs of a model, the most urgent first.
	// With wait it blocks until there is at least one or ctx ends. The jobs
	// it claimed before an error come back with the error: they are the
	// caller's to run.
	Take(ctx context.Context, model string, n int, wait bool) ([]Delivery, error)
}

// Listener is how a Broker tells the engine what happened elsewhere.
type Listener struct {
	// Task hears every change of a task's record.
	Task func(TaskRecord)
	// Progress hears a running task's position in the pipeline.
	Progress func(key results.Key, p Progress)
	// Queue hears that queued tasks moved (their Position changed).
	Queue func()
}

// Spec is a job as the broker stores it: everything a worker on another
// machine needs to run it.
type Spec struct {
	Key         results.Key
	ID          string // the task's id, for logs
	Model       string
	Fingerprint string // of the model that computed Key
	Params      Params
	// Input describes the preprocessed picture; its Input (the tensor) is
	// handed to a worker of this process directly, others preprocess Image
	// again.
	Input      *Prepared
	Image      []byte // the upload as it arrived
	Preprocess time.Duration
	Enqueued   time.Time
	Deadline   time.Time // the latest deadline of the requests that want it
}

// Enqueued is what Enqueue found or did.
type Enqueued struct {
	// Created is true when this call stored the job; false when the request
	// joined a task in flight (Task) or its result was found (Result).
	Created bool
	Task    TaskRecord
	Result  *results.Result
}

// TaskRecord is a task's stored state, shared by every engine.
type TaskRecord struct {
	// Revision orders the records of one key: a later change has a
	// higher revision.
	Revision uint64 `json:"-"`
	Key      results.Key
	ID       string
	Model    string
	State    State
	Holders  int // generations that still want it
	Attempts int // times a worker claimed it
	// Claim identifies the copy of the job a worker runs (the broker's
	// reference to its message): a second copy is not run beside it.
	Claim    uint64
	Worker   string
	Enqueued time.Time
	Started  time.Time
	Finished time.Time
	Deadline time.Time
	Summary  *ResultSummary // when succeeded
	Failure  *Failure       // when failed or cancelled
}

// GenerationRecord is a generation's stored state.
type GenerationRecord struct {
	ID        string
	Key       results.Key
	Task      string // the id of the task it was attached to
	Params    Params
	Timeout   time.Duration
	Client    string
	Created   time.Time
	Cached    bool
	Coalesced bool
	Input     *Prepared // without its tensor
	// Own is set when the generation ended ahead of its task.
	Own      State
	Failure  *Failure
	Finished time.Time
	// Summary is the result of a generation born succeeded (a cache hit),
	// which has no task record of its own.
	Summary *ResultSummary
}

// Delivery is one claimed job in a worker's hands. The broker keeps it
// alive (heartbeats) until Finish or Release.
type Delivery interface {
	Spec() Spec
	// Input is the preprocessed picture, ready for the Generator.
	Input() *Prepared
	// Context ends when every request for the job left.
	Context() context.Context
	// Progress publishes the job's position in the pipeline; it does not block.
	Progress(p Progress)
	// Finish stores the outcome where every engine finds it (the result
	// itself when machines share results) and only then acknowledges the
	// job, so that a worker that dies before hands it to another.
	Finish(ctx context.Context, o Outcome) error
	// Release hands the job back to the queue unfinished (this worker is
	// shutting down); another worker, or this one after a restart, runs it.
	Release()
}

// Outcome is how a job ended on a worker.
type Outcome struct {
	State    State
	Started  time.Time
	Finished time.Time
	Summary  *ResultSummary
	Failure  *Failure
	Result   *results.Result // when succeeded
}
