package paint

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/mesh/meshtest"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/texture"
)

// sphere is a UV sphere of radius 1 around the origin, triangles
// counter-clockwise seen from outside.
func sphere(rings, segments int) *mesh.Mesh {
	m := &mesh.Mesh{Vertices: []float32{0, 1, 0}}
	for r := 1; r < rings; r++ {
		th := math.Pi * float64(r) / float64(rings)
		for s := 0; s < segments; s++ {
			ph := 2 * math.Pi * float64(s) / float64(segments)
			m.Vertices = append(m.Vertices, float32(math.Sin(th)*math.Cos(ph)), float32(math.Cos(th)), float32(math.Sin(th)*math.Sin(ph)))
		}
	}
	m.Vertices = append(m.Vertices, 0, -1, 0)
	bottom := uint32(len(m.Vertices)/3 - 1)
	at := func(r, s int) uint32 { return uint32(1 + (r-1)*segments + s%segments) }
	for s := 0; s < segments; s++ {
		m.Indices = append(m.Indices, 0, at(1, s+1), at(1, s))
		for r := 1; r < rings-1; r++ {
			a, b, c, d := at(r, s), at(r, s+1), at(r+1, s), at(r+1, s+1)
			m.Indices = append(m.Indices, a, b, d, a, d, c)
		}
		m.Indices = append(m.Indices, bottom, at(rings-1, s), at(rings-1, s+1))
	}
	return m
}

// quadrants is a size² picture with four colours, one per quadrant.
var quadrantColours = [4][3]float64{{0.9, 0.2, 0.1}, {0.1, 0.7, 0.2}, {0.2, 0.3, 0.9}, {0.9, 0.85, 0.2}}

func quadrant(x, y, size int) int {
	q := 0
	if x >= size/2 {
		q++
	}
	if y >= size/2 {
		q += 2
	}
	return q
}

func quadrants(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			c := quadrantColours[quadrant(x, y, size)]
			img.Set(x, y, color.NRGBA{uint8(c[0]*255 + 0.5), uint8(c[1]*255 + 0.5), uint8(c[2]*255 + 0.5), 255})
		}
	}
	return img
}

// openTinySet opens engines/name and its ONNX Runtime loader, closed when
// the test ends; without ONNX Runtime the test is skipped.
func openTinySet(t testing.TB, name string) (*engines.Set, pipeline.Loader) {
	t.Helper()
	set, err := engines.Open(filepath.Join("..", "engines", name))
	if err != nil {
		t.Fatal(err)
	}
	l, err := pipeline.OpenBackend(context.Background(), set, pipeline.BackendOptions{Kind: pipeline.BackendORT, Logger: zerolog.Nop()})
	if errors.Is(err, tensor.ErrUnavailable) {
		t.Skipf("ONNX Runtime not installed (make deps): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return set, l
}

func newPainter(t testing.TB, name string) *Painter {
	t.Helper()
	set, l := openTinySet(t, name)
	p, err := New(context.Background(), Config{Set: set, Loader: l, Logger: zerolog.Nop(), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// frontTexels are the texels of uv whose surface faces the front camera
// within maxAngle (on the convex sphere: seen from the front), with their
// pixel (x, y) in the front view in picture row order at size.
func frontTexels(uv *texture.UVRaster, size int, maxAngle float64) (texels []int, px [][2]float64) {
	cam := texture.Camera{Elev: 0, Azim: 0, Weight: 1}
	w2c := cam.WorldToCamera()
	to := cam.ToCamera()
	for i, p := range uv.TexelIndex {
		pos := uv.TexelPositions[3*i : 3*i+3]
		r := math.Sqrt(float64(pos[0]*pos[0] + pos[1]*pos[1] + pos[2]*pos[2]))
		cos := float64(pos[0]*to[0]+pos[1]*to[1]+pos[2]*to[2]) / r
		if cos < math.Cos(maxAngle*math.Pi/180) {
			continue
		}
		var c [2]float64
		for k := 0; k < 2; k++ {
			c[k] = float64(w2c[4*k]*pos[0]+w2c[4*k+1]*pos[1]+w2c[4*k+2]*pos[2]+w2c[4*k+3]) / (texture.OrthoScale / 2)
		}
		x := (c[0]*0.5+0.5)*float64(size-1) + 0.5
		row := (c[1]*0.5+0.5)*float64(size-1) + 0.5
		texels = append(texels, int(p))
		px = append(px, [2]float64{x, float64(size) - row})
	}
	return texels, px
}

// The oracle sets end to end: the texture of a sphere painted from a
// four-colour picture carries, at every texel the front view sees head-on
// (within 25°) and away from the quadrants' borders (6 pixels of the
// 64-pixel view), the picture's colour there — so both axes of the picture
// land the right way round — within 0.01 on average and 0.02 at worst per
// channel (measured: 0.0012 and 0.0020, from the 8-bit picture and the other
// views' small cos⁴ weights; a texture upside down is off by 0.42); 2.1's metallic-roughness texture carries the oracle's metallic
// 0 and roughness 0.75 there. The GLBs pass the Khronos validator.
func TestOracleFrontCarriesThePicture(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the paint graphs")
	}
	for _, tc := range []struct {
		set string
		pbr bool
	}{{"tiny-paint-2.0-oracle", false}, {"tiny-paint-2.1-oracle", true}} {
		t.Run(tc.set, func(t *testing.T) {
			p := newPainter(t, tc.set)
			size := p.Spec().ViewSize
			var stages []Stage
			res, err := p.Paint(context.Background(), sphere(24, 48), quadrants(size), Options{
				TextureSize: 256, Seed: 7, Steps: 3,
				Progress: func(pr Progress) {
					if pr.Step == 0 {
						stages = append(stages, pr.Stage)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			meshtest.RequireTexturedGLB(t, res.GLB, tc.pbr)
			want := []Stage{StageFaces, StageAtlas, StageViews, StageDelight, StageCondition, StageDiffuse, StageDecode, StageBake, StageExport}
			if !tc.pbr {
				if !slices.Equal(stages, want) {
					t.Errorf("stages %v, want %v", stages, want)
				}
			} else if !slices.Equal(stages, slices.DeleteFunc(want, func(s Stage) bool { return s == StageDelight })) {
				t.Errorf("stages %v", stages)
			}
			uv, err := texture.NewScene(res.Mesh, res.Atlas, 2)
			if err != nil {
				t.Fatal(err)
			}
			raster, err := uv.RasterizeUV(context.Background(), 256)
			if err != nil {
				t.Fatal(err)
			}
			texels, px := frontTexels(raster, size, 25)
			var sum, worst float64
			n := 0
			for i, p := range texels {
				x, y := px[i][0], px[i][1]
				if math.Abs(x-float64(size/2)) < 6 || math.Abs(y-float64(size/2)) < 6 {
					continue
				}
				q := quadrantColours[quadrant(int(x), int(y), size)]
				for k := 0; k < 3; k++ {
					d := math.Abs(float64(res.Material.BaseColor.Pix[3*p+k]) - q[k])
					sum += d
					worst = math.Max(worst, d)
				}
				if tc.pbr {
					mr := res.Material.MetallicRoughness.Pix[2*p : 2*p+2]
					if math.Abs(float64(mr[0])) > 0.02 || math.Abs(float64(mr[1])-0.75) > 0.02 {
						t.Fatalf("texel %d: metallic-roughness %v, want (0, 0.75)", p, mr)
					}
				}
				n++
			}
			if n < 100 {
				t.Fatalf("only %d front texels checked", n)
			}
			mean := sum / float64(3*n)
			t.Logf("%d front texels: mean abs error %.4f, worst %.4f", n, mean, worst)
			if mean > 0.01 || worst > 0.02 {
				t.Errorf("front texels differ from the picture: mean %.4f (want <= 0.01), worst %.4f (want <= 0.02)", mean, worst)
			}
		})
	}
}

// The random tiny sets run the whole flow — 2.0 with CFG and delight,
// turbo's LCM without guidance, 2.1's three-row guidance, DINO, RoPE and
// upscaler — and give valid GLBs with textures (2.1 PBR), with the steps
// asked for and every view decoded.
func TestTinySetsPaintValidGLBs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the paint graphs")
	}
	for _, tc := range []struct {
		set       string
		steps     int
		wantSteps int
		maxFaces  int
		pbr       bool
	}{
		{"tiny-paint-2.0", 2, 2, 0, false},
		{"tiny-paint-2.0-turbo", 0, 10, 200, false},
		{"tiny-paint-2.1", 2, 2, 0, true},
	} {
		t.Run(tc.set, func(t *testing.T) {
			p := newPainter(t, tc.set)
			last := Progress{}
			m := sphere(12, 24)
			res, err := p.Paint(context.Background(), m, quadrants(80), Options{
				TextureSize: 128, Steps: tc.steps, Seed: 1, MaxFaces: tc.maxFaces,
				Progress: func(pr Progress) {
					if pr.Stage == StageDiffuse && pr.Step > 0 {
						last = pr
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			meshtest.RequireTexturedGLB(t, res.GLB, tc.pbr)
			if res.Steps != tc.wantSteps || last.Step != tc.wantSteps || last.Steps != tc.wantSteps {
				t.Errorf("steps %d, last progress %+v, want %d", res.Steps, last, tc.wantSteps)
			}
			views := p.Spec().Views * len(p.Spec().Materials)
			if len(res.Views) != views {
				t.Errorf("%d views, want %d", len(res.Views), views)
			}
			if res.Timings.Total <= 0 || res.Timings.Diffuse <= 0 {
				t.Errorf("timings %+v", res.Timings)
			}
			if faces := res.Mesh.TriangleCount(); tc.maxFaces > 0 && faces > tc.maxFaces || tc.maxFaces == 0 && faces != m.TriangleCount() {
				t.Errorf("%d faces painted of %d, budget %d", faces, m.TriangleCount(), tc.maxFaces)
			}
		})
	}
}

// A cancelled job stops with the context's error.
func TestPaintStopsWhenCancelled(t *testing.T) {
	p := newPainter(t, "tiny-paint-2.0-turbo")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Paint(ctx, sphere(8, 16), quadrants(64), Options{TextureSize: 64}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// Invalid inputs are refused before any graph runs.
func TestPaintRefusesBadInput(t *testing.T) {
	p := newPainter(t, "tiny-paint-2.0-turbo")
	for _, tc := range []struct {
		name string
		m    *mesh.Mesh
		pic  image.Image
		opt  Options
	}{
		{"empty picture", sphere(8, 16), image.NewNRGBA(image.Rect(0, 0, 0, 3)), Options{}},
		{"no triangles", &mesh.Mesh{}, nil, Options{}},
		{"index out of range", &mesh.Mesh{Vertices: []float32{0, 0, 0}, Indices: []uint32{0, 0, 5}}, nil, Options{}},
		{"texture too small", sphere(8, 16), nil, Options{TextureSize: 8}},
		{"bake views smaller than the views", sphere(8, 16), nil, Options{TextureSize: 64, BakeViewSize: 32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pic := tc.pic
			if pic == nil {
				pic = quadrants(64)
			}
			if _, err := p.Paint(context.Background(), tc.m, pic, tc.opt); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
