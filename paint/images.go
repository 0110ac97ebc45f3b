package paint

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/schedulers"
	"github.com/hy3d/hy3d/texture"
)

// Images handed to and read from the graphs are in picture row order (row
// 0 at the top), while texture's views have row 0 at the bottom; flip
// converts between the two.

// newNoise is a job's seeded noise: the initial latents, the VAE samples
// and every scheduler step draw from it in that order.
func newNoise(seed uint64) *schedulers.SeedSequence {
	return schedulers.NewSeedSequence(seed, pipeline.Noise)
}

// recenterBorder is the margin Hunyuan3D-Paint's recenter_image leaves
// around the object, as a share of its width and of its height.
const recenterBorder = 0.2

// preparePicture composites picture on white, pads it to a centred square
// (white) and resizes it to size: RGB in [0, 1], picture row order. With
// recenter (2.0 sets), a picture with transparency is first recentred as
// Hunyuan3D-Paint 2.0's pipeline does (recenter_image): cropped to its
// pixels of nonzero alpha, with a margin of recenterBorder of the crop's
// width on either side and of its height above and below, so that a cut-out
// fills the reference alike wherever it stood in the picture; an opaque
// picture is taken as given, as an RGB one is there, and so is a fully
// transparent one. Tencent's 2.1 pipeline takes the picture as given.
func preparePicture(picture image.Image, size int, recenter bool) texture.Image {
	b := picture.Bounds()
	pixels := make([]color.NRGBA64, 0, b.Dx()*b.Dy())
	crop, opaque := image.Rectangle{}, true
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBA64Model.Convert(picture.At(x, y)).(color.NRGBA64)
			pixels = append(pixels, c)
			opaque = opaque && c.A == 0xffff
			if c.A != 0 {
				crop = crop.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	asGiven := !recenter || opaque || crop.Empty()
	if asGiven {
		crop = b
	}
	w, h := crop.Dx(), crop.Dy()
	bw, bh := 0, 0 // the margin on either side
	if !asGiven {
		bw, bh = int(float64(w)*recenterBorder), int(float64(h)*recenterBorder)
	}
	side := max(w+2*bw, h+2*bh)
	ox, oy := (side-w-2*bw)/2+bw, (side-h-2*bh)/2+bh
	sq := texture.NewImage(side, side, 3)
	for i := range sq.Pix {
		sq.Pix[i] = 1
	}
	for y := range h {
		for x := range w {
			c := pixels[(crop.Min.Y-b.Min.Y+y)*b.Dx()+crop.Min.X-b.Min.X+x]
			a := float32(c.A) / 0xffff
			p := 3 * ((oy+y)*side + ox + x)
			for k, v := range [3]uint16{c.R, c.G, c.B} {
				sq.Pix[p+k] = float32(v)/0xffff*a + (1 - a)
			}
		}
	}
	return resize(sq, size, size)
}

// resize resamples src to w×h: an area average where it shrinks, bilinear
// (pixel centres, clamped at the borders) where it grows.
func resize(src texture.Image, w, h int) texture.Image {
	if src.Width == w && src.Height == h {
		return texture.Image{Width: w, Height: h, Channels: src.Channels, Pix: append([]float32(nil), src.Pix...)}
	}
	dst := texture.NewImage(w, h, src.Channels)
	c := src.Channels
	sx, sy := float64(src.Width)/float64(w), float64(src.Height)/float64(h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out := dst.Pix[c*(y*w+x) : c*(y*w+x)+c]
			if sx >= 1 && sy >= 1 {
				x0, x1 := int(float64(x)*sx), max(int(float64(x+1)*sx), int(float64(x)*sx)+1)
				y0, y1 := int(float64(y)*sy), max(int(float64(y+1)*sy), int(float64(y)*sy)+1)
				n := float32((x1 - x0) * (y1 - y0))
				for yy := y0; yy < y1; yy++ {
					for xx := x0; xx < x1; xx++ {
						for k := range out {
							out[k] += src.Pix[c*(yy*src.Width+xx)+k] / n
						}
					}
				}
				continue
			}
			fx := clampF((float64(x)+0.5)*sx-0.5, 0, float64(src.Width-1))
			fy := clampF((float64(y)+0.5)*sy-0.5, 0, float64(src.Height-1))
			x0, y0 := int(fx), int(fy)
			x1, y1 := min(x0+1, src.Width-1), min(y0+1, src.Height-1)
			ax, ay := float32(fx-float64(x0)), float32(fy-float64(y0))
			for k := range out {
				at := func(xx, yy int) float32 { return src.Pix[c*(yy*src.Width+xx)+k] }
				top := at(x0, y0)*(1-ax) + at(x1, y0)*ax
				bot := at(x0, y1)*(1-ax) + at(x1, y1)*ax
				out[k] = top*(1-ay) + bot*ay
			}
		}
	}
	return dst
}

func clampF(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// flip returns img upside down.
func flip(img texture.Image) texture.Image {
	out := texture.NewImage(img.Width, img.Height, img.Channels)
	row := img.Width * img.Channels
	for y := 0; y < img.Height; y++ {
		copy(out.Pix[(img.Height-1-y)*row:(img.Height-y)*row], img.Pix[y*row:(y+1)*row])
	}
	return out
}

// toModel appends img (HWC in [0, 1]) to dst as CHW in [-1, 1], the VAE
// encoder's input.
func toModel(dst []float32, img texture.Image) []float32 {
	n := img.Width * img.Height
	for k := 0; k < 3; k++ {
		for p := 0; p < n; p++ {
			dst = append(dst, img.Pix[img.Channels*p+k]*2-1)
		}
	}
	return dst
}

// fromModel reads one CHW image in ≈[-1, 1] (the VAE decoder's output) as
// HWC in [0, 1].
func fromModel(chw []float32, size int) texture.Image {
	img := texture.NewImage(size, size, 3)
	n := size * size
	for k := 0; k < 3; k++ {
		for p := 0; p < n; p++ {
			img.Pix[3*p+k] = (min(max(chw[k*n+p], -1), 1) + 1) / 2
		}
	}
	return img
}

// conditionMaps are the views' normal and position maps at the view size,
// picture row order, RGB in [0, 1], background white.
type conditionMaps struct {
	normals, positions []texture.Image
}

// cameras are the set's views: 2.0's six, or 2.1's selection among its 30
// candidates, completed in candidate order when fewer than the set's view
// count add enough unseen surface (the graphs take exactly N views).
func (p *Painter) cameras(ctx context.Context, s *texture.Scene) ([]texture.Camera, error) {
	n := p.spec.Views
	if p.spec.Version == "2.0" {
		cams := texture.Cameras20()
		if n != len(cams) {
			return nil, fmt.Errorf("a 2.0 set paints %d views, this one %d", len(cams), n)
		}
		return cams, nil
	}
	candidates := texture.Candidates21()
	if n < 6 || n > len(candidates) {
		return nil, fmt.Errorf("view count %d outside 6..%d", n, len(candidates))
	}
	cams, err := s.SelectViews(ctx, candidates, n, selectionSize)
	if err != nil {
		return nil, err
	}
	for _, c := range candidates {
		if len(cams) == n {
			break
		}
		chosen := false
		for _, k := range cams {
			chosen = chosen || k == c
		}
		if !chosen {
			cams = append(cams, c)
		}
	}
	return cams, nil
}

// selectionSize is the side of the face-id renders of 2.1's view selection.
const selectionSize = 512

// normalMode is the version's shading: 2.0 vertex normals, 2.1 face normals.
func (p *Painter) normalMode() texture.NormalMode {
	if p.spec.Version == "2.0" {
		return texture.VertexNormals
	}
	return texture.FaceNormals
}

// renderMaps renders every camera's normal map ((n+1)/2 of the world
// normal) and position map (0.5 − p/1.15 in the normalized frame), both on
// white, at the view size.
func (p *Painter) renderMaps(ctx context.Context, s *texture.Scene, cams []texture.Camera) (conditionMaps, error) {
	var maps conditionMaps
	size := p.spec.ViewSize
	for _, cam := range cams {
		v, err := s.Render(ctx, cam, size, p.normalMode())
		if err != nil {
			return maps, err
		}
		pos, err := s.Interpolate(s.Positions(), 3, v.FaceIDs, v.Bary, []float32{0, 0, 0})
		if err != nil {
			return maps, err
		}
		normal, position := texture.NewImage(size, size, 3), texture.NewImage(size, size, 3)
		for px, f := range v.FaceIDs {
			for k := 0; k < 3; k++ {
				if f < 0 {
					normal.Pix[3*px+k], position.Pix[3*px+k] = 1, 1
					continue
				}
				normal.Pix[3*px+k] = (v.Normals[3*px+k] + 1) / 2
				position.Pix[3*px+k] = 0.5 - pos[3*px+k]/texture.NormalizedDiameter
			}
		}
		maps.normals = append(maps.normals, flip(normal))
		maps.positions = append(maps.positions, flip(position))
	}
	return maps, nil
}

// cameraID is Tencent's 2.0 camera class of a view (docs/paint-contract.md).
func cameraID(c texture.Camera) (float32, error) {
	div := map[float64]int{0: 1, 20: 1, -20: 1, 90: 3, -90: 3}
	base := map[float64]int{-20: 0, 0: 12, 20: 24, -90: 36, 90: 40}
	d, ok := div[c.Elev]
	if !ok {
		return 0, fmt.Errorf("2.0 has no camera class for elevation %v", c.Elev)
	}
	a := int(math.Floor(c.Azim / 30))
	return float32(((((a+9)%12)+12)%12)/d + base[c.Elev]), nil
}

// ropeIndices are one RoPE level's voxel indices from the position maps
// (docs/paint-contract.md): [N·g², 3] for grid g and voxel resolution vox.
func ropeIndices(positions []texture.Image, grid, vox int) []float32 {
	out := make([]float32, 0, len(positions)*grid*grid*3)
	for _, img := range positions {
		cell := img.Width / grid
		for gy := 0; gy < grid; gy++ {
			for gx := 0; gx < grid; gx++ {
				var sum [3]float64
				n := 0
				for y := gy * cell; y < (gy+1)*cell; y++ {
					for x := gx * cell; x < (gx+1)*cell; x++ {
						px := img.Pix[3*(y*img.Width+x) : 3*(y*img.Width+x)+3]
						if px[0] == 1 || px[1] == 1 || px[2] == 1 {
							continue
						}
						for k := range sum {
							sum[k] += float64(px[k])
						}
						n++
					}
				}
				for k := range sum {
					mean := 0.0
					if n >= cell*cell/16 && n > 0 {
						mean = sum[k] / float64(n)
					}
					out = append(out, float32(math.RoundToEven(clampF(mean, 0, 1)*float64(vox-1))))
				}
			}
		}
	}
	return out
}

// dinoInput is transformers' DINOv2 preprocessing of the square reference:
// resize to 256/224 of the crop, centre-crop, ImageNet-normalise, CHW.
func dinoInput(ref texture.Image, size int, mean, std [3]float64) []float32 {
	full := size * 256 / 224
	big := resize(ref, full, full)
	off := (full - size) / 2
	out := make([]float32, 0, 3*size*size)
	for k := 0; k < 3; k++ {
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				v := float64(big.Pix[3*((y+off)*full+x+off)+k])
				out = append(out, float32((v-mean[k])/std[k]))
			}
		}
	}
	return out
}
