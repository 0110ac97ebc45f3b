package schedulers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Option is a config value that a scheduler_config.json may or may not set:
// diffusers gives an unset key the default of the class being built, which
// differs between classes (clip_sample, beta_schedule, timestep_spacing).
type Option[T any] struct {
	Value T
	Set   bool
}

// Some is a set Option.
func Some[T any](v T) Option[T] { return Option[T]{Value: v, Set: true} }

// Or is the value if set, def otherwise.
func (o Option[T]) Or(def T) T {
	if o.Set {
		return o.Value
	}
	return def
}

// Config is a scheduler_config.json as read: every key a scheduler of this
// package takes, each set only if the file sets it. Callers override keys the
// way Tencent's pipelines pass keyword arguments to from_config, e.g.
// cfg.TimestepSpacing = Some("trailing").
type Config struct {
	ClassName string // "_class_name", for messages only: the caller picks the scheduler

	NumTrainTimesteps   Option[int]
	BetaStart           Option[float64]
	BetaEnd             Option[float64]
	BetaSchedule        Option[string]
	TrainedBetas        Option[[]float64]
	PredictionType      Option[string]
	TimestepSpacing     Option[string]
	StepsOffset         Option[int]
	RescaleBetasZeroSNR Option[bool]

	// LCM (and DDIM, whose configs the Hunyuan checkpoints ship).
	ClipSample             Option[bool]
	ClipSampleRange        Option[float64]
	OriginalInferenceSteps Option[int]
	TimestepScaling        Option[float64]
	Thresholding           Option[bool]

	// UniPC.
	SolverOrder      Option[int]
	SolverType       Option[string]
	PredictX0        Option[bool]
	LowerOrderFinal  Option[bool]
	DisableCorrector Option[[]int]
	FinalSigmasType  Option[string]
	UseKarrasSigmas  Option[bool]
}

// Limits on untrusted configs: far above any real checkpoint (1000 training
// steps, a 400-byte file), low enough that a hostile file cannot make the
// schedule tables large.
const (
	maxConfigBytes       = 1 << 20
	maxNumTrainTimesteps = 100_000
	maxDisableCorrector  = 1000
)

// ParseConfig reads a scheduler_config.json. Unknown keys and keys starting
// with "_" (other than _class_name) are ignored, as diffusers ignores them; a
// JSON null leaves a key unset. Wrong types and values outside their domain
// are errors wrapping ErrConfig; whether a scheduler supports a value is
// decided when it is built.
func ParseConfig(data []byte) (Config, error) {
	if len(data) > maxConfigBytes {
		return Config{}, fmt.Errorf("%w: %d bytes, at most %d", ErrConfig, len(data), maxConfigBytes)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if raw == nil {
		return Config{}, fmt.Errorf("%w: not a JSON object", ErrConfig)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("%w: data after the JSON object", ErrConfig)
	}
	var c Config
	r := reader{raw: raw}
	if v, ok := raw["_class_name"]; ok {
		_ = json.Unmarshal(v, &c.ClassName) // informational: a non-string name is left empty
	}
	c.NumTrainTimesteps = r.integer("num_train_timesteps", 1, maxNumTrainTimesteps)
	c.BetaStart = r.number("beta_start", 0, 1)
	c.BetaEnd = r.number("beta_end", 0, 1)
	c.BetaSchedule = r.name("beta_schedule", "linear", "scaled_linear", "squaredcos_cap_v2")
	c.TrainedBetas = r.numbers("trained_betas", 0, 1, maxNumTrainTimesteps)
	c.PredictionType = r.name("prediction_type", "epsilon", "v_prediction", "sample", "flow_prediction")
	c.TimestepSpacing = r.name("timestep_spacing", "linspace", "leading", "trailing")
	c.StepsOffset = r.integer("steps_offset", 0, maxNumTrainTimesteps)
	c.RescaleBetasZeroSNR = r.boolean("rescale_betas_zero_snr")
	c.ClipSample = r.boolean("clip_sample")
	c.ClipSampleRange = r.number("clip_sample_range", math.SmallestNonzeroFloat32, math.MaxFloat32)
	c.OriginalInferenceSteps = r.integer("original_inference_steps", 1, maxNumTrainTimesteps)
	c.TimestepScaling = r.number("timestep_scaling", math.SmallestNonzeroFloat32, 1e6)
	c.Thresholding = r.boolean("thresholding")
	c.SolverOrder = r.integer("solver_order", 1, 16)
	c.SolverType = r.name("solver_type", "bh1", "bh2", "midpoint", "heun", "logrho")
	c.PredictX0 = r.boolean("predict_x0")
	c.LowerOrderFinal = r.boolean("lower_order_final")
	c.DisableCorrector = r.integers("disable_corrector", 0, maxNumTrainTimesteps, maxDisableCorrector)
	c.FinalSigmasType = r.name("final_sigmas_type", "zero", "sigma_min")
	c.UseKarrasSigmas = r.boolean("use_karras_sigmas")
	if r.err != nil {
		return Config{}, r.err
	}
	return c, nil
}

// reader decodes typed keys of a raw JSON object, keeping the first error.
type reader struct {
	raw map[string]json.RawMessage
	err error
}

// value unmarshals key into dst; it reports false if the key is absent,
// null, or already failed.
func (r *reader) value(key string, dst any) bool {
	v, ok := r.raw[key]
	if !ok || r.err != nil || string(bytes.TrimSpace(v)) == "null" {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		r.err = fmt.Errorf("%w: %s: %v", ErrConfig, key, err)
		return false
	}
	return true
}

func (r *reader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
}

func (r *reader) boolean(key string) Option[bool] {
	var b bool
	if !r.value(key, &b) {
		return Option[bool]{}
	}
	return Some(b)
}

func (r *reader) name(key string, allowed ...string) Option[string] {
	var s string
	if !r.value(key, &s) {
		return Option[string]{}
	}
	for _, a := range allowed {
		if s == a {
			return Some(s)
		}
	}
	r.fail(key, "%q is none of %s", s, strings.Join(allowed, ", "))
	return Option[string]{}
}

// number reads a finite float in [lo, hi].
func (r *reader) number(key string, lo, hi float64) Option[float64] {
	var raw json.RawMessage
	if !r.value(key, &raw) {
		return Option[float64]{}
	}
	f, ok := r.checkNumber(key, raw, lo, hi)
	if !ok {
		return Option[float64]{}
	}
	return Some(f)
}

// checkNumber reads one JSON number (json.Number alone would also take a
// quoted one) and checks that it is finite and in [lo, hi].
func (r *reader) checkNumber(key string, raw json.RawMessage, lo, hi float64) (float64, bool) {
	var n json.Number
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] == '"' || json.Unmarshal(t, &n) != nil {
		r.fail(key, "%s is not a number", raw)
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		r.fail(key, "%s is not a number in [%g, %g]", n, lo, hi)
		return 0, false
	}
	return f, true
}

// integer reads a whole number in [lo, hi]; 1000.0 counts, as Python's json
// gives diffusers a float it then uses as a count.
func (r *reader) integer(key string, lo, hi int) Option[int] {
	var raw json.RawMessage
	if !r.value(key, &raw) {
		return Option[int]{}
	}
	i, ok := r.checkInteger(key, raw, lo, hi)
	if !ok {
		return Option[int]{}
	}
	return Some(i)
}

func (r *reader) checkInteger(key string, raw json.RawMessage, lo, hi int) (int, bool) {
	f, ok := r.checkNumber(key, raw, float64(lo), float64(hi))
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) {
		r.fail(key, "%s is not a whole number", raw)
		return 0, false
	}
	return int(f), true
}

func (r *reader) numbers(key string, lo, hi float64, maxLen int) Option[[]float64] {
	var ns []json.RawMessage
	if !r.value(key, &ns) {
		return Option[[]float64]{}
	}
	if len(ns) > maxLen {
		r.fail(key, "%d values, at most %d", len(ns), maxLen)
		return Option[[]float64]{}
	}
	out := make([]float64, len(ns))
	for i, n := range ns {
		f, ok := r.checkNumber(key, n, lo, hi)
		if !ok {
			return Option[[]float64]{}
		}
		out[i] = f
	}
	return Some(out)
}

func (r *reader) integers(key string, lo, hi, maxLen int) Option[[]int] {
	var ns []json.RawMessage
	if !r.value(key, &ns) {
		return Option[[]int]{}
	}
	if len(ns) > maxLen {
		r.fail(key, "%d values, at most %d", len(ns), maxLen)
		return Option[[]int]{}
	}
	out := make([]int, len(ns))
	for i, n := range ns {
		v, ok := r.checkInteger(key, n, lo, hi)
		if !ok {
			return Option[[]int]{}
		}
		out[i] = v
	}
	return Some(out)
}
