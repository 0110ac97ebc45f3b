package paint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/schedulers"
)

// scheduler builds the set's sampler for steps steps (0: the set's default).
func (p *Painter) scheduler(steps int) (schedulers.Scheduler, error) {
	s := p.spec.Sampler
	raw, err := p.set.ReadFile(s.Config)
	if err != nil {
		return nil, err
	}
	cfg, err := schedulers.ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	cfg.TimestepSpacing = schedulers.Some("trailing") // as both of Tencent's pipelines pass it
	if steps == 0 {
		steps = s.Steps
	}
	switch s.Kind {
	case "euler_ancestral":
		return schedulers.NewEulerAncestral(cfg, steps)
	case "lcm":
		if len(s.Timesteps) == steps {
			return schedulers.NewLCMWithTimesteps(cfg, s.Timesteps)
		}
		return schedulers.NewLCM(cfg, steps)
	case "unipc":
		return schedulers.NewUniPC(cfg, steps)
	}
	return nil, fmt.Errorf("sampler %q", s.Kind)
}

// rowScales are the guidance layout's per-row ref_scale, text_scale and
// whether the row carries the DINO tokens (docs/paint-contract.md).
func rowScales(guidance string) (ref, text []float32, dino []bool) {
	switch guidance {
	case "cfg":
		return []float32{0, 1}, []float32{0, 1}, []bool{false, true}
	case "cfg3":
		return []float32{0, 1, 1}, []float32{0, 1, 1}, []bool{false, false, true}
	}
	return []float32{1}, []float32{1}, []bool{true}
}

// combine is classifier-free guidance on the host over one job's rows.
func combine(guidance string, g float32, rows [][]float32) []float32 {
	switch guidance {
	case "cfg":
		u, c := rows[0], rows[1]
		out := make([]float32, len(u))
		for k := range out {
			out[k] = u[k] + g*(c[k]-u[k])
		}
		return out
	case "cfg3":
		u, r, f := rows[0], rows[1], rows[2]
		out := make([]float32, len(u))
		for k := range out {
			out[k] = u[k] + g*(r[k]-u[k]) + g*(f[k]-r[k])
		}
		return out
	}
	return rows[0]
}

// JobsPerCall is how many whole jobs one paint_unet call takes: the
// graph's batch over the guidance layout's rows per job, at least 1 (a job
// whose rows exceed the batch still runs whole, alone).
func (p *Painter) JobsPerCall() int {
	ref, _, _ := rowScales(p.spec.Sampler.Guidance)
	return max(p.batchOf(engines.PaintUNet)/len(ref), 1)
}

// Step runs one denoising step of every job that is not Done, each at its
// own step index with its own scheduler: whole jobs (all views, both 2.1
// materials, every guidance row) are packed into shared paint_unet calls of
// JobsPerCall jobs, and the guidance is combined per job on the host. On a
// graph error no job has advanced. Every job must have been through
// Condition.
func (p *Painter) Step(ctx context.Context, jobs []*Job) error {
	seen := make(map[*Job]bool, len(jobs))
	var run []*Job
	for _, j := range jobs {
		if j.cond == nil {
			return errors.New("paint diffuse: a job stepped before Condition")
		}
		if seen[j] {
			return errors.New("paint diffuse: the same job twice in one step")
		}
		seen[j] = true
		if !j.Done() {
			run = append(run, j)
		}
	}
	if len(run) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("paint diffuse: %w", err)
	}
	for _, j := range run {
		if j.step == 0 {
			j.report(Progress{Stage: StageDiffuse, Steps: len(j.sched.Timesteps())})
		}
	}
	guidance := p.spec.Sampler.Guidance
	ref, _, _ := rowScales(guidance)
	rows := len(ref)
	in := p.unetInputs(run)
	out, err := p.runRows(ctx, engines.PaintUNet, p.JobsPerCall()*rows, in, func(lo, hi int, d time.Duration) {
		for _, j := range run[lo/rows : hi/rows] {
			j.res.Timings.Diffuse += d
		}
	})
	if err != nil {
		return fmt.Errorf("paint diffuse: %w", err)
	}
	pred := splitRows(out[0].Data, len(run)*rows)
	for i, j := range run {
		start := time.Now()
		x, err := j.sched.Step(j.step, combine(guidance, j.guidance, pred[i*rows:(i+1)*rows]), j.x, j.noise)
		if err != nil {
			return fmt.Errorf("paint diffuse: step %d: %w", j.step, err)
		}
		j.x = x
		j.step++
		j.res.Timings.Diffuse += time.Since(start)
		j.report(Progress{Stage: StageDiffuse, Step: j.step, Steps: len(j.sched.Timesteps())})
	}
	return nil
}

// unetInputs lays out paint_unet's inputs for jobs at their own steps: each
// job's guidance rows in the contract's order, the jobs one after another.
func (p *Painter) unetInputs(jobs []*Job) []rowInput {
	specs := p.set.Graphs[engines.PaintUNet].Inputs
	refScale, textScale, dinoRow := rowScales(p.spec.Sampler.Guidance)
	in := make([]rowInput, len(specs))
	for k, s := range specs {
		in[k] = rowInput{name: s.Name, shape: s.Shape[1:]}
	}
	for _, j := range jobs {
		c := j.cond
		xin := j.sched.ScaleModelInput(j.step, j.x)
		t := []float32{j.sched.Timesteps()[j.step]}
		var noDino []float32
		for r := range refScale {
			for k, s := range specs {
				var row []float32
				switch {
				case s.Name == "sample":
					row = xin
				case s.Name == "normal":
					row = c.normal
				case s.Name == "position":
					row = c.position
				case s.Name == "timestep":
					row = t
				case s.Name == "camera":
					row = c.cameras
				case s.Name == "ref_scale":
					row = refScale[r : r+1]
				case s.Name == "text_scale":
					row = textScale[r : r+1]
				case s.Name == "dino" && dinoRow[r]:
					row = c.dino
				case s.Name == "dino":
					if noDino == nil {
						noDino = make([]float32, len(c.dino))
					}
					row = noDino
				case strings.HasPrefix(s.Name, "rope_index_l"):
					row = c.rope[s.Name]
				default:
					row = c.refs[s.Name]
				}
				in[k].rows = append(in[k].rows, row)
			}
		}
	}
	return in
}
