package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hy3d/hy3d/jobs"
)

// Status is the JSON view of a generation.
type Status struct {
	ID                   string         `json:"id"`
	Status               jobs.State     `json:"status"`
	Params               Params         `json:"params"`
	CreatedAt            time.Time      `json:"created_at"`
	StartedAt            *time.Time     `json:"started_at,omitempty"`
	FinishedAt           *time.Time     `json:"finished_at,omitempty"`
	QueuePosition        int            `json:"queue_position,omitempty"`
	EstimatedWaitSeconds float64        `json:"estimated_wait_seconds,omitempty"`
	Progress             *jobs.Progress `json:"progress,omitempty"`
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

// statusOf is the JSON view of a generation's snapshot, with the links
// that name it.
func statusOf(snap jobs.Snapshot) Status {
	self := "/v1/generations/" + snap.ID
	st := Status{
		ID: snap.ID, Status: snap.State, Params: snap.Params, CreatedAt: snap.Created,
		QueuePosition: snap.QueuePosition, Progress: snap.Progress, Cached: snap.Cached, Coalesced: snap.Coalesced,
		Links: map[string]any{"self": self, "events": self + "/events", "result": self + "/result"},
	}
	if snap.EstimatedWait > 0 {
		st.EstimatedWaitSeconds = snap.EstimatedWait.Seconds()
	}
	if in := snap.Input; in != nil {
		st.Input = &InputStatus{Format: in.Format, Width: in.Width, Height: in.Height, SHA256: fmt.Sprintf("%x", in.Hash[:])}
		st.Warnings = append(st.Warnings, in.Warnings...)
	}
	if !snap.Started.IsZero() {
		started := snap.Started
		st.StartedAt = &started
	}
	if !snap.Finished.IsZero() {
		finished := snap.Finished
		st.FinishedAt = &finished
	}
	if f := snap.Failure; f != nil {
		p := failureProblem(f)
		st.Error = &StatusError{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail}
	}
	if r := snap.Result; r != nil {
		rs := &ResultStatus{Vertices: r.Vertices, Faces: r.Faces, Formats: map[string]FormatStatus{}}
		for f, fs := range r.Formats {
			rs.Formats[f] = FormatStatus{URL: self + "/result?format=" + f, MediaType: mediaTypes[f], Bytes: fs.Bytes, ETag: fs.ETag}
		}
		st.Result = rs
		for _, stg := range r.Stages {
			st.Stages = append(st.Stages, StageStatus{Stage: stg.Stage, Milliseconds: float64(stg.Duration.Microseconds()) / 1000})
		}
		st.Warnings = append(st.Warnings, r.Warnings...)
	}
	return st
}

// failureProblem is the problem a failure is reported as: in the status's
// error, and as the answer of a synchronous request.
func failureProblem(f *jobs.Failure) *Problem {
	var p *Problem
	switch f.Kind {
	case jobs.FailCancelled:
		p = newProblem(http.StatusConflict, "cancelled", "Generation cancelled", f.Detail)
	case jobs.FailDeadline:
		p = newProblem(http.StatusGatewayTimeout, "deadline-exceeded", "Deadline exceeded", f.Detail)
	case jobs.FailShutdown:
		p = newProblem(http.StatusServiceUnavailable, "shutdown", "Server shut down", f.Detail)
	case jobs.FailAttempts:
		p = newProblem(http.StatusServiceUnavailable, "attempts-exhausted", "Workers gave up", f.Detail)
	case jobs.FailBackend:
		p = newProblem(http.StatusServiceUnavailable, "backend-unavailable", "Inference backend unavailable", f.Detail)
	default:
		p = newProblem(http.StatusInternalServerError, "generation-failed", "Generation failed", f.Detail)
	}
	p.cause = f.Err
	return p
}
