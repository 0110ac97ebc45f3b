package ort

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// tinyPaintSets are the committed paint sets (docs/paint-contract.md).
var tinyPaintSets = []string{"tiny-paint-2.0", "tiny-paint-2.0-turbo", "tiny-paint-2.0-oracle",
	"tiny-paint-2.1", "tiny-paint-2.1-oracle"}

func openPaintSet(t *testing.T, name string) *engines.Set {
	t.Helper()
	set, err := engines.Open(filepath.Join("..", "engines", name))
	if err != nil {
		t.Fatalf("engines.Open(%s): %v", name, err)
	}
	return set
}

// paintInputs draws one call's inputs in the ranges the contract gives each
// tensor: camera ids of 2.0's six views, voxel indices within their level's
// resolution, timesteps in [0, 999], guidance scales of a [uncond, cond…]
// layout, unit normal elsewhere.
func paintInputs(set *engines.Set, g engines.Graph, batch int, rng *rand.Rand) []tensor.Tensor {
	cameras := []float32{21, 12, 15, 18, 43, 37}
	out := make([]tensor.Tensor, len(g.Inputs))
	for i, spec := range g.Inputs {
		shape := append([]int64{int64(batch)}, spec.Shape[1:]...)
		data := make([]float32, tensor.Elements(shape))
		per := len(data) / batch
		for j := range data {
			row := j / per
			switch {
			case spec.Name == "timestep":
				data[j] = float32(rng.IntN(1000))
			case spec.Name == "ref_scale" || spec.Name == "text_scale":
				data[j] = float32(min(row, 1))
			case spec.Name == "camera":
				data[j] = cameras[(j%per)%len(cameras)]
			case strings.HasPrefix(spec.Name, "rope_index_l"):
				level := int(spec.Name[len(spec.Name)-1] - '0')
				data[j] = float32(rng.IntN(set.Paint.RoPE.Voxels[level]))
			case spec.Name == "image" && g.Outputs[0].Name == "upscaled":
				data[j] = rng.Float32()
			default:
				data[j] = float32(rng.NormFloat64())
			}
		}
		out[i] = tensor.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return out
}

// Every graph of every tiny paint set runs in ONNX Runtime with the
// contract's shapes — paint_unet at one job's rows, the others at batch 2 —
// and returns outputs of the manifest's shapes, finite.
func TestTinyPaintGraphsRunWithTheContractShapes(t *testing.T) {
	rt := newRuntime(t)
	for _, name := range tinyPaintSets {
		set := openPaintSet(t, name)
		for _, graph := range graphNames(set) {
			t.Run(name+"/"+graph, func(t *testing.T) {
				g := set.Graphs[graph]
				s, err := rt.Load(context.Background(), set, graph)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				batch := min(2, g.MaxBatch)
				if graph == engines.PaintUNet {
					batch = set.Paint.Sampler.RowsPerJob()
				}
				out, err := s.Run(context.Background(), paintInputs(set, g, batch, rand.New(rand.NewPCG(2, 3))))
				if err != nil {
					t.Fatal(err)
				}
				checkOutputs(t, g, batch, out)
			})
		}
	}
}

// byName returns the output called name.
func byName(t *testing.T, out []tensor.Tensor, name string) tensor.Tensor {
	t.Helper()
	for _, o := range out {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no output %s", name)
	return tensor.Tensor{}
}

// The oracle sets keep their promise through ONNX Runtime: a picture
// encoded by vae_encoder, given to paint_ref, and a noisy sample at any
// timestep give a noise prediction whose clean-sample estimate decodes
// back to the picture in every view (2.1: the MR views to the oracle's
// fixed colour, metallic 0 and roughness 0.75).
func TestTinyPaintOracleEstimatesThePicture(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	for _, name := range []string{"tiny-paint-2.0-oracle", "tiny-paint-2.1-oracle"} {
		t.Run(name, func(t *testing.T) {
			set := openPaintSet(t, name)
			p := set.Paint
			run := func(graph string, in []tensor.Tensor) []tensor.Tensor {
				s, err := rt.Load(ctx, set, graph)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				out, err := s.Run(ctx, in)
				if err != nil {
					t.Fatalf("%s: %v", graph, err)
				}
				return out
			}
			size, h := p.ViewSize, p.ViewSize/8
			// left half orange, right half blue, in [-1, 1]
			picture := make([]float32, 3*size*size)
			colour := func(x int) [3]float32 {
				if x < size/2 {
					return [3]float32{0.6, -0.2, -0.8}
				}
				return [3]float32{-0.5, 0.4, 0.9}
			}
			for c := range 3 {
				for y := range size {
					for x := range size {
						picture[(c*size+y)*size+x] = colour(x)[c]
					}
				}
			}
			moments := run(engines.VAEEncoder, []tensor.Tensor{{Name: "image", Shape: []int64{1, 3, int64(size), int64(size)}, Data: picture}})[0]
			latent := make([]float32, 4*h*h)
			for i := range latent {
				latent[i] = moments.Data[i] * float32(p.VAEScaleFactor) // logvar is -30: the sample is the mean
			}
			// paint_ref runs once per job; every row of the job gets its features.
			rows := p.Sampler.RowsPerJob()
			refs := run(engines.PaintRef, []tensor.Tensor{{Name: "ref_latents", Shape: []int64{1, 1, 4, int64(h), int64(h)}, Data: latent}})
			for i, r := range refs {
				tiled := make([]float32, 0, rows*len(r.Data))
				for range rows {
					tiled = append(tiled, r.Data...)
				}
				refs[i] = tensor.Tensor{Name: r.Name, Shape: append([]int64{int64(rows)}, r.Shape[1:]...), Data: tiled}
			}

			g := set.Graphs[engines.PaintUNet]
			in := paintInputs(set, g, rows, rand.New(rand.NewPCG(5, 8)))
			const step = 600
			alpha := alphaCumprod(step)
			for i := range in {
				switch {
				case in[i].Name == "timestep":
					for r := range in[i].Data {
						in[i].Data[r] = step
					}
				case strings.HasPrefix(in[i].Name, "ref_") && in[i].Name != "ref_scale":
					in[i] = byName(t, refs, in[i].Name)
				}
			}
			sample := in[0]
			eps := byName(t, run(engines.PaintUNet, in), "noise_pred")
			// x0 = (x_t − √(1−ᾱ)·ε)/√ᾱ from the last (fully conditioned) row
			per := len(eps.Data) / rows
			views := len(eps.Data) / rows / (4 * h * h)
			x0 := make([]float32, per)
			for j := range per {
				k := (rows-1)*per + j
				x0[j] = (sample.Data[k] - float32(math.Sqrt(1-alpha))*eps.Data[k]) / float32(math.Sqrt(alpha))
				x0[j] /= float32(p.VAEScaleFactor)
			}
			decoded := run(engines.VAEDecoder, []tensor.Tensor{{Name: "latent", Shape: []int64{int64(views), 4, int64(h), int64(h)}, Data: x0}})[0]
			img := size * size * 3
			for v := range views {
				want := func(c, x int) float32 { return colour(x)[c] }
				if v >= p.Views { // 2.1's MR views
					mr := [3]float32{-1, 0.5, -1}
					want = func(c, _ int) float32 { return mr[c] }
				}
				for c := range 3 {
					for y := range size {
						for x := range size {
							got := decoded.Data[v*img+(c*size+y)*size+x]
							if d := math.Abs(float64(got - want(c, x))); d > 1e-3 {
								t.Fatalf("view %d channel %d at (%d, %d): %v, want %v", v, c, x, y, got, want(c, x))
							}
						}
					}
				}
			}
		})
	}
}

// alphaCumprod is ᾱ_t of SD-2.x's scaled_linear schedule (β from 0.00085 to
// 0.012 over 1000 steps), the schedule of the tiny sets' scheduler configs.
func alphaCumprod(t int) float64 {
	lo, hi := math.Sqrt(0.00085), math.Sqrt(0.012)
	a := 1.0
	for i := 0; i <= t; i++ {
		b := lo + (hi-lo)*float64(i)/999
		a *= 1 - b*b
	}
	return a
}
