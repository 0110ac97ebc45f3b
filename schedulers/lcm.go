package schedulers

import (
	"fmt"
	"math"
)

// LCM is diffusers' LCMScheduler, the multistep consistency sampler: at each
// step the model's prediction gives x₀, the consistency boundary condition
// mixes it with the sample (c_skip, c_out), and all but the last step
// re-noise the result to the next timestep. Hunyuan3D-Paint 2.0-turbo builds
// it from the checkpoint's config and hands it its own timesteps
// (HunyuanTurboTimesteps); timestep_spacing, which the pipeline sets to
// "trailing", does not enter LCM's schedule.
type LCM struct {
	stepper
	prediction    string
	clip          bool
	clipRange     float32
	scaling       float32
	timesteps     []int
	alphasCumprod []float32
}

// NewLCM builds the scheduler with LCM's own schedule of steps timesteps:
// evenly spaced indices into the original_inference_steps-step distillation
// schedule.
func NewLCM(cfg Config, steps int) (*LCM, error) {
	l, err := newLCM(cfg)
	if err != nil {
		return nil, err
	}
	T := len(l.alphasCumprod)
	original := cfg.OriginalInferenceSteps.Or(50)
	if original > T {
		return nil, fmt.Errorf("%w: original_inference_steps %d exceeds %d training steps", ErrConfig, original, T)
	}
	if steps < 1 || steps > original {
		return nil, fmt.Errorf("%w: %d LCM steps, want 1 to original_inference_steps (%d)", ErrConfig, steps, original)
	}
	k := T / original
	// The distillation schedule, descending: original·k − 1, …, 2k − 1, k − 1.
	origin := make([]int, original)
	for i := range origin {
		origin[i] = (original-i)*k - 1
	}
	timesteps := make([]int, steps)
	for i := range timesteps {
		timesteps[i] = origin[int(math.Floor(float64(i)*(float64(original)/float64(steps))))]
	}
	l.setTimesteps(timesteps)
	return l, nil
}

// NewLCMWithTimesteps builds the scheduler on given timesteps, strictly
// descending and inside the training schedule, as
// LCMScheduler.set_timesteps(timesteps=…) takes them.
func NewLCMWithTimesteps(cfg Config, timesteps []int) (*LCM, error) {
	l, err := newLCM(cfg)
	if err != nil {
		return nil, err
	}
	if len(timesteps) == 0 {
		return nil, fmt.Errorf("%w: no LCM timesteps", ErrConfig)
	}
	for i, t := range timesteps {
		if t < 0 || t >= len(l.alphasCumprod) {
			return nil, fmt.Errorf("%w: LCM timestep %d outside [0, %d)", ErrConfig, t, len(l.alphasCumprod))
		}
		if i > 0 && t >= timesteps[i-1] {
			return nil, fmt.Errorf("%w: LCM timesteps must descend: %d follows %d", ErrConfig, t, timesteps[i-1])
		}
	}
	l.setTimesteps(append([]int(nil), timesteps...))
	return l, nil
}

func newLCM(cfg Config) (*LCM, error) {
	// LCMScheduler's constructor defaults:
	c := resolveCommon(cfg, classDefaults{betaStart: 0.00085, betaEnd: 0.012, betaSchedule: "scaled_linear", spacing: "leading"})
	switch c.prediction {
	case "epsilon", "v_prediction", "sample":
	default:
		return nil, fmt.Errorf("%w: LCM with prediction_type %q", ErrUnsupported, c.prediction)
	}
	if cfg.Thresholding.Or(false) {
		return nil, fmt.Errorf("%w: LCM with dynamic thresholding", ErrUnsupported)
	}
	ns, err := newNoiseSchedule(c)
	if err != nil {
		return nil, err
	}
	return &LCM{
		prediction:    c.prediction,
		clip:          cfg.ClipSample.Or(false),
		clipRange:     float32(cfg.ClipSampleRange.Or(1)),
		scaling:       float32(cfg.TimestepScaling.Or(10)),
		alphasCumprod: ns.alphasCumprod,
	}, nil
}

func (l *LCM) setTimesteps(timesteps []int) {
	l.timesteps = timesteps
	l.stepper = stepper{steps: len(timesteps)}
}

// Timesteps implements Scheduler.
func (l *LCM) Timesteps() []float32 {
	out := make([]float32, len(l.timesteps))
	for i, t := range l.timesteps {
		out[i] = float32(t)
	}
	return out
}

// InitNoiseSigma implements Scheduler: LCM starts from unit noise.
func (l *LCM) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler: LCM does not scale the input.
func (l *LCM) ScaleModelInput(_ int, sample []float32) []float32 { return sample }

// Step implements Scheduler. It draws len(sample) noise values at every step
// but the last, as diffusers does.
func (l *LCM) Step(i int, modelOutput, sample []float32, noise Noise) ([]float32, error) {
	if err := l.begin(i, modelOutput, sample); err != nil {
		return nil, err
	}
	last := i == len(l.timesteps)-1
	var fresh []float32
	if !last {
		if noise == nil {
			return nil, fmt.Errorf("%w: LCM needs noise", ErrStep)
		}
		fresh = make([]float32, len(sample))
		if err := noise.Fill(fresh); err != nil {
			return nil, fmt.Errorf("schedulers: LCM step %d noise: %w", i, err)
		}
	}
	t := l.timesteps[i]
	prev := t
	if !last {
		prev = l.timesteps[i+1]
	}
	at, aPrev := l.alphasCumprod[t], l.alphasCumprod[prev]
	sqrtA, sqrtB := sqrt32(at), sqrt32(1-at)
	sqrtAPrev, sqrtBPrev := sqrt32(aPrev), sqrt32(1-aPrev)

	// Boundary condition with σ_data = 0.5 on the scaled timestep.
	scaled := float32(t) * l.scaling
	d := float32(scaled*scaled) + 0.25
	cSkip := 0.25 / d
	cOut := scaled / sqrt32(d)

	out := make([]float32, len(sample))
	for k, x := range sample {
		m := modelOutput[k]
		var x0 float32
		switch l.prediction {
		case "epsilon":
			x0 = (x - float32(sqrtB*m)) / sqrtA
		case "v_prediction":
			x0 = float32(sqrtA*x) - float32(sqrtB*m)
		default: // "sample"
			x0 = m
		}
		if l.clip {
			x0 = min(max(x0, -l.clipRange), l.clipRange)
		}
		denoised := float32(cOut*x0) + float32(cSkip*x)
		if last {
			out[k] = denoised
		} else {
			out[k] = float32(sqrtAPrev*denoised) + float32(sqrtBPrev*fresh[k])
		}
	}
	l.end()
	return out, nil
}
