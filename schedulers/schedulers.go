// Package schedulers owns the diffusion samplers of Hunyuan3D-Paint, ported
// from the diffusers classes Tencent's pipelines call: Euler Ancestral (2.0
// paint, timestep_spacing "trailing", and the delight model), LCM with the
// turbo model's own ten timesteps (2.0-turbo), and UniPC multistep (bh2,
// order 2, trailing; 2.1 paint). It reads a checkpoint's
// scheduler_config.json (ParseConfig) the way diffusers' from_config does:
// keys the target class does not take are ignored and missing keys take that
// class's defaults. Every scheduler that draws noise takes it from a Noise,
// so a caller can inject the exact tensors a reference run drew. The
// arithmetic repeats diffusers' float32 operations in diffusers' order, so
// that the goldens in testdata/golden, written by tools/make-scheduler-goldens
// from diffusers v0.30.0 run on the CPU, match to a few units in the last
// place (docs/schedulers.md: the command, the cases, the tolerance).
package schedulers

import (
	"errors"
	"fmt"
)

// Scheduler is one job's denoising plan and, for multistep solvers, its
// state. Step i takes the model's output at Timesteps()[i] and the sample the
// model saw (before ScaleModelInput) and returns the next sample. Steps must
// be taken in order, once each; a Scheduler serves one job at a time.
type Scheduler interface {
	// Timesteps are the timestep inputs of the model, in call order.
	Timesteps() []float32
	// InitNoiseSigma is the factor the initial standard normal latents are
	// multiplied by.
	InitNoiseSigma() float32
	// ScaleModelInput returns the sample as the model receives it at step i.
	ScaleModelInput(i int, sample []float32) []float32
	// Step advances the sample past step i. noise may be nil for schedulers
	// that draw none (UniPC).
	Step(i int, modelOutput, sample []float32, noise Noise) ([]float32, error)
}

// Errors a caller can test for with errors.Is.
var (
	// ErrConfig marks a scheduler_config.json that cannot be read or asks for
	// a value this package refuses (out of range, unknown name).
	ErrConfig = errors.New("schedulers: invalid scheduler config")
	// ErrUnsupported marks a valid diffusers option this port does not
	// implement (Karras sigmas, dynamic thresholding, solver orders above 2).
	ErrUnsupported = errors.New("schedulers: unsupported scheduler option")
	// ErrStep marks a misuse of Step: out of order, or tensors whose sizes
	// differ.
	ErrStep = errors.New("schedulers: invalid step")
)

// stepper tracks the index the next Step must have and checks the tensors
// it is given; every scheduler embeds one.
type stepper struct {
	next  int
	steps int
}

func (s *stepper) begin(i int, modelOutput, sample []float32) error {
	if i != s.next || i >= s.steps {
		return fmt.Errorf("%w: step %d, expected step %d of %d", ErrStep, i, s.next, s.steps)
	}
	if len(modelOutput) != len(sample) || len(sample) == 0 {
		return fmt.Errorf("%w: model output has %d values, sample %d", ErrStep, len(modelOutput), len(sample))
	}
	return nil
}

func (s *stepper) end() { s.next++ }
