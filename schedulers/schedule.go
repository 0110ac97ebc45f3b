package schedulers

import (
	"fmt"
	"math"
)

// noiseSchedule is the training noise schedule every scheduler starts from,
// stored in float32 as diffusers stores it.
type noiseSchedule struct {
	numTrain      int
	alphasCumprod []float32
}

// common are the keys every scheduler here takes, resolved against the
// defaults of the class being built.
type common struct {
	numTrain     int
	betaStart    float64
	betaEnd      float64
	betaSchedule string
	trainedBetas []float64
	prediction   string
	spacing      string
	stepsOffset  int
	zeroSNR      bool
}

// classDefaults are a diffusers class's defaults for the common keys.
type classDefaults struct {
	betaStart, betaEnd float64
	betaSchedule       string
	spacing            string
}

func resolveCommon(c Config, d classDefaults) common {
	return common{
		numTrain:     c.NumTrainTimesteps.Or(1000),
		betaStart:    c.BetaStart.Or(d.betaStart),
		betaEnd:      c.BetaEnd.Or(d.betaEnd),
		betaSchedule: c.BetaSchedule.Or(d.betaSchedule),
		trainedBetas: c.TrainedBetas.Or(nil),
		prediction:   c.PredictionType.Or("epsilon"),
		spacing:      c.TimestepSpacing.Or(d.spacing),
		stepsOffset:  c.StepsOffset.Or(0),
		zeroSNR:      c.RescaleBetasZeroSNR.Or(false),
	}
}

// newNoiseSchedule computes alphas_cumprod as diffusers' constructors do:
// float32 betas, optionally rescaled to zero terminal SNR, and a cumulative
// product that PyTorch's CPU kernel accumulates in float64 and stores in
// float32. With zero terminal SNR the last entry is 2⁻²⁴, diffusers' stand-in
// for zero that keeps the first sigma finite.
func newNoiseSchedule(c common) (noiseSchedule, error) {
	n := c.numTrain
	betas := make([]float32, n)
	switch {
	case c.trainedBetas != nil:
		if len(c.trainedBetas) != n {
			return noiseSchedule{}, fmt.Errorf("%w: trained_betas has %d values for %d training steps", ErrConfig, len(c.trainedBetas), n)
		}
		for i, b := range c.trainedBetas {
			betas[i] = float32(b)
		}
	case c.betaSchedule == "linear":
		copy(betas, linspace32(c.betaStart, c.betaEnd, n))
	case c.betaSchedule == "scaled_linear":
		for i, r := range linspace32(math.Sqrt(c.betaStart), math.Sqrt(c.betaEnd), n) {
			betas[i] = float32(r * r)
		}
	case c.betaSchedule == "squaredcos_cap_v2":
		copy(betas, cosineBetas(n))
	default:
		return noiseSchedule{}, fmt.Errorf("%w: beta_schedule %q", ErrConfig, c.betaSchedule)
	}
	for i, b := range betas {
		if !(b >= 0 && b < 1) {
			return noiseSchedule{}, fmt.Errorf("%w: beta %d is %g, outside [0, 1)", ErrConfig, i, b)
		}
	}
	if c.zeroSNR {
		var err error
		if betas, err = rescaleZeroTerminalSNR(betas); err != nil {
			return noiseSchedule{}, err
		}
	}
	ac := cumprod(oneMinus(betas))
	if c.zeroSNR {
		ac[n-1] = 0x1p-24
	}
	if !(ac[n-1] > 0) {
		return noiseSchedule{}, fmt.Errorf("%w: the noise schedule reaches alphas_cumprod 0, so its sigmas are infinite", ErrConfig)
	}
	return noiseSchedule{numTrain: n, alphasCumprod: ac}, nil
}

// linspace32 is torch.linspace(start, end, n, dtype=float32) up to one unit
// in the last place: the ramp is computed in float64 and rounded once, where
// PyTorch's vectorised kernel rounds differently depending on the CPU it
// runs on.
func linspace32(start, end float64, n int) []float32 {
	out := make([]float32, n)
	if n == 1 {
		out[0] = float32(start)
		return out
	}
	for i := range out {
		out[i] = float32(start + (end-start)*float64(i)/float64(n-1))
	}
	out[n-1] = float32(end)
	return out
}

// cosineBetas is the Glide cosine schedule ("squaredcos_cap_v2"), computed in
// float64 as diffusers does and stored in float32.
func cosineBetas(n int) []float32 {
	alphaBar := func(t float64) float64 {
		c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
		return c * c
	}
	out := make([]float32, n)
	for i := range out {
		t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
		out[i] = float32(math.Min(1-alphaBar(t2)/alphaBar(t1), 0.999))
	}
	return out
}

func oneMinus(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = 1 - v
	}
	return out
}

// cumprod is torch.cumprod on a float32 CPU tensor: a float64 running
// product, each prefix rounded to float32.
func cumprod(x []float32) []float32 {
	out := make([]float32, len(x))
	p := 1.0
	for i, v := range x {
		p *= float64(v)
		out[i] = float32(p)
	}
	return out
}

// rescaleZeroTerminalSNR shifts and scales sqrt(alphas_cumprod) so that the
// last is zero and the first unchanged (Lin et al. 2023, algorithm 1), in
// float32 operations in diffusers' order.
func rescaleZeroTerminalSNR(betas []float32) ([]float32, error) {
	n := len(betas)
	sq := cumprod(oneMinus(betas))
	for i, v := range sq {
		sq[i] = sqrt32(v)
	}
	first, last := sq[0], sq[n-1]
	span := first - last
	if !(span > 0) {
		return nil, fmt.Errorf("%w: rescale_betas_zero_snr needs a decreasing schedule", ErrConfig)
	}
	scale := first / span
	for i := range sq {
		sq[i] = (sq[i] - last) * scale
		sq[i] *= sq[i]
	}
	out := make([]float32, n)
	out[0] = 1 - sq[0]
	for i := 1; i < n; i++ {
		out[i] = 1 - sq[i]/sq[i-1]
	}
	return out, nil
}

// sqrt32 is a correctly rounded float32 square root (the float64 root of a
// float32 rounds to the same value as a float32 root).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// log32 and expm1_32 round Go's float64 functions to float32; glibc's
// logf/expm1f, which PyTorch calls on 0-dim tensors, differ from them by at
// most one unit in the last place.
func log32(x float32) float32    { return float32(math.Log(float64(x))) }
func expm1_32(x float32) float32 { return float32(math.Expm1(float64(x))) }

// trainSigmas is ((1 − ᾱ) / ᾱ)^½ for every training step, in float32.
func (s noiseSchedule) trainSigmas() []float32 {
	out := make([]float32, len(s.alphasCumprod))
	for i, a := range s.alphasCumprod {
		out[i] = sqrt32((1 - a) / a)
	}
	return out
}

// arangeDown is numpy.arange(start, 0, -step) for a positive float step:
// numpy fills start + i·δ with δ = (start − step) − start, and its length is
// ceil(start / step).
func arangeDown(start, step float64) []float64 {
	n := int(math.Ceil(start / step))
	out := make([]float64, n)
	delta := (start - step) - start
	for i := range out {
		switch i {
		case 0:
			out[i] = start
		case 1:
			out[i] = start - step
		default:
			out[i] = start + float64(float64(i)*delta)
		}
	}
	return out
}

// linspace64 is numpy.linspace(start, stop, n) (endpoint included): i·step +
// start with the last value set to stop.
func linspace64(start, stop float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(n-1)
	for i := range out {
		out[i] = float64(float64(i)*step) + start
	}
	out[n-1] = stop
	return out
}

// interp is numpy.interp(x, [0, 1, …, len(fp)−1], fp) in float64: exact at
// the knots, clamped outside them.
func interp(x float64, fp []float32) float64 {
	last := len(fp) - 1
	switch {
	case x <= 0:
		return float64(fp[0])
	case x >= float64(last):
		return float64(fp[last])
	}
	j := int(math.Floor(x))
	if float64(j) == x {
		return float64(fp[j])
	}
	slope := float64(fp[j+1]) - float64(fp[j])
	return float64(slope*(x-float64(j))) + float64(fp[j])
}

// checkSteps validates a number of inference steps against the schedule.
func checkSteps(steps, numTrain int) error {
	if steps < 1 || steps > numTrain {
		return fmt.Errorf("%w: %d inference steps, want 1 to %d", ErrConfig, steps, numTrain)
	}
	return nil
}
