package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// SampleParams are the per-job sampling parameters.
type SampleParams struct {
	Steps    int
	Guidance float64 // CFG scale s, or the scale fed to a guidance-distilled DiT
	Seed     uint64
}

// SampleState is one job's position in the sampling loop: its latents, its
// σ schedule and the index of its next step. A Sampler advances any set of
// states by one step each in shared DiT calls, so jobs that started at
// different times ride in the same batch. A state belongs to one goroutine
// at a time.
type SampleState struct {
	latents  []float32 // x, L·C
	cond     []float32 // conditioner output, T·D
	sigmas   []float32 // N+1 noise levels
	step     int
	guidance float32
	// OnStep, when set, is called after every step with the number of steps
	// done and the total; it runs on the goroutine calling Step.
	OnStep func(done, total int)
}

// Done reports whether every step has run.
func (s *SampleState) Done() bool { return s.step >= len(s.sigmas)-1 }

// StepIndex is the number of steps done.
func (s *SampleState) StepIndex() int { return s.step }

// Steps is the total number of steps.
func (s *SampleState) Steps() int { return len(s.sigmas) - 1 }

// Sigma is the noise level the latents are at.
func (s *SampleState) Sigma() float32 { return s.sigmas[s.step] }

// Latents are the current latents x, [L, C] row-major; final once Done.
func (s *SampleState) Latents() []float32 { return s.latents }

// Sampler runs Hunyuan3D's flow-matching sampler over one DiT engine.
type Sampler struct {
	dit      Engine
	kind     string
	cfg      bool // batch [cond; zeros] and combine; else feed guidance to the graph
	pcm      int
	maxBatch int
	l, c     int // latent tokens, channels
	t, d     int // cond tokens, dim
}

// NewSampler checks the DiT against the manifest and returns its sampler.
// The manifest chooses the schedule (Sampler.Kind) and how guidance is
// applied (Sampler.Guidance).
func NewSampler(dit Engine, m *engines.Manifest) (*Sampler, error) {
	s := &Sampler{
		dit:  dit,
		kind: m.Sampler.Kind,
		pcm:  m.Sampler.PCMTimesteps,
		l:    m.Tokens.LatentTokens, c: m.Tokens.LatentChannels,
		t: m.Tokens.CondTokens, d: m.Tokens.CondDim,
		maxBatch: maxBatch(dit, m.Graphs[engines.DiT]),
	}
	switch m.Sampler.Guidance {
	case GuidanceCFG:
		s.cfg = true
		if s.maxBatch < 2 {
			return nil, fmt.Errorf("dit: classifier-free guidance needs batch 2, engine takes %d", s.maxBatch)
		}
	case GuidanceEmbedded:
	default:
		return nil, fmt.Errorf("sampler guidance %q: want %q or %q", m.Sampler.Guidance, GuidanceCFG, GuidanceEmbedded)
	}
	if _, err := Schedule(s.kind, 1, s.pcm); err != nil {
		return nil, err
	}
	if s.l < 1 || s.c < 1 || s.t < 1 || s.d < 1 {
		return nil, fmt.Errorf("manifest tokens %+v: every size must be positive", m.Tokens)
	}
	names := map[string]bool{}
	for _, in := range dit.Inputs() {
		names[in.Name] = true
	}
	want := []string{"latents", "timestep", "cond"}
	if !s.cfg {
		want = append(want, "guidance")
	}
	for _, n := range want {
		if !names[n] {
			return nil, fmt.Errorf("dit has no input %q (guidance %q): %w", n, m.Sampler.Guidance, tensor.ErrMissingInput)
		}
	}
	return s, nil
}

// NewState starts a job at step 0 from the seeded noise. cond is the
// conditioner's output for the job, [T, D]; it is kept, not copied.
func (s *Sampler) NewState(cond []float32, p SampleParams) (*SampleState, error) {
	if len(cond) != s.t*s.d {
		return nil, fmt.Errorf("cond has %d values, want %d×%d: %w", len(cond), s.t, s.d, tensor.ErrShape)
	}
	if math.IsNaN(p.Guidance) || math.IsInf(p.Guidance, 0) {
		return nil, fmt.Errorf("guidance %v is not finite", p.Guidance)
	}
	sig, err := Schedule(s.kind, p.Steps, s.pcm)
	if err != nil {
		return nil, err
	}
	st := &SampleState{
		latents:  make([]float32, s.l*s.c),
		cond:     cond,
		sigmas:   sig,
		guidance: float32(p.Guidance),
	}
	Noise(st.latents, p.Seed)
	return st, nil
}

// Step advances every state that is not done by one step. States whose step
// has σ_next = σ (the last flow step: Hunyuan3D's schedule ends 1.0, 1.0,
// so its update is x + 0·v) advance without a DiT call. The others are packed
// into DiT calls of at most MaxBatch rows — two rows per job with
// classifier-free guidance, laid out [x₁…x_k; x₁…x_k] against
// [cond₁…cond_k; zeros] as Hunyuan3D's encode_cond concatenates them — each
// row with its own timestep σ. The graph takes σ ∈ [0, 1]: in
// Hunyuan3DDiTFlowMatchingPipeline.__call__ the scheduler's timesteps are
// t = σ·1000 and the DiT gets t / num_train_timesteps, which is σ up to
// float rounding (2.0's Flux-style DiT scales it by time_factor 1000 inside,
// hunyuan3ddit.py). Either every state advances or, on error, none does.
func (s *Sampler) Step(ctx context.Context, states []*SampleState) error {
	seen := make(map[*SampleState]bool, len(states))
	var run []*SampleState
	for _, st := range states {
		if seen[st] {
			return errors.New("sampler: the same state twice in one step")
		}
		seen[st] = true
		if !st.Done() && st.sigmas[st.step+1] != st.sigmas[st.step] {
			run = append(run, st)
		}
	}
	rowsPerJob := 1
	if s.cfg {
		rowsPerJob = 2
	}
	perCall := s.maxBatch / rowsPerJob
	vel := make([][]float32, len(run))
	for lo := 0; lo < len(run); lo += perCall {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+perCall, len(run))
		if err := s.call(ctx, run[lo:hi], vel[lo:hi]); err != nil {
			return err
		}
	}
	vi := 0
	for _, st := range states {
		if st.Done() {
			continue
		}
		if vi < len(run) && run[vi] == st {
			eulerStep(st.latents, vel[vi], st.sigmas[st.step], st.sigmas[st.step+1])
			vi++
		}
		st.step++
		if st.OnStep != nil {
			st.OnStep(st.step, st.Steps())
		}
	}
	return nil
}

// call runs the DiT once for jobs and stores each job's (guided) velocity.
func (s *Sampler) call(ctx context.Context, jobs []*SampleState, vel [][]float32) error {
	k := len(jobs)
	rows := k
	if s.cfg {
		rows = 2 * k
	}
	lc, td := s.l*s.c, s.t*s.d
	lat := make([]float32, rows*lc)
	ts := make([]float32, rows)
	cond := make([]float32, rows*td) // the unconditional rows stay zero
	for i, st := range jobs {
		copy(lat[i*lc:], st.latents)
		copy(cond[i*td:], st.cond)
		ts[i] = st.sigmas[st.step]
		if s.cfg {
			copy(lat[(k+i)*lc:], st.latents)
			ts[k+i] = ts[i]
		}
	}
	in := []tensor.Tensor{
		{Name: "latents", Shape: []int64{int64(rows), int64(s.l), int64(s.c)}, Data: lat},
		{Name: "timestep", Shape: []int64{int64(rows)}, Data: ts},
		{Name: "cond", Shape: []int64{int64(rows), int64(s.t), int64(s.d)}, Data: cond},
	}
	if !s.cfg {
		g := make([]float32, rows)
		for i, st := range jobs {
			g[i] = st.guidance
		}
		in = append(in, tensor.Tensor{Name: "guidance", Shape: []int64{int64(rows)}, Data: g})
	}
	out, err := run(ctx, s.dit, engines.DiT, "velocity", rows*lc, in...)
	if err != nil {
		return err
	}
	for i, st := range jobs {
		v := make([]float32, lc)
		if s.cfg {
			cfgCombine(v, out[i*lc:(i+1)*lc], out[(k+i)*lc:(k+i+1)*lc], st.guidance)
		} else {
			copy(v, out[i*lc:(i+1)*lc])
		}
		vel[i] = v
	}
	return nil
}
