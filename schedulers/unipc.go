package schedulers

import (
	"fmt"
	"math"
	"slices"
)

// UniPC is diffusers' UniPCMultistepScheduler (Zhao et al. 2023) for solver
// orders 1 and 2: a multistep predictor (UniP) in the half-log-SNR λ, and from
// the second step on a corrector (UniC) that refines the previous step's
// result with the new model output before predicting. Hunyuan3D-Paint 2.1
// builds it from the checkpoint's config with timestep_spacing "trailing"
// and takes 15 steps; the defaults are bh2, order 2, x₀ prediction, lower
// order on the final step.
type UniPC struct {
	stepper
	prediction       string
	predictX0        bool
	bh2              bool
	order            int
	lowerOrderFinal  bool
	disableCorrector []int
	timesteps        []int
	sigmas           []float32 // one per step, then the final sigma

	// The solver's memory: converted model outputs of the last `order` steps
	// (newest last) and the sample the last predictor started from.
	outputs    [][]float32
	lastSample []float32
	lastOrder  int
	warm       int
}

// NewUniPC builds the scheduler for steps inference steps.
func NewUniPC(cfg Config, steps int) (*UniPC, error) {
	// UniPCMultistepScheduler's constructor defaults:
	c := resolveCommon(cfg, classDefaults{betaStart: 0.0001, betaEnd: 0.02, betaSchedule: "linear", spacing: "linspace"})
	switch c.prediction {
	case "epsilon", "v_prediction", "sample":
	default:
		return nil, fmt.Errorf("%w: UniPC with prediction_type %q", ErrUnsupported, c.prediction)
	}
	order := cfg.SolverOrder.Or(2)
	if order > 2 {
		return nil, fmt.Errorf("%w: UniPC solver_order %d (1 and 2 are ported)", ErrUnsupported, order)
	}
	if cfg.Thresholding.Or(false) {
		return nil, fmt.Errorf("%w: UniPC with dynamic thresholding", ErrUnsupported)
	}
	if cfg.UseKarrasSigmas.Or(false) {
		return nil, fmt.Errorf("%w: UniPC with Karras sigmas", ErrUnsupported)
	}
	predictX0, finalSigmas := cfg.PredictX0.Or(true), cfg.FinalSigmasType.Or("zero")
	if !predictX0 && finalSigmas == "zero" {
		// The noise-prediction update divides by the final σ = 0: diffusers
		// returns NaN from the last step.
		return nil, fmt.Errorf("%w: UniPC with predict_x0 false needs final_sigmas_type sigma_min", ErrUnsupported)
	}
	ns, err := newNoiseSchedule(c)
	if err != nil {
		return nil, err
	}
	if err := checkSteps(steps, c.numTrain); err != nil {
		return nil, err
	}
	timesteps, err := unipcTimesteps(c, steps)
	if err != nil {
		return nil, err
	}
	train := ns.trainSigmas()
	sigmas := make([]float32, steps+1)
	for i, t := range timesteps {
		sigmas[i] = float32(interp(float64(t), train))
	}
	switch finalSigmas {
	case "zero":
		sigmas[steps] = 0
	case "sigma_min":
		sigmas[steps] = train[0]
	}
	return &UniPC{
		stepper:          stepper{steps: steps},
		prediction:       c.prediction,
		predictX0:        predictX0,
		bh2:              cfg.SolverType.Or("bh2") != "bh1", // diffusers maps midpoint, heun and logrho to bh2
		order:            order,
		lowerOrderFinal:  cfg.LowerOrderFinal.Or(true),
		disableCorrector: cfg.DisableCorrector.Or(nil),
		timesteps:        timesteps,
		sigmas:           sigmas,
	}, nil
}

// unipcTimesteps are UniPCMultistepScheduler.set_timesteps' integer
// timesteps for each spacing (which differ from Euler's for linspace and
// leading: UniPC drops the last of steps+1 points).
func unipcTimesteps(c common, steps int) ([]int, error) {
	T := c.numTrain
	var out []int
	switch c.spacing {
	case "linspace":
		ramp := linspace64(0, float64(T-1), steps+1)
		for i := steps; i >= 1; i-- {
			out = append(out, int(math.RoundToEven(ramp[i])))
		}
	case "leading":
		ratio := T / (steps + 1)
		for i := steps; i >= 1; i-- {
			out = append(out, i*ratio+c.stepsOffset)
		}
	case "trailing":
		for _, t := range arangeDown(float64(T), float64(T)/float64(steps)) {
			out = append(out, int(math.RoundToEven(t))-1)
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
func (u *UniPC) Timesteps() []float32 {
	out := make([]float32, len(u.timesteps))
	for i, t := range u.timesteps {
		out[i] = float32(t)
	}
	return out
}

// InitNoiseSigma implements Scheduler: UniPC starts from unit noise.
func (u *UniPC) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler: UniPC does not scale the input.
func (u *UniPC) ScaleModelInput(_ int, sample []float32) []float32 { return sample }

// alphaSigmaLambda gives α_t = 1/(σ²+1)^½, σ_t = σ·α_t and λ = ln α_t − ln σ_t
// for a sigma of the schedule.
func (u *UniPC) alphaSigmaLambda(i int) (alpha, sigma, lambda float32) {
	s := u.sigmas[i]
	alpha = 1 / sqrt32(float32(s*s)+1)
	sigma = s * alpha
	return alpha, sigma, log32(alpha) - log32(sigma)
}

// Step implements Scheduler; noise is not used.
func (u *UniPC) Step(i int, modelOutput, sample []float32, _ Noise) ([]float32, error) {
	if err := u.begin(i, modelOutput, sample); err != nil {
		return nil, err
	}
	converted := u.convert(i, modelOutput, sample)
	if i > 0 && u.lastSample != nil && !slices.Contains(u.disableCorrector, i-1) {
		sample = u.correct(i, converted)
	}
	u.outputs = append(u.outputs, converted)
	if len(u.outputs) > u.order {
		u.outputs = u.outputs[1:]
	}
	order := u.order
	if u.lowerOrderFinal {
		order = min(order, len(u.timesteps)-i)
	}
	order = min(order, u.warm+1)
	u.lastOrder = order
	u.lastSample = sample
	out := u.predict(i, sample, order)
	if u.warm < u.order {
		u.warm++
	}
	u.end()
	return out, nil
}

// convert turns the model output at step i into the x₀ (or ε) prediction the
// solver works on.
func (u *UniPC) convert(i int, m, x []float32) []float32 {
	alpha, sigma, _ := u.alphaSigmaLambda(i)
	out := make([]float32, len(m))
	for k := range m {
		switch {
		case u.predictX0 && u.prediction == "epsilon":
			out[k] = (x[k] - float32(sigma*m[k])) / alpha
		case u.predictX0 && u.prediction == "v_prediction":
			out[k] = float32(alpha*x[k]) - float32(sigma*m[k])
		case u.predictX0: // sample
			out[k] = m[k]
		case u.prediction == "epsilon":
			out[k] = m[k]
		case u.prediction == "v_prediction":
			out[k] = float32(alpha*m[k]) + float32(sigma*x[k])
		default: // sample, as ε
			out[k] = (x[k] - float32(alpha*m[k])) / sigma
		}
	}
	return out
}

// bCoefficients are UniPC's h·φ_1(h) and the b_k of its order conditions,
// with B(h) = e^h − 1 (bh2) or h (bh1), for the step from λ_s0 to λ_t.
func (u *UniPC) bCoefficients(h float32, order int) (hPhi1, bh float32, b []float32) {
	hh := h
	if u.predictX0 {
		hh = -h
	}
	hPhi1 = expm1_32(hh)
	hPhiK := hPhi1/hh - 1
	bh = hh
	if u.bh2 {
		bh = expm1_32(hh)
	}
	factorial := 1
	for k := 1; k <= order; k++ {
		b = append(b, hPhiK*float32(factorial)/bh)
		factorial *= k + 1
		hPhiK = hPhiK/hh - float32(1/float64(factorial))
	}
	return hPhi1, bh, b
}

// base is the first-order update shared by predictor and corrector: from x
// at schedule index s to index t, with m0 the newest converted output.
func (u *UniPC) base(s, t int, x, m0 []float32, hPhi1 float32) []float32 {
	alphaT, sigmaT, _ := u.alphaSigmaLambda(t)
	alphaS, sigmaS, _ := u.alphaSigmaLambda(s)
	out := make([]float32, len(x))
	if u.predictX0 {
		r, c := sigmaT/sigmaS, alphaT*hPhi1
		for k := range x {
			out[k] = float32(r*x[k]) - float32(c*m0[k])
		}
	} else {
		r, c := alphaT/alphaS, sigmaT*hPhi1
		for k := range x {
			out[k] = float32(r*x[k]) - float32(c*m0[k])
		}
	}
	return out
}

// outerScale is α_t·B(h) for x₀ prediction, σ_t·B(h) otherwise: the factor
// of the higher-order terms.
func (u *UniPC) outerScale(t int, bh float32) float32 {
	alpha, sigma, _ := u.alphaSigmaLambda(t)
	if u.predictX0 {
		return alpha * bh
	}
	return sigma * bh
}

// predict is the UniP step from schedule index i to i+1.
func (u *UniPC) predict(i int, x []float32, order int) []float32 {
	m0 := u.outputs[len(u.outputs)-1]
	_, _, lambdaT := u.alphaSigmaLambda(i + 1)
	_, _, lambdaS0 := u.alphaSigmaLambda(i)
	h := lambdaT - lambdaS0
	hPhi1, bh, _ := u.bCoefficients(h, order)
	out := u.base(i, i+1, x, m0, hPhi1)
	if order == 2 {
		// The order-2 predictor's ρ is ½ in diffusers, not the solution of
		// its one-by-one order condition.
		m1 := u.outputs[len(u.outputs)-2]
		_, _, lambdaS1 := u.alphaSigmaLambda(i - 1)
		rk := (lambdaS1 - lambdaS0) / h
		scale := u.outerScale(i+1, bh)
		for k := range out {
			d1 := (m1[k] - m0[k]) / rk
			out[k] -= float32(scale * float32(0.5*d1))
		}
	}
	return out
}

// correct is the UniC step: it recomputes the update from the previous
// step's starting sample to step i with the new converted output mt; the
// result replaces the sample the model saw.
func (u *UniPC) correct(i int, mt []float32) []float32 {
	order := u.lastOrder
	m0 := u.outputs[len(u.outputs)-1]
	_, _, lambdaT := u.alphaSigmaLambda(i)
	_, _, lambdaS0 := u.alphaSigmaLambda(i - 1)
	h := lambdaT - lambdaS0
	hPhi1, bh, b := u.bCoefficients(h, order)
	out := u.base(i-1, i, u.lastSample, m0, hPhi1)
	var rhoPrev, rhoNew float32
	var m1 []float32
	var rk float32
	if order == 1 {
		rhoNew = 0.5
	} else {
		m1 = u.outputs[len(u.outputs)-2]
		_, _, lambdaS1 := u.alphaSigmaLambda(i - 2)
		rk = (lambdaS1 - lambdaS0) / h
		rhoPrev, rhoNew = solve2(rk, b[0], b[1])
	}
	scale := u.outerScale(i, bh)
	for k := range out {
		var res float32
		if m1 != nil {
			res = float32(rhoPrev * ((m1[k] - m0[k]) / rk))
		}
		res += float32(rhoNew * (mt[k] - m0[k]))
		out[k] -= float32(scale * res)
	}
	return out
}

// solve2 solves [[1, 1], [rk, 1]]·ρ = b, the order-2 corrector's order
// conditions, in float64 (diffusers calls LAPACK's float32 solver, whose
// rounding depends on the BLAS build).
func solve2(rk, b0, b1 float32) (float32, float32) {
	r, p, q := float64(rk), float64(b0), float64(b1)
	det := 1 - r
	return float32((p - q) / det), float32((q - float64(r*p)) / det)
}
