// Package synthpic draws synthetic photographs with a known object mask: a
// shaded object on a solid, gradient, noisy or textured backdrop. The
// cut-out's tests and its benchmark (bench/cutout) measure segmentations
// against the mask.
package synthpic

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Backdrop kinds.
const (
	Solid    = "solid"    // one flat colour
	Gradient = "gradient" // top-to-bottom fall-off plus a vignette
	Noisy    = "noisy"    // the gradient with camera noise (σ 10 levels), saved as JPEG (quality 85)
	Textured = "textured" // tiles with grout lines over a blotchy paper texture
)

// Backdrops lists the kinds in table order.
var Backdrops = []string{Solid, Gradient, Noisy, Textured}

// Shapes lists the object outlines.
var Shapes = []string{"disc", "box", "ring", "figure", "ell"}

// Scene is one synthetic picture.
type Scene struct {
	W, H     int
	Backdrop string
	Base     [3]float64 // backdrop colour
	Shape    string
	Size     float64    // object extent as a share of the shorter side
	Colour   [3]float64 // object colour before shading
	Seed     uint64
}

// Name is a short label of the scene.
func (s Scene) Name() string {
	return fmt.Sprintf("%s/%s/%.2f/%02x%02x%02x", s.Backdrop, s.Shape, s.Size,
		uint8(s.Colour[0]), uint8(s.Colour[1]), uint8(s.Colour[2]))
}

// Suite is the benchmark's set of scenes for one backdrop kind: every shape
// at three sizes in four colours, one of them close to the backdrop's own
// (about 30 RGB levels away), on three backdrop colours in turn.
func Suite(kind string, w, h int) []Scene {
	bases := [][3]float64{{238, 238, 235}, {150, 150, 152}, {178, 190, 205}}
	var out []Scene
	n := 0
	for si, shape := range Shapes {
		for zi, size := range []float64{0.3, 0.55, 0.8} {
			base := bases[(si+zi)%len(bases)]
			near := [3]float64{base[0] - 28, base[1] - 14, base[2] + 4}
			if base[0] < 200 {
				near = [3]float64{base[0] + 30, base[1] + 12, base[2] - 6}
			}
			for _, col := range [][3]float64{{190, 40, 35}, {30, 45, 110}, {140, 95, 55}, near} {
				out = append(out, Scene{W: w, H: h, Backdrop: kind, Base: base, Shape: shape,
					Size: size, Colour: col, Seed: uint64(n)})
				n++
			}
		}
	}
	return out
}

// Render draws the scene and returns the picture and the true mask (true
// where the pixel centre lies inside the object). The object's edge is
// antialiased (3×3 samples per pixel).
func (s Scene) Render() (*image.NRGBA, []bool, error) {
	img := image.NewNRGBA(image.Rect(0, 0, s.W, s.H))
	mask := make([]bool, s.W*s.H)
	rng := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	tex := newValueNoise(rng)
	side := float64(min(s.W, s.H))
	cx, cy := float64(s.W)/2+0.07*side*(rng.Float64()-0.5), float64(s.H)/2+0.07*side*(rng.Float64()-0.5)
	half := s.Size * side / 2
	for y := range s.H {
		for x := range s.W {
			var acc [3]float64
			for sy := range 3 {
				for sx := range 3 {
					px, py := float64(x)+(float64(sx)+0.5)/3, float64(y)+(float64(sy)+0.5)/3
					u, v := (px-cx)/half, (py-cy)/half
					var c [3]float64
					if inside(s.Shape, u, v) {
						c = s.objectColour(u, v)
					} else {
						c = s.backdropColour(px/float64(s.W), py/float64(s.H), tex)
					}
					for k := range 3 {
						acc[k] += c[k] / 9
					}
				}
			}
			if s.Backdrop == Noisy {
				for k := range 3 {
					acc[k] += 10 * rng.NormFloat64()
				}
			}
			mask[y*s.W+x] = inside(s.Shape, (float64(x)+0.5-cx)/half, (float64(y)+0.5-cy)/half)
			p := img.Pix[y*img.Stride+4*x:]
			for k := range 3 {
				p[k] = uint8(math.Round(min(max(acc[k], 0), 255)))
			}
			p[3] = 255
		}
	}
	if s.Backdrop == Noisy {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
			return nil, nil, err
		}
		dec, err := jpeg.Decode(&buf)
		if err != nil {
			return nil, nil, err
		}
		for y := range s.H {
			for x := range s.W {
				r, g, b, _ := dec.At(x, y).RGBA()
				p := img.Pix[y*img.Stride+4*x:]
				p[0], p[1], p[2] = uint8(r>>8), uint8(g>>8), uint8(b>>8)
			}
		}
	}
	return img, mask, nil
}

// inside tests a point in object units (the object spans about [−1, 1]²,
// image down = +v).
func inside(shape string, u, v float64) bool {
	switch shape {
	case "disc":
		return u*u+v*v <= 1
	case "box":
		return roundedBox(u, v, 0.9, 0.7, 0.12)
	case "ring":
		r := u*u + v*v
		return r <= 1 && r >= 0.45*0.45
	case "figure":
		head := u*u+(v+0.72)*(v+0.72) <= 0.22*0.22
		body := roundedBox(u, v+0.12, 0.32, 0.4, 0.1)
		arms := roundedBox(u, v+0.32, 0.7, 0.09, 0.05)
		legs := (math.Abs(u-0.15) <= 0.11 || math.Abs(u+0.15) <= 0.11) && v >= 0.2 && v <= 1
		return head || body || arms || legs
	case "ell":
		return (u >= -0.8 && u <= -0.2 && v >= -0.9 && v <= 0.9) || (u >= -0.8 && u <= 0.8 && v >= 0.3 && v <= 0.9)
	}
	panic("synthpic: unknown shape " + shape)
}

func roundedBox(u, v, hx, hy, r float64) bool {
	dx, dy := math.Abs(u)-(hx-r), math.Abs(v)-(hy-r)
	if dx <= 0 || dy <= 0 {
		return math.Abs(u) <= hx && math.Abs(v) <= hy
	}
	return dx*dx+dy*dy <= r*r
}

// objectColour shades the object: lit from the upper left, darker toward
// the lower right, as a studio photo of a rounded object.
func (s Scene) objectColour(u, v float64) [3]float64 {
	shade := 1.1 - 0.25*(u+v+2)/4
	var c [3]float64
	for k := range 3 {
		c[k] = s.Colour[k] * shade
	}
	return c
}

// backdropColour at (x, y) ∈ [0, 1]².
func (s Scene) backdropColour(x, y float64, tex *valueNoise) [3]float64 {
	c := s.Base
	switch s.Backdrop {
	case Gradient, Noisy:
		dx, dy := x-0.5, y-0.5
		f := 1.06 - 0.2*y - 0.25*(dx*dx+dy*dy)
		for k := range 3 {
			c[k] *= f
		}
	case Textured:
		blot := 18 * (tex.at(6*x, 6*y) + 0.5*tex.at(17*x, 17*y))
		tile := 1.0
		gx, gy := math.Mod(x*8, 1), math.Mod(y*8, 1)
		if gx < 0.05 || gy < 0.05 {
			tile = 0.8
		}
		for k := range 3 {
			c[k] = c[k]*tile + blot
		}
	}
	return c
}

// valueNoise is smooth lattice noise in [−1, 1] on a 64×64 periodic grid.
type valueNoise struct{ v [64 * 64]float64 }

func newValueNoise(rng *rand.Rand) *valueNoise {
	var n valueNoise
	for i := range n.v {
		n.v[i] = 2*rng.Float64() - 1
	}
	return &n
}

func (n *valueNoise) at(x, y float64) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	tx, ty := x-x0, y-y0
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	i, j := int(x0)&63, int(y0)&63
	g := func(a, b int) float64 { return n.v[(b&63)*64+(a&63)] }
	top := g(i, j)*(1-tx) + g(i+1, j)*tx
	bot := g(i, j+1)*(1-tx) + g(i+1, j+1)*tx
	return top*(1-ty) + bot*ty
}

// IoU is the intersection over union of a matte (alpha ≥ 128 counts as
// object) and a mask.
func IoU(alpha *image.Alpha, mask []bool) float64 {
	w := alpha.Rect.Dx()
	inter, union := 0, 0
	for i, m := range mask {
		a := alpha.Pix[(i/w)*alpha.Stride+i%w] >= 128
		if a && m {
			inter++
		}
		if a || m {
			union++
		}
	}
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}
