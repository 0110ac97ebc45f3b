package server

import (
	"context"

	"github.com/hy3d/hy3d/jobs"
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

// The job engine's types that are part of the server's own API: a
// Config names its models and generator with them, and a Preprocessor
// returns a Prepared.
type (
	Model     = jobs.Model
	Defaults  = jobs.Defaults
	Prepared  = jobs.Prepared
	Params    = jobs.Params
	Generator = jobs.Generator
)

// ParamValidator is implemented by a Generator whose models have rules of
// their own beyond the server's Limits (a consistency sampler's step limit,
// say); its field errors are reported along with the server's, before a job
// is admitted.
type ParamValidator interface {
	ValidateParams(p Params) []FieldError
}
