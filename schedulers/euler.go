package schedulers

import (
	"fmt"
	"math"
)

// EulerAncestral is diffusers' EulerAncestralDiscreteScheduler: an Euler step
// of the probability-flow ODE down to σ_down followed by fresh noise of
// standard deviation σ_up, with σ_down² + σ_up² = σ_next². Hunyuan3D-Paint 2.0
// builds it from the checkpoint's config with timestep_spacing "trailing"
// (30 steps); the delight model uses its config unchanged (50 steps).
type EulerAncestral struct {
	stepper
	prediction string
	timesteps  []float32
	sigmas     []float32 // one per step, then 0
	initSigma  float32
}

// NewEulerAncestral builds the scheduler for steps inference steps.
func NewEulerAncestral(cfg Config, steps int) (*EulerAncestral, error) {
	// EulerAncestralDiscreteScheduler's constructor defaults:
	c := resolveCommon(cfg, classDefaults{betaStart: 0.0001, betaEnd: 0.02, betaSchedule: "linear", spacing: "linspace"})
	if c.prediction != "epsilon" && c.prediction != "v_prediction" {
		return nil, fmt.Errorf("%w: Euler Ancestral with prediction_type %q", ErrUnsupported, c.prediction)
	}
	ns, err := newNoiseSchedule(c)
	if err != nil {
		return nil, err
	}
	if err := checkSteps(steps, c.numTrain); err != nil {
		return nil, err
	}
	timesteps, err := eulerTimesteps(c, steps)
	if err != nil {
		return nil, err
	}
	train := ns.trainSigmas()
	sigmas := make([]float32, steps+1)
	var maxSigma float32
	for i, t := range timesteps {
		sigmas[i] = float32(interp(float64(t), train))
		if !(sigmas[i] > 0) {
			return nil, fmt.Errorf("%w: step %d has sigma %g; Euler divides by it", ErrConfig, i, sigmas[i])
		}
		maxSigma = max(maxSigma, sigmas[i])
	}
	initSigma := maxSigma
	if c.spacing == "leading" {
		initSigma = sqrt32(float32(maxSigma*maxSigma) + 1)
	}
	return &EulerAncestral{
		stepper:    stepper{steps: steps},
		prediction: c.prediction,
		timesteps:  timesteps,
		sigmas:     sigmas,
		initSigma:  initSigma,
	}, nil
}

// eulerTimesteps are EulerAncestralDiscreteScheduler.set_timesteps' float32
// timesteps for each spacing.
func eulerTimesteps(c common, steps int) ([]float32, error) {
	T := c.numTrain
	out := make([]float32, 0, steps)
	switch c.spacing {
	case "linspace":
		ramp := linspace64(0, float64(T-1), steps)
		for i := steps - 1; i >= 0; i-- {
			out = append(out, float32(ramp[i]))
		}
	case "leading":
		ratio := T / steps
		for i := steps - 1; i >= 0; i-- {
			out = append(out, float32(i*ratio)+float32(c.stepsOffset))
		}
	case "trailing":
		for _, t := range arangeDown(float64(T), float64(T)/float64(steps)) {
			out = append(out, float32(math.RoundToEven(t))-1)
		}
	default:
		return nil, fmt.Errorf("%w: timestep_spacing %q", ErrConfig, c.spacing)
	}
	if len(out) != steps {
		return nil, fmt.Errorf("%w: %q spacing gives %d timesteps for %d steps", ErrUnsupported, c.spacing, len(out), steps)
	}
	return out, nil
}

// Timesteps implements Scheduler.
func (e *EulerAncestral) Timesteps() []float32 { return e.timesteps }

// InitNoiseSigma implements Scheduler: the largest sigma, or (σ_max² + 1)^½
// for "leading" spacing.
func (e *EulerAncestral) InitNoiseSigma() float32 { return e.initSigma }

// ScaleModelInput implements Scheduler: sample / (σ² + 1)^½.
func (e *EulerAncestral) ScaleModelInput(i int, sample []float32) []float32 {
	s := e.sigmas[i]
	d := sqrt32(float32(s*s) + 1)
	out := make([]float32, len(sample))
	for k, v := range sample {
		out[k] = v / d
	}
	return out
}

// Step implements Scheduler. It draws len(sample) noise values at every
// step, the last one included (where σ_up is 0), as diffusers does, so that
// a seeded source stays in step with a reference run.
func (e *EulerAncestral) Step(i int, modelOutput, sample []float32, noise Noise) ([]float32, error) {
	if err := e.begin(i, modelOutput, sample); err != nil {
		return nil, err
	}
	if noise == nil {
		return nil, fmt.Errorf("%w: Euler Ancestral needs noise", ErrStep)
	}
	fresh := make([]float32, len(sample))
	if err := noise.Fill(fresh); err != nil {
		return nil, fmt.Errorf("schedulers: Euler Ancestral step %d noise: %w", i, err)
	}
	sigma, next := e.sigmas[i], e.sigmas[i+1]
	s2, n2 := float32(sigma*sigma), float32(next*next)
	up := sqrt32(n2 * (s2 - n2) / s2)
	down := sqrt32(n2 - float32(up*up))
	dt := down - sigma
	// v-prediction: x₀ = m·(−σ/(σ²+1)^½) + x/(σ²+1).
	vOut := -sigma / sqrt32(s2+1)
	vSkip := s2 + 1
	out := make([]float32, len(sample))
	for k, x := range sample {
		m := modelOutput[k]
		var x0 float32
		if e.prediction == "epsilon" {
			x0 = x - float32(sigma*m)
		} else {
			x0 = float32(m*vOut) + x/vSkip
		}
		derivative := (x - x0) / sigma
		prev := x + float32(derivative*dt)
		out[k] = prev + float32(fresh[k]*up)
	}
	e.end()
	return out, nil
}
