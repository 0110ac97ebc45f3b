package pipeline

import (
	"errors"
	"fmt"
	"math"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
)

// Limits on Params. They bound the work one request can ask for: the grid
// holds (R+1)³ float32 logits (513³ is 540 MB).
const (
	MaxSteps      = 200
	MaxGuidance   = 100.0
	MinResolution = 8
	MaxResolution = 512
	DefaultFaces  = mesh.DefaultTargetFaces // Hunyuan3D's FaceReducer budget
	MaxFaces      = 5000000
)

// Params are the parameters of one generation. Zero fields take the model
// set's defaults (Params.WithDefaults); the zero Decode is coarse-to-fine.
type Params struct {
	Steps      int
	Guidance   float64
	Seed       uint64
	Resolution int
	Decode     DecodeMode
	Faces      int // face budget after cleanup
}

// WithDefaults fills the zero fields from the manifest: steps, guidance and
// resolution from its sampler and volume sections, the face budget from
// DefaultFaces. Guidance 0 is kept only for guidance-distilled sets, where
// it is a meaningful input; with classifier-free guidance it would discard
// the picture, so zero there means "default".
func (p Params) WithDefaults(m *engines.Manifest) Params {
	if p.Steps == 0 {
		p.Steps = m.Sampler.Steps
	}
	if p.Guidance == 0 && m.Sampler.Guidance == GuidanceCFG {
		p.Guidance = m.Sampler.GuidanceScale
	}
	if p.Resolution == 0 {
		p.Resolution = m.Volume.Resolution
	}
	if p.Faces == 0 {
		p.Faces = DefaultFaces
	}
	return p
}

// FieldError names the parameter a validation error is about, so that the
// server can report field-level errors.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every field against the limits and the model set; the
// error joins one *FieldError per bad field.
func (p Params) Validate(m *engines.Manifest) error {
	return errors.Join(p.fieldErrors(m)...)
}

func (p Params) fieldErrors(m *engines.Manifest) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	maxSteps := MaxSteps
	if m.Sampler.Kind == KindConsistency && m.Sampler.PCMTimesteps > 0 {
		maxSteps = min(maxSteps, m.Sampler.PCMTimesteps)
	}
	if p.Steps < 1 || p.Steps > maxSteps {
		bad("steps", "%d outside [1, %d]", p.Steps, maxSteps)
	}
	if math.IsNaN(p.Guidance) || p.Guidance < 0 || p.Guidance > MaxGuidance {
		bad("guidance", "%v outside [0, %v]", p.Guidance, MaxGuidance)
	}
	if p.Resolution < MinResolution || p.Resolution > MaxResolution {
		bad("resolution", "%d outside [%d, %d]", p.Resolution, MinResolution, MaxResolution)
	}
	if p.Decode != DecodeDense && p.Decode != DecodeCoarseToFine {
		bad("decode", "unknown mode %d", int(p.Decode))
	}
	if p.Faces < 4 || p.Faces > MaxFaces {
		bad("faces", "%d outside [4, %d]", p.Faces, MaxFaces)
	}
	return errs
}

// validateRequest is Params.Validate plus the export formats.
func validateRequest(p Params, formats []mesh.Format, m *engines.Manifest) error {
	errs := p.fieldErrors(m)
	for _, f := range formats {
		if canon, err := mesh.ParseFormat(string(f)); err != nil {
			errs = append(errs, &FieldError{Field: "formats", Err: err})
		} else if canon != f {
			errs = append(errs, &FieldError{Field: "formats", Err: fmt.Errorf("%q: write %q", f, canon)})
		}
	}
	return errors.Join(errs...)
}
