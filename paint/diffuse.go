package paint

import (
	"fmt"
	"math"
	"strings"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/schedulers"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/texture"
)

// batchOf is the rows an engine takes per call: its own limit, capped by
// the manifest's when both are set.
func (p *Painter) batchOf(graph string) int {
	n := p.g[graph].MaxBatch()
	if mb := p.set.Graphs[graph].MaxBatch; mb > 0 && (n < 1 || mb < n) {
		n = mb
	}
	return max(n, 1)
}

// runRows runs graph over rows inputs (each row per-row data of one input
// named name with per-row shape rowShape), in calls of at most the graph's
// batch, and returns the concatenated first output.
func (j *job) runRows(graph, name string, rowShape []int64, rows [][]float32) ([]float32, error) {
	e := j.p.g[graph]
	step := j.p.batchOf(graph)
	var out []float32
	for start := 0; start < len(rows); start += step {
		end := min(start+step, len(rows))
		var data []float32
		for _, r := range rows[start:end] {
			data = append(data, r...)
		}
		res, err := e.Run(j.ctx, []tensor.Tensor{{Name: name, Shape: append([]int64{int64(end - start)}, rowShape...), Data: data}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", graph, err)
		}
		out = append(out, res[0].Data...)
	}
	return out, nil
}

// encode runs vae_encoder over images (HWC in [0, 1] at the view size) and
// returns their moments, 8·h² values each.
func (j *job) encode(images []texture.Image) ([]float32, error) {
	s := int64(j.p.spec.ViewSize)
	rows := make([][]float32, len(images))
	for i, img := range images {
		rows[i] = toModel(nil, img)
	}
	return j.runRows(engines.VAEEncoder, "image", []int64{3, s, s}, rows)
}

// sampleLatents draws z = (mean + exp(½·clamp(logvar, −30, 20))·ε)·scale
// for every moments block (diffusers' DiagonalGaussianDistribution).
func (j *job) sampleLatents(moments []float32, noise schedulers.Noise) ([]float32, error) {
	lat := j.p.spec.LatentChannels
	hh := (j.p.spec.ViewSize / 8) * (j.p.spec.ViewSize / 8)
	count := len(moments) / (2 * lat * hh)
	eps := make([]float32, count*lat*hh)
	if err := noise.Fill(eps); err != nil {
		return nil, err
	}
	scale := float32(j.p.spec.VAEScaleFactor)
	out := make([]float32, len(eps))
	for i := 0; i < count; i++ {
		m := moments[i*2*lat*hh:]
		for k := 0; k < lat*hh; k++ {
			logvar := min(max(m[lat*hh+k], -30), 20)
			out[i*lat*hh+k] = (m[k] + float32(math.Exp(0.5*float64(logvar)))*eps[i*lat*hh+k]) * scale
		}
	}
	return out, nil
}

// decodeLatents runs vae_decoder over latents (scaled, 4·h² per image) and
// returns the images in [0, 1].
func (j *job) decodeLatents(latents []float32) ([]texture.Image, error) {
	spec := j.p.spec
	h := spec.ViewSize / 8
	per := spec.LatentChannels * h * h
	rows := make([][]float32, len(latents)/per)
	for i := range rows {
		rows[i] = make([]float32, per)
		for k := range rows[i] {
			rows[i][k] = latents[i*per+k] / float32(spec.VAEScaleFactor)
		}
	}
	out, err := j.runRows(engines.VAEDecoder, "latent", []int64{int64(spec.LatentChannels), int64(h), int64(h)}, rows)
	if err != nil {
		return nil, err
	}
	size := spec.ViewSize
	imgs := make([]texture.Image, len(rows))
	for i := range imgs {
		imgs[i] = fromModel(out[i*3*size*size:(i+1)*3*size*size], size)
	}
	return imgs, nil
}

// delight removes the lighting from the reference (2.0's InstructPix2Pix
// model, prompt "" and guidance 1, so one row per step).
func (j *job) delight(ref texture.Image, noise schedulers.Noise) (texture.Image, error) {
	spec := j.p.spec
	d := spec.Delight
	if d.ViewSize != spec.ViewSize {
		return texture.Image{}, fmt.Errorf("delight view size %d differs from the view size %d", d.ViewSize, spec.ViewSize)
	}
	raw, err := j.p.set.ReadFile(d.Config)
	if err != nil {
		return texture.Image{}, err
	}
	cfg, err := schedulers.ParseConfig(raw)
	if err != nil {
		return texture.Image{}, err
	}
	sched, err := schedulers.NewEulerAncestral(cfg, d.Steps)
	if err != nil {
		return texture.Image{}, err
	}
	moments, err := j.encode([]texture.Image{ref})
	if err != nil {
		return texture.Image{}, err
	}
	h := spec.ViewSize / 8
	per := spec.LatentChannels * h * h
	imageLatent := moments[:per] // the mode, unscaled
	x := make([]float32, per)
	if err := noise.Fill(x); err != nil {
		return texture.Image{}, err
	}
	for k := range x {
		x[k] *= sched.InitNoiseSigma()
	}
	ts := sched.Timesteps()
	for i, t := range ts {
		in := append(append(make([]float32, 0, 2*per), sched.ScaleModelInput(i, x)...), imageLatent...)
		out, err := j.p.g[engines.Delight].Run(j.ctx, []tensor.Tensor{
			{Name: "sample", Shape: []int64{1, int64(2 * spec.LatentChannels), int64(h), int64(h)}, Data: in},
			{Name: "timestep", Shape: []int64{1}, Data: []float32{t}},
		})
		if err != nil {
			return texture.Image{}, fmt.Errorf("delight step %d: %w", i, err)
		}
		if x, err = sched.Step(i, out[0].Data, x, noise); err != nil {
			return texture.Image{}, err
		}
		if j.opt.Progress != nil {
			j.opt.Progress(Progress{Stage: StageDelight, Step: i + 1, Steps: len(ts)})
		}
	}
	imgs, err := j.decodeLatents(x)
	if err != nil {
		return texture.Image{}, err
	}
	return imgs[0], nil
}

// conditions are one job's inputs to paint_unet that stay the same at
// every step.
type conditions struct {
	normal, position []float32            // [N, 4, h, h] scaled latents
	refs             map[string][]float32 // paint_ref's outputs, one row
	cameras          []float32            // 2.0: [N] camera ids
	dino             []float32            // 2.1: [257, 1536]
	rope             map[string][]float32 // 2.1: rope_index_l<k>
}

func (j *job) condition(ref texture.Image, maps conditionMaps, noise schedulers.Noise) (*conditions, error) {
	spec := j.p.spec
	n := spec.Views
	h := spec.ViewSize / 8
	per := spec.LatentChannels * h * h
	images := append(append([]texture.Image{ref}, maps.normals...), maps.positions...)
	moments, err := j.encode(images)
	if err != nil {
		return nil, err
	}
	lat, err := j.sampleLatents(moments, noise)
	if err != nil {
		return nil, err
	}
	c := &conditions{normal: lat[per : (1+n)*per], position: lat[(1+n)*per:], refs: map[string][]float32{}}
	out, err := j.p.g[engines.PaintRef].Run(j.ctx, []tensor.Tensor{{Name: "ref_latents",
		Shape: []int64{1, int64(spec.ReferenceViews), int64(spec.LatentChannels), int64(h), int64(h)}, Data: lat[:per]}})
	if err != nil {
		return nil, fmt.Errorf("paint_ref: %w", err)
	}
	for _, o := range out {
		c.refs[o.Name] = o.Data
	}
	if spec.Version == "2.0" {
		for _, cam := range j.cams {
			id, err := cameraID(cam)
			if err != nil {
				return nil, err
			}
			c.cameras = append(c.cameras, id)
		}
		return c, nil
	}
	ds := spec.DINO
	dout, err := j.p.g[engines.DINOv2].Run(j.ctx, []tensor.Tensor{{Name: "pixel_values",
		Shape: []int64{1, 3, int64(ds.Size), int64(ds.Size)}, Data: dinoInput(ref, ds.Size, ds.Mean, ds.Std)}})
	if err != nil {
		return nil, fmt.Errorf("dinov2: %w", err)
	}
	c.dino = dout[0].Data
	c.rope = map[string][]float32{}
	for k, g := range spec.RoPE.Grids {
		c.rope[fmt.Sprintf("rope_index_l%d", k)] = ropeIndices(maps.positions, g, spec.RoPE.Voxels[k])
	}
	return c, nil
}

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

// diffuse runs the multi-view denoising loop: all views (and 2.1's two
// materials) of the job in each row, RowsPerJob rows per call.
func (j *job) diffuse(c *conditions, noise schedulers.Noise) ([]float32, error) {
	spec := j.p.spec
	sched, err := j.p.scheduler(j.opt.Steps)
	if err != nil {
		return nil, err
	}
	g := float32(spec.Sampler.GuidanceScale)
	if j.opt.GuidanceScale != 0 {
		g = float32(j.opt.GuidanceScale)
	}
	h := spec.ViewSize / 8
	size := len(spec.Materials) * spec.Views * spec.LatentChannels * h * h
	x := make([]float32, size)
	if err := noise.Fill(x); err != nil {
		return nil, err
	}
	for k := range x {
		x[k] *= sched.InitNoiseSigma()
	}
	refScale, textScale, dinoRow := rowScales(spec.Sampler.Guidance)
	rows := len(refScale)
	unet := j.p.g[engines.PaintUNet]
	specs := j.p.set.Graphs[engines.PaintUNet].Inputs
	ts := sched.Timesteps()
	j.res.Steps = len(ts)
	for i, t := range ts {
		xin := sched.ScaleModelInput(i, x)
		in := make([]tensor.Tensor, 0, len(specs))
		for _, s := range specs {
			perRow := func(r int) []float32 {
				switch {
				case s.Name == "sample":
					return xin
				case s.Name == "normal":
					return c.normal
				case s.Name == "position":
					return c.position
				case s.Name == "timestep":
					return []float32{t}
				case s.Name == "camera":
					return c.cameras
				case s.Name == "ref_scale":
					return refScale[r : r+1]
				case s.Name == "text_scale":
					return textScale[r : r+1]
				case s.Name == "dino":
					if dinoRow[r] {
						return c.dino
					}
					return make([]float32, len(c.dino))
				case strings.HasPrefix(s.Name, "rope_index_l"):
					return c.rope[s.Name]
				}
				return c.refs[s.Name]
			}
			shape := append([]int64{int64(rows)}, s.Shape[1:]...)
			data := make([]float32, 0, tensor.Elements(shape))
			for r := 0; r < rows; r++ {
				data = append(data, perRow(r)...)
			}
			if int64(len(data)) != tensor.Elements(shape) {
				return nil, fmt.Errorf("paint_unet input %s: %d values for shape %v", s.Name, len(data), shape)
			}
			in = append(in, tensor.Tensor{Name: s.Name, Shape: shape, Data: data})
		}
		out, err := unet.Run(j.ctx, in)
		if err != nil {
			return nil, fmt.Errorf("paint_unet step %d: %w", i, err)
		}
		pred := out[0].Data
		split := make([][]float32, rows)
		for r := range split {
			split[r] = pred[r*size : (r+1)*size]
		}
		if x, err = sched.Step(i, combine(spec.Sampler.Guidance, g, split), x, noise); err != nil {
			return nil, err
		}
		if j.opt.Progress != nil {
			j.opt.Progress(Progress{Stage: StageDiffuse, Step: i + 1, Steps: len(ts)})
		}
	}
	return x, nil
}

// decode turns the final latents into views: 2.0 N albedo views, 2.1 N
// albedo then N MR views, upscaled.
func (j *job) decode(latents []float32) ([]texture.Image, error) {
	imgs, err := j.decodeLatents(latents)
	if err != nil || j.p.spec.Version == "2.0" {
		return imgs, err
	}
	return j.upscale(imgs)
}

// upscale runs the upscaler, whose network takes its channels in BGR order
// (docs/paint-contract.md: the BGR quirk).
func (j *job) upscale(imgs []texture.Image) ([]texture.Image, error) {
	s := j.p.spec.ViewSize
	f := j.p.spec.Upscale
	rows := make([][]float32, len(imgs))
	for i, img := range imgs {
		rows[i] = make([]float32, 0, 3*s*s)
		for _, k := range []int{2, 1, 0} {
			for p := 0; p < s*s; p++ {
				rows[i] = append(rows[i], img.Pix[3*p+k])
			}
		}
	}
	out, err := j.runRows(engines.Upscaler, "image", []int64{3, int64(s), int64(s)}, rows)
	if err != nil {
		return nil, err
	}
	big := s * f
	res := make([]texture.Image, len(imgs))
	for i := range res {
		chw := out[i*3*big*big : (i+1)*3*big*big]
		img := texture.NewImage(big, big, 3)
		for c, k := range []int{2, 1, 0} {
			for p := 0; p < big*big; p++ {
				img.Pix[3*p+k] = min(max(chw[c*big*big+p], 0), 1)
			}
		}
		res[i] = img
	}
	return res, nil
}

// bake merges the views into the albedo (and 2.1 metallic-roughness)
// texture, fills what no view saw and returns the material.
func (j *job) bake(geo *geometry) (texture.Material, error) {
	spec := j.p.spec
	mode, normals := texture.BakeGather, texture.FaceNormals
	if spec.Version == "2.0" {
		mode, normals = texture.BakeSplat, texture.VertexNormals
	}
	albedo, err := geo.scene.NewBaker(geo.uv, 3, mode)
	if err != nil {
		return texture.Material{}, err
	}
	var mr *texture.Baker
	if len(spec.Materials) > 1 {
		if mr, err = geo.scene.NewBaker(geo.uv, 2, mode); err != nil {
			return texture.Material{}, err
		}
	}
	bs := j.opt.BakeViewSize
	for i, cam := range j.cams {
		v, err := geo.scene.Render(j.ctx, cam, bs, normals)
		if err != nil {
			return texture.Material{}, err
		}
		if _, err := albedo.Add(j.ctx, v, flip(resize(j.res.Views[i], bs, bs)), cam.Weight); err != nil {
			return texture.Material{}, err
		}
		if mr != nil {
			img := flip(resize(j.res.Views[spec.Views+i], bs, bs))
			two := texture.NewImage(bs, bs, 2)
			for p := 0; p < bs*bs; p++ {
				two.Pix[2*p], two.Pix[2*p+1] = img.Pix[3*p], img.Pix[3*p+1] // metallic R, roughness G
			}
			if _, err := mr.Add(j.ctx, v, two, cam.Weight); err != nil {
				return texture.Material{}, err
			}
		}
	}
	resolve := func(b *texture.Baker) (texture.Image, error) {
		tex, painted, err := b.Resolve()
		if err != nil {
			return tex, err
		}
		return tex, geo.scene.Fill(j.ctx, geo.uv, tex, painted)
	}
	mat := texture.Material{Format: texture.PNG}
	if mat.BaseColor, err = resolve(albedo); err != nil {
		return mat, err
	}
	if mr != nil {
		tex, err := resolve(mr)
		if err != nil {
			return mat, err
		}
		mat.MetallicRoughness = &tex
	}
	return mat, nil
}
