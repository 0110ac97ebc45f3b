package texture

import (
	"context"
	"fmt"
	"math"
)

// BakeMode selects how a view reaches the texture.
type BakeMode int

const (
	// BakeGather is Hunyuan3D-2.1's "back_sample": every covered texel is
	// projected into the view and samples it bilinearly, accepted when its
	// depth is within DepthTolerance of the view's.
	BakeGather BakeMode = iota
	// BakeSplat is Hunyuan3D-2.0's "linear": every reliable pixel splats
	// its colour bilinearly at its UV.
	BakeSplat
)

// Hunyuan3D-Paint's bake parameters.
const (
	BakeExponent   = 4    // weights are view weight × cos^BakeExponent
	BakeMaxAngle   = 75.0 // degrees: pixels seen more obliquely get weight 0
	DepthTolerance = 3e-3 // normalized-frame units, BakeGather's depth test
)

// UnreliableRadius is how many pixels around the silhouette and around
// depth edges a view of the given size does not bake: 2/512 of its size
// (8 at 2048).
func UnreliableRadius(size int) int { return int(2.0 / 512 * float64(size)) }

// Baker merges painted views into one texture by weighted averaging.
type Baker struct {
	scene    *Scene
	uv       *UVRaster
	mode     BakeMode
	channels int
	color    []float32
	weight   []float32
	bounds   []float32 // boxes of runs of texels (BakeGather), see nativeTexelBounds
}

// NewBaker starts an empty texture the size of uv with channels floats per
// texel (3 for albedo; Hunyuan3D-2.1 bakes metallic-roughness separately).
func (s *Scene) NewBaker(uv *UVRaster, channels int, mode BakeMode) (*Baker, error) {
	if channels <= 0 || channels > 16 || uv == nil || len(uv.FaceIDs) != uv.Size*uv.Size {
		return nil, fmt.Errorf("bake: %w: %d channels or a bad UV raster", ErrInvalidInput, channels)
	}
	n := uv.Size * uv.Size
	b := &Baker{scene: s, uv: uv, mode: mode, channels: channels,
		color: make([]float32, channels*n), weight: make([]float32, n)}
	if mode == BakeGather {
		var err error
		if b.bounds, err = nativeTexelBounds(uv.TexelPositions, s.threads); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Add bakes image, the painted version of view (same size, same row order,
// Channels equal to the baker's), with the view weight w. It reports false
// when the view was skipped because nearly all it would paint (over 99 %)
// is painted already.
func (b *Baker) Add(ctx context.Context, view *View, image Image, w float64) (bool, error) {
	const op = "bake"
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if err := image.check(op); err != nil {
		return false, err
	}
	if image.Width != view.Size || image.Height != view.Size || image.Channels != b.channels {
		return false, fmt.Errorf("%s: %w: %dx%dx%d image for a %d view and %d channels", op, ErrInvalidInput,
			image.Width, image.Height, image.Channels, view.Size, b.channels)
	}
	weights, err := b.scene.ViewWeights(view)
	if err != nil {
		return false, err
	}
	switch b.mode {
	case BakeSplat:
		uvMap, err := b.scene.Interpolate(b.scene.atlas.UV, 2, view.FaceIDs, view.Bary, []float32{0, 0})
		if err != nil {
			return false, err
		}
		return nativeBakeSplat(uvMap, image.Pix, weights, view.Size, view.Size, b.channels, b.uv.Size, b.uv.Size,
			float32(w), BakeExponent, b.scene.threads, b.color, b.weight)
	default:
		w2c := view.Camera.WorldToCamera()
		return nativeBakeGather(b.uv.TexelPositions, b.uv.TexelIndex, b.bounds, image.Pix, view.Depth, weights, view.Size,
			view.Size, b.channels, &w2c, OrthoScale, float32(w), BakeExponent, DepthTolerance, b.uv.Size*b.uv.Size,
			b.scene.threads, b.color, b.weight)
	}
}

// ViewWeights are the per-pixel bake weights of a view: the cosine between
// its normals and the direction to the camera, 0 beyond BakeMaxAngle, -1
// where the pixel is unreliable (background, or within UnreliableRadius of
// the silhouette or of a depth edge).
func (s *Scene) ViewWeights(view *View) ([]float32, error) {
	weights := make([]float32, view.Size*view.Size)
	err := nativeViewWeights(view.FaceIDs, view.Normals, view.Depth, view.Size, view.Size, view.Camera.ToCamera(),
		float32(math.Cos(BakeMaxAngle*math.Pi/180)), UnreliableRadius(view.Size), s.threads, weights)
	return weights, err
}

// Resolve divides the sums: the merged texture, and which texels some view
// painted. The baker must not be used afterwards.
func (b *Baker) Resolve() (Image, []uint8, error) {
	painted := make([]uint8, len(b.weight))
	if err := nativeBakeResolve(b.color, b.weight, b.channels, b.scene.threads, painted); err != nil {
		return Image{}, nil, err
	}
	img := Image{Width: b.uv.Size, Height: b.uv.Size, Channels: b.channels, Pix: b.color}
	b.color, b.weight = nil, nil
	return img, painted, nil
}

// Fill colours every texel no view painted (native/src/texture_fill.cpp):
// vertex colours spread over the seam-welded mesh in one shortest-path
// pass, interpolated inside the charts with a pull-push correction toward
// the painted texels, and pull-push averages in the gutters. tex is
// modified in place.
func (s *Scene) Fill(ctx context.Context, uv *UVRaster, tex Image, painted []uint8) error {
	const op = "fill"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := tex.check(op); err != nil {
		return err
	}
	if tex.Width != uv.Size || tex.Height != uv.Size || len(painted) != uv.Size*uv.Size {
		return fmt.Errorf("%s: %w: texture, mask and UV raster sizes differ", op, ErrInvalidInput)
	}
	colors := make([]float32, tex.Channels*len(s.atlas.Xref))
	known := make([]uint8, len(s.atlas.Xref))
	if err := nativeFillVertexColors(s.positions, s.atlas.UV, s.atlas.Xref, s.atlas.Indices, tex.Pix, painted,
		tex.Width, tex.Height, tex.Channels, colors, known); err != nil {
		return err
	}
	return nativeFillTexels(tex.Pix, painted, uv.FaceIDs, s.atlas.UV, s.atlas.Indices, colors, known, tex.Width,
		tex.Height, tex.Channels, s.threads)
}

// SelectViews is Hunyuan3D-2.1's greedy view selection: the first six
// candidates are always kept; then, while fewer than maxViews are chosen,
// the candidate that sees the largest area of faces no chosen view sees is
// added if that area exceeds 1 % of the surface. Visibility is each
// candidate's face-id render at resolution pixels (1024 in Hunyuan3D).
func (s *Scene) SelectViews(ctx context.Context, candidates []Camera, maxViews, resolution int) ([]Camera, error) {
	total := 0.0
	for _, a := range s.faceAreas {
		total += a
	}
	seen := make([][]int32, len(candidates))
	for i, cam := range candidates {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("select views: %w", err)
		}
		ids := make([]int32, resolution*resolution)
		bary := make([]float32, 3*resolution*resolution)
		w2c := cam.WorldToCamera()
		if err := nativeRasterizeOrtho(s.positions, s.atlas.Indices, &w2c, OrthoScale, resolution, resolution,
			s.threads, ids, bary, nil); err != nil {
			return nil, err
		}
		seen[i] = uniqueFaces(ids)
	}
	covered := make([]bool, len(s.faceAreas))
	chosen := make([]bool, len(candidates))
	var out []Camera
	take := func(i int) {
		chosen[i] = true
		out = append(out, candidates[i])
		for _, f := range seen[i] {
			covered[f] = true
		}
	}
	for i := 0; i < min(6, len(candidates)); i++ {
		take(i)
	}
	for len(out) < maxViews {
		best, gain := -1, 0.0
		for i := range candidates {
			if chosen[i] {
				continue
			}
			g := 0.0
			for _, f := range seen[i] {
				if !covered[f] {
					g += s.faceAreas[f]
				}
			}
			if total > 0 && g/total > gain {
				best, gain = i, g/total
			}
		}
		if best < 0 || gain <= 0.01 {
			break
		}
		take(best)
	}
	return out, nil
}

func uniqueFaces(ids []int32) []int32 {
	var out []int32
	mark := map[int32]bool{}
	for _, f := range ids {
		if f >= 0 && !mark[f] {
			mark[f] = true
			out = append(out, f)
		}
	}
	return out
}
