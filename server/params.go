package server

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/paint"
)

// Limits bound the parameters a client may ask for.
type Limits struct {
	MaxSteps      int
	MaxGuidance   float64
	MinResolution int
	MaxResolution int
	MaxFaces      int
	MaxTimeout    time.Duration
	// MinTextureSize and MaxTextureSize bound texture_size.
	MinTextureSize int
	MaxTextureSize int
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
	// Tencent bakes 2048² (and 4096² for 2.1's upscaled views); 64² is
	// the smallest texture worth an atlas.
	MinTextureSize: 64,
	MaxTextureSize: 4096,
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
var paramNames = []string{"model", "format", "steps", "guidance", "seed", "resolution", "faces", "decode", "timeout", "priority",
	"texture", "paint_model", "texture_size"}

// textureParamNames are the parameters of POST /v1/textures, besides the
// picture and the mesh: model names the paint model.
var textureParamNames = []string{"model", "format", "seed", "texture_size", "timeout", "priority"}

// FieldError names one rejected field and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// paramParser validates raw request fields against the served models and limits.
type paramParser struct {
	models       map[string]*Model
	defaultModel string
	defaultPaint string // "" when no paint model is served
	limits       Limits
	jobTimeout   time.Duration
	validator    ParamValidator // optional
}

// parse validates raw, a map from field name to its textual value, and fills
// in the model's defaults. All problems are reported at once.
func (p *paramParser) parse(raw map[string]string) (Params, []FieldError) {
	f := p.fields(raw, paramNames)
	out := Params{Model: p.defaultModel, Format: "glb", Seed: DefaultSeed, Priority: jobs.PriorityNormal, Timeout: p.jobTimeout}
	if v, ok := raw["model"]; ok {
		out.Model = v
	}
	m, ok := p.models[out.Model]
	switch {
	case !ok:
		f.bad("model", "unknown model %q; see GET /v1/models", out.Model)
	case m.IsPaint():
		f.bad("model", "%q is a paint model: send texture=true with paint_model=%s, or POST /v1/textures", out.Model, out.Model)
		ok = false
	}
	if !ok {
		m = &Model{Defaults: Defaults{Steps: 1, Resolution: p.limits.MinResolution, Decode: jobs.DecodeDense}}
	}
	out.Steps = m.Defaults.Steps
	out.Guidance = m.Defaults.Guidance
	out.Resolution = m.Defaults.Resolution
	out.Faces = m.Defaults.Faces
	out.Decode = m.Defaults.Decode

	if v, ok := raw["texture"]; ok {
		t, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			f.bad("texture", "must be true or false")
		}
		out.Texture = t
	}
	if out.Texture {
		p.paintFields(f, &out, "paint_model")
	} else {
		for _, name := range []string{"paint_model", "texture_size"} {
			if _, ok := raw[name]; ok {
				f.bad(name, "applies only with texture=true")
			}
		}
	}
	f.format(&out)
	f.integer("steps", &out.Steps, 1, p.limits.MaxSteps)
	f.integer("resolution", &out.Resolution, p.limits.MinResolution, p.limits.MaxResolution)
	f.integer("faces", &out.Faces, minFaces, p.limits.MaxFaces)
	if v, ok := raw["guidance"]; ok {
		g, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch {
		case err != nil || math.IsNaN(g) || math.IsInf(g, 0):
			f.bad("guidance", "must be a number")
		case g < 0 || g > p.limits.MaxGuidance:
			f.bad("guidance", "must be between 0 and %g", p.limits.MaxGuidance)
		default:
			if g == 0 {
				g = 0 // -0 and 0 must give one cache key
			}
			out.Guidance = g
		}
	}
	if v, ok := raw["decode"]; ok {
		d := strings.ToLower(strings.ReplaceAll(v, "-", "_"))
		if d != jobs.DecodeDense && d != jobs.DecodeCoarseToFine {
			f.bad("decode", "must be %s or %s", jobs.DecodeDense, jobs.DecodeCoarseToFine)
		}
		out.Decode = d
	}
	f.common(&out)
	if len(f.errs) == 0 && p.validator != nil {
		f.errs = p.validator.ValidateParams(out)
	}
	return out, f.errs
}

// parseTexture validates the fields of POST /v1/textures, where model names
// the paint model.
func (p *paramParser) parseTexture(raw map[string]string) (Params, []FieldError) {
	f := p.fields(raw, textureParamNames)
	out := Params{Format: "glb", Seed: DefaultSeed, Priority: jobs.PriorityNormal, Timeout: p.jobTimeout, Texture: true}
	p.paintFields(f, &out, "model")
	out.Model = out.PaintModel
	f.format(&out)
	f.common(&out)
	if len(f.errs) == 0 && p.validator != nil {
		f.errs = p.validator.ValidateParams(out)
	}
	return out, f.errs
}

// paintFields fills the paint model (named by the field modelField) and the
// texture size of a textured request.
func (p *paramParser) paintFields(f *fieldParser, out *Params, modelField string) {
	out.PaintModel, out.TextureSize = p.defaultPaint, paint.DefaultTextureSize
	if v, ok := f.raw[modelField]; ok {
		out.PaintModel = v
	}
	switch m := p.models[out.PaintModel]; {
	case p.defaultPaint == "":
		f.bad("texture", "this server paints no meshes: it was started without a paint model (hy3d serve --paint DIR)")
	case m == nil || !m.IsPaint():
		f.bad(modelField, "unknown paint model %q; see GET /v1/models (kind paint)", out.PaintModel)
	}
	f.integer("texture_size", &out.TextureSize, p.limits.MinTextureSize, p.limits.MaxTextureSize)
}

// fieldParser collects the problems of one request's fields.
type fieldParser struct {
	raw    map[string]string
	limits Limits
	errs   []FieldError
}

// fields starts parsing raw, refusing every field not among known.
func (p *paramParser) fields(raw map[string]string, known []string) *fieldParser {
	f := &fieldParser{raw: raw, limits: p.limits}
	for name := range raw {
		if !slices.Contains(known, name) {
			f.bad(name, "unknown parameter; known: %s", strings.Join(known, ", "))
		}
	}
	return f
}

func (f *fieldParser) bad(field, format string, args ...any) {
	f.errs = append(f.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f *fieldParser) integer(name string, dst *int, lo, hi int) {
	v, ok := f.raw[name]
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		f.bad(name, "must be an integer")
		return
	}
	if n < lo || n > hi {
		f.bad(name, "must be between %d and %d", lo, hi)
		return
	}
	*dst = n
}

// format takes the format field, among the formats a result of out holds.
func (f *fieldParser) format(out *Params) {
	v, ok := f.raw["format"]
	if !ok {
		return
	}
	format := strings.ToLower(v)
	if offered := out.Formats(); !slices.Contains(offered, format) {
		what := "must be one of %s"
		if out.Texture {
			what = "a textured result must be one of %s"
		}
		f.bad("format", what, strings.Join(offered, ", "))
	}
	out.Format = format
}

// common takes the fields every request shares: seed, priority, timeout.
func (f *fieldParser) common(out *Params) {
	if v, ok := f.raw["seed"]; ok {
		s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case err != nil:
			f.bad("seed", "must be an integer between 0 and %d", int64(math.MaxInt64))
		case s < 0:
			f.bad("seed", "must not be negative")
		default:
			out.Seed = s
		}
	}
	if v, ok := f.raw["priority"]; ok {
		pr := strings.ToLower(strings.TrimSpace(v))
		if pr != jobs.PriorityLow && pr != jobs.PriorityNormal && pr != jobs.PriorityHigh {
			f.bad("priority", "must be %s, %s or %s", jobs.PriorityLow, jobs.PriorityNormal, jobs.PriorityHigh)
		}
		out.Priority = pr
	}
	if v, ok := f.raw["timeout"]; ok {
		secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch {
		case err != nil || math.IsNaN(secs) || math.IsInf(secs, 0):
			f.bad("timeout", "must be a number of seconds")
		case secs < minTimeout.Seconds() || secs > f.limits.MaxTimeout.Seconds():
			f.bad("timeout", "must be between %g and %g seconds", minTimeout.Seconds(), f.limits.MaxTimeout.Seconds())
		default:
			out.Timeout = time.Duration(secs * float64(time.Second))
		}
	}
}
