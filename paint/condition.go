package paint

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/schedulers"
	"github.com/hy3d/hy3d/texture"
)

// conditions are one job's inputs to paint_unet that stay the same at
// every step.
type conditions struct {
	normal, position []float32            // [N, 4, h, h] scaled latents
	refs             map[string][]float32 // paint_ref's outputs, one row
	cameras          []float32            // 2.0: [N] camera ids
	dino             []float32            // 2.1: [257, 1536]
	rope             map[string][]float32 // 2.1: rope_index_l<k>
}

// cached holds condition outputs that depend only on the picture, and on
// the seed where the noise enters them. A picture entry holds the
// reference as the models see it (after delight), the job's noise after
// the delight, the reference's vae_encoder moments and (2.1) the DINOv2
// tokens; a features entry holds paint_ref's outputs, which read the
// reference's sampled latent. Entries are shared: never written after
// they are stored.
type cached struct {
	ref     texture.Image
	noise   schedulers.SeedSequence
	moments []float32
	dino    []float32
	refs    map[string][]float32
}

func (c *cached) cost() int64 {
	n := len(c.ref.Pix) + len(c.moments) + len(c.dino)
	for _, r := range c.refs {
		n += len(r)
	}
	return 4 * int64(n)
}

// CacheStats counts the condition cache's lookups: each conditioned job
// looks up its picture entry and its features entry.
type CacheStats struct {
	Hits, Misses uint64
}

// CacheStats reports the condition cache's hits and misses so far.
func (p *Painter) CacheStats() CacheStats {
	return CacheStats{Hits: p.hits.Load(), Misses: p.misses.Load()}
}

// cacheKeys are a job's picture and features keys: the picture key, and
// what else changes the outputs. Without delight the reference is the
// picture itself; with it the delight's noise depends on the seed. The
// features read a sampled latent, so they always depend on the seed. Empty
// keys: no caching.
func (p *Painter) cacheKeys(j *Job, delight bool) (picture, features string) {
	if p.cache == nil || j.opt.PictureKey == ([32]byte{}) {
		return "", ""
	}
	k := hex.EncodeToString(j.opt.PictureKey[:])
	picture = "picture/" + k
	if delight {
		picture += fmt.Sprintf("/delight/%d", j.opt.Seed)
	}
	return picture, fmt.Sprintf("features/%s/delight=%t/%d", k, delight, j.opt.Seed)
}

func (p *Painter) lookup(key string) *cached {
	if key == "" {
		return nil
	}
	if c, ok := p.cache.Get(key); ok {
		p.hits.Add(1)
		return c
	}
	p.misses.Add(1)
	return nil
}

// remember stores c and waits until a lookup sees it (ristretto applies
// its writes asynchronously).
func (p *Painter) remember(key string, c *cached) {
	if key == "" {
		return
	}
	p.cache.Set(key, c, c.cost())
	p.cache.Wait()
}

// Condition runs, for jobs that arrived together, every graph call before
// the denoising loop: the 2.0 delight (its own loop, the jobs stepped
// together), the VAE encodings, paint_ref and (2.1) DINOv2, each batched
// across the jobs up to the graph's batch; then the camera ids or RoPE
// indices and the initial latents. A job whose Options.PictureKey is in the
// cache skips the graph calls on its picture. errs[i] is jobs[i]'s error:
// when a shared call fails, each job is conditioned again alone, so that
// only the jobs at fault fail.
func (p *Painter) Condition(ctx context.Context, jobs []*Job) []error {
	errs := make([]error, len(jobs))
	var todo []*Job
	var at []int
	seen := map[*Job]bool{}
	for i, j := range jobs {
		switch {
		case j == nil:
			errs[i] = errors.New("paint condition: no job")
		case j.cond != nil || seen[j]:
			errs[i] = errors.New("paint condition: the job is conditioned already")
		default:
			seen[j] = true
			todo = append(todo, j)
			at = append(at, i)
		}
	}
	if len(todo) == 0 {
		return errs
	}
	err := p.condition(ctx, todo)
	if err == nil {
		return errs
	}
	if len(todo) == 1 || ctx.Err() != nil {
		for _, i := range at {
			errs[i] = err
		}
		return errs
	}
	for k, j := range todo {
		errs[at[k]] = p.condition(ctx, []*Job{j})
	}
	return errs
}

// work is one job's conditioning in progress; it reaches the job only when
// every job of the call has succeeded.
type work struct {
	j               *Job
	noise           schedulers.SeedSequence
	delight         bool
	picKey, featKey string
	pic             *cached // the picture entry, looked up or being computed
	picHit, featHit bool
	refs            map[string][]float32
	cond            *conditions
	x               []float32
	delightTook     time.Duration
}

// condition conditions jobs together, all or none. Each job is charged
// the wall time of the phases it took part in.
func (p *Painter) condition(ctx context.Context, jobs []*Job) error {
	_, hasDelight := p.g[engines.Delight]
	ws := make([]*work, len(jobs))
	var lit []*work // jobs whose delight runs
	for i, j := range jobs {
		w := &work{j: j, noise: *j.noise, delight: hasDelight && !j.opt.NoDelight}
		w.picKey, w.featKey = p.cacheKeys(j, w.delight)
		if c := p.lookup(w.picKey); c != nil {
			w.pic, w.picHit = c, true
			if w.delight {
				w.noise = c.noise
			}
		} else {
			w.pic = &cached{ref: j.picture}
		}
		if c := p.lookup(w.featKey); c != nil {
			w.refs, w.featHit = c.refs, true
		}
		if w.delight && !w.picHit {
			lit = append(lit, w)
		}
		ws[i] = w
	}
	if len(lit) > 0 {
		start := time.Now()
		if err := p.delight(ctx, lit); err != nil {
			return fmt.Errorf("paint delight: %w", err)
		}
		for _, w := range lit {
			w.delightTook = time.Since(start)
		}
	}
	start := time.Now()
	if err := p.conditionWork(ctx, ws); err != nil {
		return fmt.Errorf("paint condition: %w", err)
	}
	took := time.Since(start)
	for _, w := range ws {
		j := w.j
		if !w.picHit {
			p.remember(w.picKey, w.pic)
		}
		if !w.featHit {
			p.remember(w.featKey, &cached{refs: w.refs})
		}
		*j.noise = w.noise
		j.cond, j.x = w.cond, w.x
		j.res.Reference = texture.Image{Width: w.pic.ref.Width, Height: w.pic.ref.Height, Channels: w.pic.ref.Channels,
			Pix: slices.Clone(w.pic.ref.Pix)}
		j.res.ConditionCached = w.picHit && w.featHit
		j.res.Timings.Delight += w.delightTook
		j.res.Timings.Condition += took
	}
	return nil
}

// conditionWork computes every job's conditions: the encodings of the
// reference (unless cached) and of the normal and position maps, sampled
// with the job's noise, paint_ref and DINOv2 where not cached, the camera
// ids or RoPE indices, and the initial latents.
func (p *Painter) conditionWork(ctx context.Context, ws []*work) error {
	spec := p.spec
	n := spec.Views
	h := spec.ViewSize / 8
	per := spec.LatentChannels * h * h
	var images []texture.Image
	for _, w := range ws {
		w.j.report(Progress{Stage: StageCondition})
		if !w.picHit {
			images = append(images, w.pic.ref)
		}
		images = append(append(images, w.j.maps.normals...), w.j.maps.positions...)
	}
	moments, err := p.encode(ctx, images, nil)
	if err != nil {
		return err
	}
	var refRows [][]float32 // paint_ref's inputs, for the jobs without cached features
	var refOf []*work
	for _, w := range ws {
		if !w.picHit {
			w.pic.moments, moments = moments[0], moments[1:]
		}
		own := append([][]float32{w.pic.moments}, moments[:2*n]...)
		moments = moments[2*n:]
		lat, err := p.sampleLatents(own, &w.noise)
		if err != nil {
			return err
		}
		w.cond = &conditions{normal: lat[per : (1+n)*per], position: lat[(1+n)*per:]}
		if !w.featHit {
			refRows = append(refRows, lat[:per])
			refOf = append(refOf, w)
		}
	}
	if len(refRows) > 0 {
		out, err := p.runRows(ctx, engines.PaintRef, p.batchOf(engines.PaintRef), []rowInput{{name: "ref_latents",
			shape: []int64{int64(spec.ReferenceViews), int64(spec.LatentChannels), int64(h), int64(h)}, rows: refRows}}, nil)
		if err != nil {
			return err
		}
		for _, w := range refOf {
			w.refs = map[string][]float32{}
		}
		for _, o := range out {
			for k, row := range splitRows(o.Data, len(refOf)) {
				refOf[k].refs[o.Name] = row
			}
		}
	}
	if spec.Version == "2.1" {
		if err := p.dino(ctx, ws); err != nil {
			return err
		}
	}
	for _, w := range ws {
		c := w.cond
		c.refs, c.dino = w.refs, w.pic.dino
		if spec.Version == "2.0" {
			for _, cam := range w.j.res.Cameras {
				id, err := cameraID(cam)
				if err != nil {
					return err
				}
				c.cameras = append(c.cameras, id)
			}
		} else {
			c.rope = map[string][]float32{}
			for k, g := range spec.RoPE.Grids {
				c.rope[fmt.Sprintf("rope_index_l%d", k)] = ropeIndices(w.j.maps.positions, g, spec.RoPE.Voxels[k])
			}
		}
		w.x = make([]float32, len(spec.Materials)*n*per)
		if err := w.noise.Fill(w.x); err != nil {
			return err
		}
		sigma := w.j.sched.InitNoiseSigma()
		for k := range w.x {
			w.x[k] *= sigma
		}
	}
	return nil
}

// dino runs dinov2 on the references of the jobs whose picture entry has
// no tokens yet.
func (p *Painter) dino(ctx context.Context, ws []*work) error {
	ds := p.spec.DINO
	in := rowInput{name: "pixel_values", shape: []int64{3, int64(ds.Size), int64(ds.Size)}}
	var of []*work
	for _, w := range ws {
		if w.pic.dino == nil {
			in.rows = append(in.rows, dinoInput(w.pic.ref, ds.Size, ds.Mean, ds.Std))
			of = append(of, w)
		}
	}
	if len(of) == 0 {
		return nil
	}
	out, err := p.runRows(ctx, engines.DINOv2, p.batchOf(engines.DINOv2), []rowInput{in}, nil)
	if err != nil {
		return err
	}
	for k, row := range splitRows(out[0].Data, len(of)) {
		of[k].pic.dino = row
	}
	return nil
}

// delight removes the lighting from the references of ws (2.0's
// InstructPix2Pix model, prompt "" and guidance 1, so one row per job and
// step), the jobs stepped together with their own noise.
func (p *Painter) delight(ctx context.Context, ws []*work) error {
	spec := p.spec
	d := spec.Delight
	if d.ViewSize != spec.ViewSize {
		return fmt.Errorf("delight view size %d differs from the view size %d", d.ViewSize, spec.ViewSize)
	}
	raw, err := p.set.ReadFile(d.Config)
	if err != nil {
		return err
	}
	cfg, err := schedulers.ParseConfig(raw)
	if err != nil {
		return err
	}
	refs := make([]texture.Image, len(ws))
	for k, w := range ws {
		w.j.report(Progress{Stage: StageDelight})
		refs[k] = w.pic.ref
	}
	moments, err := p.encode(ctx, refs, nil)
	if err != nil {
		return err
	}
	h := spec.ViewSize / 8
	per := spec.LatentChannels * h * h
	scheds := make([]schedulers.Scheduler, len(ws))
	xs := make([][]float32, len(ws))
	for k, w := range ws {
		if scheds[k], err = schedulers.NewEulerAncestral(cfg, d.Steps); err != nil {
			return err
		}
		xs[k] = make([]float32, per)
		if err := w.noise.Fill(xs[k]); err != nil {
			return err
		}
		for i := range xs[k] {
			xs[k][i] *= scheds[k].InitNoiseSigma()
		}
	}
	ts := scheds[0].Timesteps()
	for i, t := range ts {
		in := []rowInput{
			{name: "sample", shape: []int64{int64(2 * spec.LatentChannels), int64(h), int64(h)}},
			{name: "timestep", shape: []int64{}},
		}
		for k := range ws {
			imageLatent := moments[k][:per] // the mode, unscaled
			in[0].rows = append(in[0].rows, append(append(make([]float32, 0, 2*per), scheds[k].ScaleModelInput(i, xs[k])...), imageLatent...))
			in[1].rows = append(in[1].rows, []float32{t})
		}
		out, err := p.runRows(ctx, engines.Delight, p.batchOf(engines.Delight), in, nil)
		if err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		for k, pred := range splitRows(out[0].Data, len(ws)) {
			if xs[k], err = scheds[k].Step(i, pred, xs[k], &ws[k].noise); err != nil {
				return err
			}
			ws[k].j.report(Progress{Stage: StageDelight, Step: i + 1, Steps: len(ts)})
		}
	}
	imgs, err := p.decodeLatents(ctx, slices.Concat(xs...), nil)
	if err != nil {
		return err
	}
	for k, w := range ws {
		w.pic.ref = imgs[k]
		w.pic.noise = w.noise
	}
	return nil
}
