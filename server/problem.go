package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/pipeline"
)

// problemDocs is where the problem types are described; a problem's type is
// this URL plus the anchor of its section.
const problemDocs = "https://github.com/hy3d/hy3d/blob/main/docs/api.md#"

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`

	// Text and ErrorCode are the error fields of Hunyuan3D's api_server.py,
	// set on its drop-in routes so that its clients recognise a failure.
	Text      string `json:"text,omitempty"`
	ErrorCode int    `json:"error_code,omitempty"`

	retryAfter time.Duration
	cause      error
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

func (p *Problem) Unwrap() error { return p.cause }

func newProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: problemDocs + slug, Title: title, Status: status, Detail: detail}
}

// maxFieldErrors bounds the errors list of a problem, so that the answer to
// a request with many bad fields stays small.
const maxFieldErrors = 20

func invalidParams(errs []FieldError) *Problem {
	p := newProblem(http.StatusUnprocessableEntity, "invalid-parameters", "Invalid parameters",
		"one or more fields are invalid; see errors")
	if len(errs) > maxFieldErrors {
		p.Detail = fmt.Sprintf("%d fields are invalid; errors lists the first %d", len(errs), maxFieldErrors)
		errs = errs[:maxFieldErrors]
	}
	p.Errors = errs
	return p
}

func badRequest(field, msg string) *Problem {
	p := newProblem(http.StatusBadRequest, "bad-request", "Bad request", msg)
	if field != "" {
		p.Errors = []FieldError{{Field: field, Message: msg}}
	}
	return p
}

func notFound(what string) *Problem {
	return newProblem(http.StatusNotFound, "not-found", "Not found", what)
}

func overloaded(status int, slug, title, detail string, retry time.Duration) *Problem {
	p := newProblem(status, slug, title, detail)
	p.retryAfter = retry
	return p
}

// imageProblem maps a Preprocessor error to the response it deserves.
func imageProblem(err error) *Problem {
	var p *Problem
	switch {
	case errors.Is(err, pipeline.ErrUnsupportedFormat):
		p = newProblem(http.StatusUnsupportedMediaType, "unsupported-image", "Unsupported image format",
			"the image must be PNG, JPEG or WebP")
	case errors.Is(err, pipeline.ErrTooManyPixels):
		p = newProblem(http.StatusRequestEntityTooLarge, "too-many-pixels", "Image too large", err.Error())
	case errors.Is(err, pipeline.ErrNoObject):
		p = newProblem(http.StatusUnprocessableEntity, "no-object", "No object in the image", err.Error())
	case errors.Is(err, pipeline.ErrCorruptImage):
		p = newProblem(http.StatusUnprocessableEntity, "corrupt-image", "Corrupt image", err.Error())
	case errors.Is(err, errBadMesh):
		p = newProblem(http.StatusUnprocessableEntity, "unreadable-mesh", "Unreadable mesh", err.Error())
		p.Errors = []FieldError{{Field: "mesh", Message: p.Detail}}
		p.cause = err
		return p
	default:
		p = newProblem(http.StatusInternalServerError, "internal", "Internal error", "preprocessing failed")
	}
	p.Errors = []FieldError{{Field: "image", Message: p.Detail}}
	p.cause = err
	return p
}

// problemFrom turns any handler error into a Problem. It is the one place
// where the job engine's errors become responses.
func problemFrom(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	if p := engineProblem(err); p != nil {
		p.cause = err
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		detail := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			detail = m
		}
		q := newProblem(he.Code, slugFor(he.Code), http.StatusText(he.Code), detail)
		if he.Code >= 500 {
			q.Detail = "internal error"
		}
		q.cause = err
		return q
	}
	q := newProblem(http.StatusInternalServerError, "internal", "Internal error", "internal error")
	q.cause = err
	return q
}

// engineProblem maps an error of the job engine to its response, or
// returns nil for any other error.
// storageRetryAfter is the wait suggested after the job store failed: long
// enough for a NATS cluster to elect a new leader.
const storageRetryAfter = 5 * time.Second

func engineProblem(err error) *Problem {
	var full *jobs.QueueFullError
	var finished *jobs.FinishedError
	var notReady *jobs.NotReadyError
	var storage *jobs.StorageError
	switch {
	case errors.As(err, &full):
		return overloaded(http.StatusServiceUnavailable, "queue-full", "Queue full", full.Error(), full.RetryAfter)
	case errors.Is(err, jobs.ErrDraining):
		return overloaded(http.StatusServiceUnavailable, "draining", "Server shutting down", err.Error(), jobs.RetryAfterDraining())
	case errors.Is(err, jobs.ErrNotFound):
		return notFound(err.Error())
	case errors.As(err, &finished):
		return newProblem(http.StatusConflict, "already-finished", "Generation already finished", finished.Error())
	case errors.As(err, &notReady):
		p := overloaded(http.StatusConflict, "not-ready", "Result not ready", notReady.Error(), notReady.RetryAfter)
		return p
	case errors.Is(err, jobs.ErrResultGone):
		return newProblem(http.StatusGone, "result-gone", "Result gone", err.Error())
	case errors.As(err, &storage):
		// Nothing was accepted: the client may send the request again.
		p := overloaded(http.StatusServiceUnavailable, "storage-unavailable", "Job store unavailable", storage.Error(), storageRetryAfter)
		p.cause = err
		return p
	}
	return nil
}

func slugFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not-found"
	case http.StatusMethodNotAllowed:
		return "method-not-allowed"
	case http.StatusRequestEntityTooLarge:
		return "body-too-large"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusBadRequest:
		return "bad-request"
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers-too-large"
	case http.StatusUnsupportedMediaType:
		return "unsupported-media-type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "http-" + strconv.Itoa(status)
}

// writeProblem sends p as application/problem+json.
func writeProblem(c echo.Context, p *Problem) error {
	if p.Instance == "" {
		if id := requestID(c); id != "" {
			p.Instance = "urn:hy3d:request:" + id
		}
	}
	h := c.Response().Header()
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(p.retryAfter)))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="hy3d"`)
	}
	h.Del("Content-Encoding")
	// A handler may have set the type of the answer it meant to give, and
	// Echo keeps a type that is already set.
	h.Del("Content-Type")
	h.Set("Cache-Control", "no-store")
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode problem: %w", err)
	}
	return c.Blob(p.Status, "application/problem+json", body)
}

// retryAfterSeconds rounds up: a client told 0 would retry at once.
func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
