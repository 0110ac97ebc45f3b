package server

import (
	"fmt"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/results"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits bound the parameters a client may ask for.
type Limits struct {
	MaxSteps      int
	MaxGuidance   float64
	MinResolution int
	MaxResolution int
	MaxFaces      int
	MaxTimeout    time.Duration
}

// DefaultLimits are generous enough for every published Hunyuan3D setting
// and small enough that one request cannot occupy a GPU for an hour.
var DefaultLimits = Limits{
	MaxSteps:      200,
	MaxGuidance:   30,
	MinResolution: 16,
	MaxResolution: 512,
	MaxFaces:      2_000_000,
	MaxTimeout:    30 * time.Minute,
}

// minFaces is the smallest face budget: a tetrahedron.
const minFaces = 4

// DefaultSeed matches Hunyuan3D's api_server.py, so a request without a seed
// is reproducible and cacheable.
const DefaultSeed = 1234

// minTimeout is the shortest deadline a request may ask for: a shorter one
// is a mistake (1e-300 seconds truncates to a deadline of 0), not a wish.
const minTimeout = time.Millisecond

// paramNames are the parameters a generation request may carry, besides the
// image itself.
var paramNames = []string{"model", "format", "steps", "guidance", "seed", "resolution", "faces", "decode", "timeout", "priority"}

// FieldError names one rejected field and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// paramParser validates raw request fields against the served models and limits.
type paramParser struct {
	models       map[string]*Model
	defaultModel string
	limits       Limits
	jobTimeout   time.Duration
	validator    ParamValidator // optional
}

// parse validates raw, a map from field name to its textual value, and fills
// in the model's defaults. All problems are reported at once.
func (p *paramParser) parse(raw map[string]string) (Params, []FieldError) {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for name := range raw {
		if !isParamName(name) {
			bad(name, "unknown parameter; known: %s", strings.Join(paramNames, ", "))
		}
	}

	out := Params{Model: p.defaultModel, Format: "glb", Seed: DefaultSeed, Priority: jobs.PriorityNormal, Timeout: p.jobTimeout}
	if v, ok := raw["model"]; ok {
		out.Model = v
	}
	m, ok := p.models[out.Model]
	if !ok {
		bad("model", "unknown model %q; see GET /v1/models", out.Model)
		m = &Model{Defaults: Defaults{Steps: 1, Resolution: p.limits.MinResolution, Decode: jobs.DecodeDense}}
	}
	out.Steps = m.Defaults.Steps
	out.Guidance = m.Defaults.Guidance
	out.Resolution = m.Defaults.Resolution
	out.Faces = m.Defaults.Faces
	out.Decode = m.Defaults.Decode

	if v, ok := raw["format"]; ok {
		f := strings.ToLower(v)
		if !results.IsFormat(f) {
			bad("format", "must be one of %s", strings.Join(results.Formats, ", "))
		}
		out.Format = f
	}
	intField := func(name string, dst *int, lo, hi int) {
		v, ok := raw[name]
		if !ok {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			bad(name, "must be an integer")
			return
		}
		if n < lo || n > hi {
			bad(name, "must be between %d and %d", lo, hi)
			return
		}
		*dst = n
	}
	intField("steps", &out.Steps, 1, p.limits.MaxSteps)
	intField("resolution", &out.Resolution, p.limits.MinResolution, p.limits.MaxResolution)
	intField("faces", &out.Faces, minFaces, p.limits.MaxFaces)
	if v, ok := raw["guidance"]; ok {
		g, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch {
		case err != nil || math.IsNaN(g) || math.IsInf(g, 0):
			bad("guidance", "must be a number")
		case g < 0 || g > p.limits.MaxGuidance:
			bad("guidance", "must be between 0 and %g", p.limits.MaxGuidance)
		default:
			if g == 0 {
				g = 0 // -0 and 0 must give one cache key
			}
			out.Guidance = g
		}
	}
	if v, ok := raw["seed"]; ok {
		s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case err != nil:
			bad("seed", "must be an integer between 0 and %d", int64(math.MaxInt64))
		case s < 0:
			bad("seed", "must not be negative")
		default:
			out.Seed = s
		}
	}
	if v, ok := raw["decode"]; ok {
		d := strings.ToLower(strings.ReplaceAll(v, "-", "_"))
		if d != jobs.DecodeDense && d != jobs.DecodeCoarseToFine {
			bad("decode", "must be %s or %s", jobs.DecodeDense, jobs.DecodeCoarseToFine)
		}
		out.Decode = d
	}
	if v, ok := raw["priority"]; ok {
		pr := strings.ToLower(strings.TrimSpace(v))
		if pr != jobs.PriorityLow && pr != jobs.PriorityNormal && pr != jobs.PriorityHigh {
			bad("priority", "must be %s, %s or %s", jobs.PriorityLow, jobs.PriorityNormal, jobs.PriorityHigh)
		}
		out.Priority = pr
	}
	if v, ok := raw["timeout"]; ok {
		secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch {
		case err != nil || math.IsNaN(secs) || math.IsInf(secs, 0):
			bad("timeout", "must be a number of seconds")
		case secs < minTimeout.Seconds() || secs > p.limits.MaxTimeout.Seconds():
			bad("timeout", "must be between %g and %g seconds", minTimeout.Seconds(), p.limits.MaxTimeout.Seconds())
		default:
			out.Timeout = time.Duration(secs * float64(time.Second))
		}
	}
	if len(errs) == 0 && p.validator != nil {
		errs = p.validator.ValidateParams(out)
	}
	return out, errs
}

func isParamName(s string) bool {
	for _, n := range paramNames {
		if n == s {
			return true
		}
	}
	return false
}
