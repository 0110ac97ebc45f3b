package paint

import (
	"context"
	"fmt"
	"math"
	"time"

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

// rowInput is one input of a graph given row by row: every row has the
// shape shape (without the batch).
type rowInput struct {
	name  string
	shape []int64
	rows  [][]float32
}

// runRows runs graph over the rows of inputs (the same count in each) in
// calls of at most perCall rows and returns its outputs, each concatenated
// over the calls. charge, when set, is told each call's rows [lo, hi) and
// wall time.
func (p *Painter) runRows(ctx context.Context, graph string, perCall int, inputs []rowInput,
	charge func(lo, hi int, d time.Duration)) ([]tensor.Tensor, error) {
	e := p.g[graph]
	n := len(inputs[0].rows)
	var outs []tensor.Tensor
	for lo := 0; lo < n; lo += perCall {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+perCall, n)
		in := make([]tensor.Tensor, len(inputs))
		for k, ri := range inputs {
			shape := append([]int64{int64(hi - lo)}, ri.shape...)
			data := make([]float32, 0, tensor.Elements(shape))
			for _, r := range ri.rows[lo:hi] {
				data = append(data, r...)
			}
			if int64(len(data)) != tensor.Elements(shape) {
				return nil, fmt.Errorf("%s input %s: %d values for shape %v", graph, ri.name, len(data), shape)
			}
			in[k] = tensor.Tensor{Name: ri.name, Shape: shape, Data: data}
		}
		start := time.Now()
		res, err := e.Run(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", graph, err)
		}
		if charge != nil {
			charge(lo, hi, time.Since(start))
		}
		if outs == nil {
			outs = make([]tensor.Tensor, len(res))
			for k, o := range res {
				outs[k].Name = o.Name
			}
		}
		for k, o := range res {
			outs[k].Data = append(outs[k].Data, o.Data...)
		}
	}
	return outs, nil
}

// splitRows cuts data into n equal rows.
func splitRows(data []float32, n int) [][]float32 {
	per := len(data) / n
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = data[i*per : (i+1)*per : (i+1)*per]
	}
	return rows
}

// encode runs vae_encoder over images (HWC in [0, 1] at the view size) and
// returns their moments, 8·h² values each.
func (p *Painter) encode(ctx context.Context, images []texture.Image, charge func(lo, hi int, d time.Duration)) ([][]float32, error) {
	s := int64(p.spec.ViewSize)
	in := rowInput{name: "image", shape: []int64{3, s, s}, rows: make([][]float32, len(images))}
	for i, img := range images {
		in.rows[i] = toModel(nil, img)
	}
	out, err := p.runRows(ctx, engines.VAEEncoder, p.batchOf(engines.VAEEncoder), []rowInput{in}, charge)
	if err != nil {
		return nil, err
	}
	return splitRows(out[0].Data, len(images)), nil
}

// sampleLatents draws z = (mean + exp(½·clamp(logvar, −30, 20))·ε)·scale
// for every moments block (diffusers' DiagonalGaussianDistribution), ε from
// one draw of noise for all of them.
func (p *Painter) sampleLatents(moments [][]float32, noise schedulers.Noise) ([]float32, error) {
	lat := p.spec.LatentChannels
	hh := (p.spec.ViewSize / 8) * (p.spec.ViewSize / 8)
	eps := make([]float32, len(moments)*lat*hh)
	if err := noise.Fill(eps); err != nil {
		return nil, err
	}
	scale := float32(p.spec.VAEScaleFactor)
	out := make([]float32, len(eps))
	for i, m := range moments {
		for k := 0; k < lat*hh; k++ {
			logvar := min(max(m[lat*hh+k], -30), 20)
			out[i*lat*hh+k] = (m[k] + float32(math.Exp(0.5*float64(logvar)))*eps[i*lat*hh+k]) * scale
		}
	}
	return out, nil
}

// decodeLatents runs vae_decoder over latents (scaled, 4·h² per image) and
// returns the images in [0, 1].
func (p *Painter) decodeLatents(ctx context.Context, latents []float32, charge func(lo, hi int, d time.Duration)) ([]texture.Image, error) {
	spec := p.spec
	h := spec.ViewSize / 8
	per := spec.LatentChannels * h * h
	in := rowInput{name: "latent", shape: []int64{int64(spec.LatentChannels), int64(h), int64(h)}, rows: make([][]float32, len(latents)/per)}
	for i := range in.rows {
		in.rows[i] = make([]float32, per)
		for k := range in.rows[i] {
			in.rows[i][k] = latents[i*per+k] / float32(spec.VAEScaleFactor)
		}
	}
	out, err := p.runRows(ctx, engines.VAEDecoder, p.batchOf(engines.VAEDecoder), []rowInput{in}, charge)
	if err != nil {
		return nil, err
	}
	size := spec.ViewSize
	imgs := make([]texture.Image, len(in.rows))
	for i := range imgs {
		imgs[i] = fromModel(out[0].Data[i*3*size*size:(i+1)*3*size*size], size)
	}
	return imgs, nil
}

// decode turns the final latents into views: 2.0 N albedo views, 2.1 N
// albedo then N MR views, upscaled.
func (p *Painter) decode(ctx context.Context, latents []float32) ([]texture.Image, error) {
	imgs, err := p.decodeLatents(ctx, latents, nil)
	if err != nil || p.spec.Version == "2.0" {
		return imgs, err
	}
	return p.upscale(ctx, imgs)
}

// upscale runs the upscaler, whose network takes its channels in BGR order
// (docs/paint-contract.md: the BGR quirk).
func (p *Painter) upscale(ctx context.Context, imgs []texture.Image) ([]texture.Image, error) {
	s := p.spec.ViewSize
	f := p.spec.Upscale
	in := rowInput{name: "image", shape: []int64{3, int64(s), int64(s)}, rows: make([][]float32, len(imgs))}
	for i, img := range imgs {
		in.rows[i] = make([]float32, 0, 3*s*s)
		for _, k := range []int{2, 1, 0} {
			for px := 0; px < s*s; px++ {
				in.rows[i] = append(in.rows[i], img.Pix[3*px+k])
			}
		}
	}
	out, err := p.runRows(ctx, engines.Upscaler, p.batchOf(engines.Upscaler), []rowInput{in}, nil)
	if err != nil {
		return nil, err
	}
	big := s * f
	res := make([]texture.Image, len(imgs))
	for i := range res {
		chw := out[0].Data[i*3*big*big : (i+1)*3*big*big]
		img := texture.NewImage(big, big, 3)
		for c, k := range []int{2, 1, 0} {
			for px := 0; px < big*big; px++ {
				img.Pix[3*px+k] = min(max(chw[c*big*big+px], 0), 1)
			}
		}
		res[i] = img
	}
	return res, nil
}

// bake merges the job's views into the albedo (and 2.1 metallic-roughness)
// texture, fills what no view saw and returns the material.
func (p *Painter) bake(ctx context.Context, j *Job) (texture.Material, error) {
	spec := p.spec
	geo := j.geo
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
	for i, cam := range j.res.Cameras {
		v, err := geo.scene.Render(ctx, cam, bs, normals)
		if err != nil {
			return texture.Material{}, err
		}
		if _, err := albedo.Add(ctx, v, flip(resize(j.res.Views[i], bs, bs)), cam.Weight); err != nil {
			return texture.Material{}, err
		}
		if mr != nil {
			img := flip(resize(j.res.Views[spec.Views+i], bs, bs))
			two := texture.NewImage(bs, bs, 2)
			for px := 0; px < bs*bs; px++ {
				two.Pix[2*px], two.Pix[2*px+1] = img.Pix[3*px], img.Pix[3*px+1] // metallic R, roughness G
			}
			if _, err := mr.Add(ctx, v, two, cam.Weight); err != nil {
				return texture.Material{}, err
			}
		}
	}
	resolve := func(b *texture.Baker) (texture.Image, error) {
		tex, painted, err := b.Resolve()
		if err != nil {
			return tex, err
		}
		return tex, geo.scene.Fill(ctx, geo.uv, tex, painted)
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
