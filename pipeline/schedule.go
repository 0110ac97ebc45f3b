package pipeline

import (
	"fmt"
	"math"
)

// Sampler kinds and guidance modes as named in manifest.json.
const (
	KindFlowEuler   = "flow_euler"
	KindConsistency = "consistency"

	GuidanceCFG      = "cfg"
	GuidanceEmbedded = "embedded"
)

// trainTimesteps is num_train_timesteps of both Hunyuan3D schedulers.
const trainTimesteps = 1000

// Schedule returns the N+1 noise levels σ of an N-step run (σ=0 is pure
// noise, σ=1 is data; step i moves x from σ[i] to σ[i+1]). The values are
// float32 because that is what Hunyuan3D's schedulers hold and step with.
func Schedule(kind string, steps, pcmTimesteps int) ([]float32, error) {
	if steps < 1 {
		return nil, fmt.Errorf("steps %d < 1", steps)
	}
	switch kind {
	case KindFlowEuler, "":
		return flowSchedule(steps), nil
	case KindConsistency:
		if pcmTimesteps < 1 || pcmTimesteps > trainTimesteps {
			return nil, fmt.Errorf("consistency sampler: pcm_timesteps %d outside [1, %d]", pcmTimesteps, trainTimesteps)
		}
		if steps > pcmTimesteps {
			return nil, fmt.Errorf("consistency sampler: %d steps > pcm_timesteps %d", steps, pcmTimesteps)
		}
		return consistencySchedule(steps, pcmTimesteps), nil
	default:
		return nil, fmt.Errorf("unknown sampler kind %q", kind)
	}
}

// flowSchedule matches Hunyuan3DDiTFlowMatchingPipeline.__call__ (hy3dgen/
// shapegen/pipelines.py, identical in 2.1's hy3dshape), which passes
// sigmas = np.linspace(0, 1, N) to FlowMatchEulerDiscreteScheduler.
// set_timesteps (schedulers.py); with shift 1 the scheduler keeps them, casts
// them to float32 and appends 1.0. numpy's linspace computes i·(1/(N−1)) in
// float64 and pins the last value to the end point, and so do we.
func flowSchedule(n int) []float32 {
	s := make([]float32, n+1)
	if n > 1 {
		step := 1.0 / float64(n-1)
		for i := 0; i < n-1; i++ {
			s[i] = float32(float64(i) * step)
		}
		s[n-1] = 1
	}
	s[n] = 1
	return s
}

// consistencySchedule matches ConsistencyFlowMatchEulerDiscreteScheduler
// (schedulers.py), the scheduler of the turbo checkpoints: its table holds
// σ = linspace(0, 1, 1000) at the Euler timesteps [0, r−1, 2r−1, …] with
// r = 1000 // pcm_timesteps, set_timesteps picks the entries at
// floor(linspace(0, pcm_timesteps, N, endpoint=False)) (it only uses the
// length of the sigmas the pipeline passes), casts to float32 and appends 1.
func consistencySchedule(n, pcm int) []float32 {
	ratio := trainTimesteps / pcm
	unit := 1.0 / float64(trainTimesteps-1) // linspace(0, 1, 1000) step
	stride := float64(pcm) / float64(n)     // linspace(0, pcm, n, endpoint=False) step
	s := make([]float32, n+1)
	for i := 0; i < n; i++ {
		k := int(math.Floor(float64(i) * stride))
		t := 0
		if k > 0 {
			t = k*ratio - 1
		}
		s[i] = float32(float64(t) * unit)
	}
	s[n] = 1
	return s
}

// eulerStep advances x by one flow-matching Euler step in place:
// x += (σ_next − σ)·v, in float32 like FlowMatchEulerDiscreteScheduler.step.
// The explicit conversions keep the compiler from fusing the multiply-add,
// so results do not depend on the target's FMA support.
func eulerStep(x, v []float32, sigma, sigmaNext float32) {
	dt := sigmaNext - sigma
	for i := range x {
		x[i] = x[i] + float32(dt*v[i])
	}
}

// cfgCombine writes the guided velocity u + s·(c − u) into dst, matching
// noise_pred_uncond + guidance_scale * (noise_pred_cond − noise_pred_uncond)
// in Hunyuan3DDiTFlowMatchingPipeline.__call__, rounded per operation.
func cfgCombine(dst, cond, uncond []float32, scale float32) {
	for i := range dst {
		dst[i] = uncond[i] + float32(scale*float32(cond[i]-uncond[i]))
	}
}
