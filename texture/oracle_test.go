package texture

import (
	"context"
	"math"
	"testing"
)

// paint renders the oracle field into a view: every covered pixel gets the
// field at its interpolated position, the background black.
func paint(t *testing.T, s *Scene, v *View) Image {
	t.Helper()
	pos, err := s.Interpolate(s.Positions(), 3, v.FaceIDs, v.Bary, []float32{0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	img := NewImage(v.Size, v.Size, 3)
	for p, f := range v.FaceIDs {
		if f < 0 {
			continue
		}
		c := field([3]float32{pos[3*p], pos[3*p+1], pos[3*p+2]})
		copy(img.Pix[3*p:3*p+3], c[:])
	}
	return img
}

type oracle struct {
	scene *Scene
	uv    *UVRaster
}

func newOracle(t *testing.T, texSize int) oracle {
	t.Helper()
	m := torus(96, 48, 1, 0.4)
	a, err := BuildAtlas(context.Background(), m, DefaultAtlasOptions(texSize))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScene(m, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	uv, err := s.RasterizeUV(context.Background(), texSize)
	if err != nil {
		t.Fatal(err)
	}
	return oracle{s, uv}
}

func (o oracle) bake(t *testing.T, cams []Camera, viewSize int, mode BakeMode) (Image, []uint8) {
	t.Helper()
	ctx := context.Background()
	normals := FaceNormals
	if mode == BakeSplat {
		normals = VertexNormals
	}
	b, err := o.scene.NewBaker(o.uv, 3, mode)
	if err != nil {
		t.Fatal(err)
	}
	for _, cam := range cams {
		v, err := o.scene.Render(ctx, cam, viewSize, normals)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Add(ctx, v, paint(t, o.scene, v), cam.Weight); err != nil {
			t.Fatal(err)
		}
	}
	tex, painted, err := b.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	return tex, painted
}

// The oracle: views of a smooth colour field rendered by our rasterizer and
// baked back match the field over the texels some view painted.
func TestOracleBakeMatchesField(t *testing.T) {
	o := newOracle(t, 1024)
	for _, tc := range []struct {
		name string
		mode BakeMode
	}{{"gather 2.1", BakeGather}, {"splat 2.0", BakeSplat}} {
		t.Run(tc.name, func(t *testing.T) {
			tex, painted := o.bake(t, Cameras20(), 1024, tc.mode)
			db, n := FieldPSNR(o.uv, tex, func(p int) bool { return painted[p] != 0 }, field)
			t.Logf("%s: PSNR %.2f dB over %d of %d chart texels", tc.name, db, n, len(o.uv.TexelIndex))
			if n < len(o.uv.TexelIndex)/2 {
				t.Errorf("only %d of %d chart texels painted", n, len(o.uv.TexelIndex))
			}
			if !(db >= 35) {
				t.Errorf("PSNR %.2f dB over painted texels, want >= 35", db)
			}
		})
	}
}

// Texels no view saw are filled close to the field and without a step
// across seams: the two copies of a split vertex read nearly the same
// colour just inside their charts.
func TestOracleFillUnseen(t *testing.T) {
	o := newOracle(t, 1024)
	// Front and back only: the torus's sides and hole stay unseen.
	cams := []Camera{{0, 0, 1}, {0, 180, 0.5}}
	tex, painted := o.bake(t, cams, 1024, BakeGather)
	if err := o.scene.Fill(context.Background(), o.uv, tex, painted); err != nil {
		t.Fatal(err)
	}
	db, n := FieldPSNR(o.uv, tex, func(p int) bool { return painted[p] == 0 }, field)
	t.Logf("filled PSNR %.2f dB over %d unseen chart texels", db, n)
	if n == 0 {
		t.Fatal("no unseen texel: the test does not test filling")
	}
	const minFilledPSNR = 30.0
	if !(db >= minFilledPSNR) {
		t.Errorf("filled PSNR %.2f dB, want >= %.0f", db, minFilledPSNR)
	}
	for p, v := range tex.Pix {
		if math.IsNaN(float64(v)) || v < -0.01 || v > 1.01 {
			t.Fatalf("texel value %v at %d outside the field's range", v, p/3)
		}
	}
	worst := seamStep(o.scene, tex)
	t.Logf("largest colour step across a seam: %.4f", worst)
	const maxSeamStep = 0.05
	if worst > maxSeamStep {
		t.Errorf("colour step across a seam %.4f, want <= %.2f", worst, maxSeamStep)
	}
}

// seamStep is the largest difference, over the atlas vertices split by a
// seam, between the colours read a little inside the faces around each
// copy, beyond the difference of the field itself at those points.
func seamStep(s *Scene, tex Image) float64 {
	a := s.Atlas()
	type sample struct {
		c [3]float32
		p [3]float32
	}
	byVertex := map[uint32][]sample{}
	for f := 0; f < len(a.Indices)/3; f++ {
		for k := 0; k < 3; k++ {
			// A point at barycentric (0.8, 0.1, 0.1) from corner k.
			var u, v float32
			var p [3]float32
			for j := 0; j < 3; j++ {
				w := float32(0.1)
				if j == k {
					w = 0.8
				}
				vi := a.Indices[3*f+j]
				u += w * a.UV[2*vi]
				v += w * a.UV[2*vi+1]
				for d := 0; d < 3; d++ {
					p[d] += w * s.positions[3*int(vi)+d]
				}
			}
			x := min(int(u*float32(tex.Width)), tex.Width-1)
			y := min(int(v*float32(tex.Height)), tex.Height-1)
			var c [3]float32
			copy(c[:], tex.Pix[3*(y*tex.Width+x):])
			xr := a.Xref[a.Indices[3*f+k]]
			byVertex[xr] = append(byVertex[xr], sample{c, p})
		}
	}
	worst := 0.0
	for _, ss := range byVertex {
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				fi, fj := field(ss[i].p), field(ss[j].p)
				for k := 0; k < 3; k++ {
					step := math.Abs(float64(ss[i].c[k]-ss[j].c[k])) - math.Abs(float64(fi[k]-fj[k]))
					worst = math.Max(worst, step)
				}
			}
		}
	}
	return worst
}
