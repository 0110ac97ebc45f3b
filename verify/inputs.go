package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Inputs returns one batch of seeded inputs for a graph of the manifest, the
// same on every machine and Go release for the same seed: both sides of a
// comparison, and a reference written elsewhere, see identical bits. Each
// input has its own stream (PCG seeded by seed and the graph and input
// names), so adding a graph or an input never shifts another's values.
// Values follow what the pipeline feeds each tensor: σ in [0, 1] for
// timestep, guidance scales in [1, 10], query points inside the decoding box,
// RGB in [0, 1] for the matting graph's image, and roughly standard normal values elsewhere (latents, cond, features, and
// the normalized image). The open query dim of vae_geometry takes
// volume.chunk_points, the size the pipeline calls it with and the profile
// tools/build-engines builds for; any other open dim is an error. Paint
// graphs get what the paint pipeline feeds them (paintFill, paintRows).
func Inputs(m *engines.Manifest, graph string, batch int, seed uint64) ([]tensor.Tensor, error) {
	g, ok := m.Graphs[graph]
	if !ok {
		return nil, fmt.Errorf("verify: model set %q has no graph %q", m.Name, graph)
	}
	if batch < 1 || batch > g.MaxBatch {
		return nil, fmt.Errorf("verify: %s: batch %d outside 1..%d (max_batch)", graph, batch, g.MaxBatch)
	}
	out := make([]tensor.Tensor, len(g.Inputs))
	for i, spec := range g.Inputs {
		shape := make([]int64, len(spec.Shape))
		for k, d := range spec.Shape {
			switch {
			case k == 0:
				shape[k] = int64(batch)
			case d >= 0:
				shape[k] = d
			case spec.Name == "queries" && k == 1 && m.Volume.ChunkPoints > 0:
				shape[k] = int64(m.Volume.ChunkPoints)
			default:
				return nil, fmt.Errorf("verify: %s: input %q has open dim %d (shape %v) and no size to give it", graph, spec.Name, k, spec.Shape)
			}
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%s/%s", graph, spec.Name)
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		data := make([]float32, tensor.Elements(shape))
		fill := normal
		switch spec.Name {
		case "timestep":
			fill = func(r *rand.Rand) float32 { return float32(uniform(r)) }
		case "guidance":
			fill = func(r *rand.Rand) float32 { return float32(float64(9*uniform(r)) + 1) }
		case "queries":
			b := m.Volume.Bounds
			fill = func(r *rand.Rand) float32 { return float32(float64(2*b*uniform(r)) - b) }
		case "image":
			if graph == engines.Matting { // plain RGB, not normalized like the conditioner's
				fill = func(r *rand.Rand) float32 { return float32(uniform(r)) }
			}
		}
		if m.IsPaint() {
			fill = paintFill(m, graph, spec.Name, fill)
		}
		for j := range data {
			data[j] = fill(rng)
		}
		if m.IsPaint() {
			paintRows(spec.Name, shape, data)
		}
		out[i] = tensor.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return out, nil
}

// uniform is in [0, 1) with 53 random bits: exact, whatever the platform.
func uniform(r *rand.Rand) float64 { return float64(r.Uint64()>>11) * 0x1p-53 }

// normal is the Irwin–Hall approximation of a standard normal (the sum of
// twelve uniforms, less 6): only additions, so every platform rounds it
// alike, which math.Log and math.Sincos do not promise.
func normal(r *rand.Rand) float32 {
	var s float64
	for range 12 {
		s += uniform(r)
	}
	return float32(s - 6)
}

// hashTensors is the SHA-256 of tensors' names, shapes and little-endian
// float32 values, in order.
func hashTensors(ts []tensor.Tensor) [32]byte {
	h := sha256.New()
	for _, t := range ts {
		fmt.Fprintf(h, "%s%v:", t.Name, t.Shape)
		_ = binary.Write(h, binary.LittleEndian, t.Data)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Picture is the seeded test picture of the sampler comparison: a 256×256
// PNG with a transparent background and an opaque object (an ellipse and an
// overlapping box in two colours, placed and sized by the seed), so that
// preprocessing takes its alpha path and needs no matting engine.
func Picture(seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 0x68793364)) // "hy3d"
	const size = 256
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	cx, cy := 96+64*uniform(rng), 96+64*uniform(rng)
	rx, ry := 40+40*uniform(rng), 40+40*uniform(rng)
	bx0, by0 := int(cx), int(cy-ry/2)
	bx1, by1 := bx0+int(rx), by0+int(ry)
	shade := func() uint8 { return uint8(40 + 180*uniform(rng)) }
	body := color.NRGBA{shade(), shade(), shade(), 255}
	box := color.NRGBA{shade(), shade(), shade(), 255}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			switch {
			case x >= bx0 && x < bx1 && y >= by0 && y < by1:
				img.SetNRGBA(x, y, box)
			case dx*dx+dy*dy <= 1:
				img.SetNRGBA(x, y, body)
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("verify: test picture: %w", err)
	}
	return b.Bytes(), nil
}

// paintFill is the value of a paint graph's input (docs/paint-contract.md):
// integer timesteps in [0, 999]; RGB in [−1, 1] for vae_encoder and in
// [0, 1] for the upscaler; integer voxel indices inside the level's voxel
// grid for rope_index_l*; camera ids are set per view by paintRows. Latents,
// features, DINO tokens and normalised pixels stay roughly standard normal.
func paintFill(m *engines.Manifest, graph, input string, fill func(*rand.Rand) float32) func(*rand.Rand) float32 {
	switch {
	case input == "timestep":
		return func(r *rand.Rand) float32 { return float32(math.Floor(1000 * uniform(r))) }
	case input == "image" && graph == engines.VAEEncoder:
		return func(r *rand.Rand) float32 { return float32(2*uniform(r) - 1) }
	case input == "image" && graph == engines.Upscaler:
		return func(r *rand.Rand) float32 { return float32(uniform(r)) }
	case strings.HasPrefix(input, "rope_index_l") && m.Paint != nil && m.Paint.RoPE != nil:
		level, err := strconv.Atoi(strings.TrimPrefix(input, "rope_index_l"))
		if err != nil || level < 0 || level >= len(m.Paint.RoPE.Voxels) {
			return fill
		}
		voxels := float64(m.Paint.RoPE.Voxels[level])
		return func(r *rand.Rand) float32 { return float32(math.Floor(voxels * uniform(r))) }
	}
	return fill
}

// defaultCameraIDs are Tencent's camera ids of 2.0's six fixed views.
var defaultCameraIDs = [...]float32{21, 12, 15, 18, 43, 37}

// paintRows overwrites the inputs whose values follow the rows' guidance
// layout: ref_scale and text_scale are 0 in a batch's first row (an
// unconditional row) and 1 in the others, and camera ids are the fixed
// views' in order.
func paintRows(input string, shape []int64, data []float32) {
	switch input {
	case "ref_scale", "text_scale":
		for i := range data {
			data[i] = 1
		}
		if len(data) > 1 {
			data[0] = 0
		}
	case "camera":
		views := int(shape[len(shape)-1])
		for i := range data {
			data[i] = defaultCameraIDs[(i%views)%len(defaultCameraIDs)]
		}
	}
}
