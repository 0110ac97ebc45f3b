package jobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/hy3d/hy3d/tensor"
)

// Refusals and lookups the engine answers with. The server maps each to a
// response in one place.
var (
	// ErrDraining refuses a new job while the engine drains.
	ErrDraining = errors.New("the server is draining and accepts no new jobs")
	// ErrNotFound names a generation the engine does not know (never
	// existed, or forgotten).
	ErrNotFound = errors.New("no such generation")
	// ErrResultGone is a succeeded generation whose result left the store.
	ErrResultGone = errors.New("the result is no longer in the store; submit the request again")
)

// StorageError is a job, or a change of one, that the broker could not
// store: a job it refuses was not accepted.
type StorageError struct {
	Op  string // what was being stored
	Err error
}

func (e *StorageError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

// QueueFullError refuses a job the queue has no room for.
type QueueFullError struct {
	Depth       int  // jobs waiting, counting admission tickets
	LowPriority bool // refused at the bound low-priority jobs stop at
	RetryAfter  time.Duration
}

func (e *QueueFullError) Error() string {
	if e.LowPriority {
		return fmt.Sprintf("%d jobs are waiting, as many as low-priority jobs may join; retry later", e.Depth)
	}
	return fmt.Sprintf("%d jobs are waiting; retry later", e.Depth)
}

// FinishedError refuses to cancel a generation that already ended.
type FinishedError struct {
	ID    string
	State State
}

func (e *FinishedError) Error() string { return fmt.Sprintf("generation %s is %s", e.ID, e.State) }

// NotReadyError is the result of a generation that has not succeeded.
type NotReadyError struct {
	ID         string
	State      State
	RetryAfter time.Duration // when it may be ready; 0 once it never will
}

func (e *NotReadyError) Error() string { return fmt.Sprintf("generation %s is %s", e.ID, e.State) }

// FailureKind says why a generation did not succeed.
type FailureKind string

// Failure kinds.
const (
	FailCancelled FailureKind = "cancelled"
	FailDeadline  FailureKind = "deadline-exceeded"
	FailShutdown  FailureKind = "shutdown"
	FailGenerator FailureKind = "generation-failed"
	// FailBackend is a generator error from an inference backend that has
	// become unusable (a GPU whose CUDA context is lost answers every later
	// run so): the server's state is at fault, not the request.
	FailBackend FailureKind = "backend-unavailable"
	// FailAttempts is a job that workers took again and again and none
	// finished: each died, lost its connection or stalled while running it.
	FailAttempts FailureKind = "attempts-exhausted"
)

// Failure is why a generation failed or was cancelled.
type Failure struct {
	Kind   FailureKind `json:"kind"`
	Detail string      `json:"detail"`
	Err    error       `json:"-"` // the generator's error, for FailGenerator and FailBackend (this process only)
}

func failureCancelled() *Failure {
	return &Failure{Kind: FailCancelled, Detail: "cancelled by the client"}
}

func failureDeadline(d time.Duration) *Failure {
	return &Failure{Kind: FailDeadline, Detail: fmt.Sprintf("the generation did not finish within %s", d)}
}

func failureShutdown(started bool) *Failure {
	detail := "the server shut down before the job ran"
	if started {
		detail = "the server shut down while the job ran"
	}
	return &Failure{Kind: FailShutdown, Detail: detail}
}

func failureGenerator(err error) *Failure {
	kind := FailGenerator
	if errors.Is(err, tensor.ErrUnavailable) {
		kind = FailBackend
	}
	return &Failure{Kind: kind, Detail: err.Error(), Err: err}
}

// FailureAttempts is the failure of a job no worker finished in attempts
// tries.
func FailureAttempts(attempts int) *Failure {
	return &Failure{Kind: FailAttempts, Detail: fmt.Sprintf(
		"workers took this job %d times and none finished it (each stopped while running it: a crash, a lost connection or a stall)", attempts)}
}

// FailureDeadline is the failure of a job that did not finish within d.
func FailureDeadline(d time.Duration) *Failure { return failureDeadline(d) }

func failureStorage(err error) *Failure {
	return &Failure{Kind: FailGenerator, Detail: "the result could not be stored: " + err.Error(), Err: err}
}
