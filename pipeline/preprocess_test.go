package pipeline

import (
	"bytes"
	"context"
	"encoding/hex"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/engines"
)

// ppSpec is the ImageSpec of every Hunyuan3D family.
var ppSpec = engines.ImageSpec{
	Size:        518,
	CanvasSize:  512,
	BorderRatio: 0.15,
	Mean:        [3]float64{0.485, 0.456, 0.406},
	Std:         [3]float64{0.229, 0.224, 0.225},
}

// ppSynthetic draws a w×h transparent picture holding an ellipse inscribed in
// r, coloured by position, with an anti-aliased rim. Integer arithmetic only,
// so the pixels (and the goldens made from them) are the same on every CPU.
func ppSynthetic(w, h int, r image.Rectangle) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rx, ry := int64(r.Dx()), int64(r.Dy())
	cx2, cy2 := int64(r.Min.X+r.Max.X), int64(r.Min.Y+r.Max.Y)
	full := (rx * ry) * (rx * ry)
	band := full / 6
	for y := range h {
		for x := range w {
			dx, dy := (2*int64(x)+1-cx2)*ry, (2*int64(y)+1-cy2)*rx
			inside := full - dx*dx - dy*dy
			if inside <= 0 {
				continue
			}
			a := min(inside*255/band, 255)
			p := img.Pix[y*img.Stride+4*x:]
			p[0] = uint8(x * 255 / w)
			p[1] = uint8(y * 255 / h)
			p[2] = uint8((x + 2*y) * 255 / (w + 2*h))
			p[3] = uint8(a)
		}
	}
	return img
}

func ppEncodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ppRun(t testing.TB, data []byte, opts PreprocessOptions) *Prepared {
	t.Helper()
	if opts.Image == (engines.ImageSpec{}) {
		opts.Image = ppSpec
	}
	p, err := Preprocess(context.Background(), data, opts)
	if err != nil {
		t.Fatalf("Preprocess: %v", err)
	}
	return p
}

// The goldens are Hunyuan3D's own preprocessing of the same PNGs (recenter
// with cv2.INTER_AREA, composite on white, cv2.INTER_CUBIC to 512², then the
// DINOv2 transform), run by `testdata/reference.py hunyuan` with Debian's
// python3-opencv 4.6 and torch 1.13. The 512² pixels must match bit for bit;
// the float tensor to a few float32 ulps (torch's CPU kernels may fuse
// multiply-adds).
func TestPreprocessMatchesHunyuanReference(t *testing.T) {
	type sample struct {
		i int
		v float32
	}
	cases := []struct {
		name    string
		w, h    int
		obj     image.Rectangle
		hash    string
		samples []sample
	}{
		{"enlarged object, canvas enlarged", 300, 200, image.Rect(40, 30, 260, 170),
			"3bea24e558e6ac1510e5e0fca7b76dbc4c67b717e41feacc4de9b868442cdddf",
			[]sample{{0, 2.24890828}, {1, 2.24890828}, {517, 2.24890828}, {134421, 0.0568404458}, {269324, 2.42857146}, {692248, 0.47878015}, {804971, 2.6400001}}},
		{"shrunk object, canvas shrunk", 640, 480, image.Rect(10, 20, 631, 470),
			"f068843f962139f47b325c0654432e5790979f0f9d27e22a2e22d6abef9146c7",
			[]sample{{0, 2.24890828}, {1, 2.24890828}, {517, 2.24890828}, {134421, 0.0569397435}, {269324, 2.42857146}, {692248, 0.528366446}, {804971, 2.6400001}}},
		{"small object in a corner", 256, 256, image.Rect(0, 0, 41, 30),
			"edc3f694b57df8be1d54f416023e022dea59747d9cf04eeb7f34811cd33059ca",
			[]sample{{0, 2.24890828}, {1, 2.24890828}, {517, 2.24890828}, {134421, -1.79253364}, {269324, 2.42857146}, {692248, -1.52557731}, {804971, 2.6400001}}},
		{"tall thin object", 90, 333, image.Rect(30, 10, 61, 320),
			"35e3f25f2f85e386cd63f0c6b2261391ef208067b785b5f80877f24d5b48d512",
			[]sample{{0, 2.24890828}, {1, 2.24890828}, {517, 2.24890828}, {134421, 0.0567411482}, {269324, 2.42857146}, {692248, 2.6400001}, {804971, 2.6400001}}},
		{"odd 7x3 picture", 7, 3, image.Rect(0, 0, 7, 3),
			"eb73a39155d5c2b0c5c18f10b2df2be1d0e961979035179b0334cab9db2d6fb2",
			[]sample{{0, 2.24890828}, {1, 2.24890828}, {517, 2.24890828}, {134421, -0.55965066}, {269324, 2.42857146}, {692248, 0.732511818}, {804971, 2.6400001}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := ppRun(t, ppEncodePNG(t, ppSynthetic(c.w, c.h, c.obj)), PreprocessOptions{})
			if got := hex.EncodeToString(p.Hash[:]); got != c.hash {
				t.Errorf("512² pixels hash %s, Hunyuan3D's %s", got, c.hash)
			}
			if len(p.Warnings) != 0 {
				t.Errorf("warnings %q for a picture with alpha", p.Warnings)
			}
			if p.Source != (image.Point{c.w, c.h}) || p.Format != "png" {
				t.Errorf("source %v format %q", p.Source, p.Format)
			}
			for _, s := range c.samples {
				if d := math.Abs(float64(p.Tensor.Data[s.i] - s.v)); d > 1e-6 {
					t.Errorf("tensor[%d] = %.9g, Hunyuan3D %.9g", s.i, p.Tensor.Data[s.i], s.v)
				}
			}
		})
	}
}

func TestPreprocessTensorLayout(t *testing.T) {
	p := ppRun(t, ppEncodePNG(t, ppSynthetic(64, 48, image.Rect(8, 8, 56, 40))), PreprocessOptions{})
	if p.Tensor.Name != "image" || !slices.Equal(p.Tensor.Shape, []int64{1, 3, 518, 518}) || len(p.Tensor.Data) != 3*518*518 {
		t.Fatalf("tensor %q %v with %d values", p.Tensor.Name, p.Tensor.Shape, len(p.Tensor.Data))
	}
	for i, v := range p.Tensor.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("tensor[%d] = %v", i, v)
		}
	}
}

func TestAlphaBBoxOfKnownShape(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 20, 10))
	// An L shape: a bar from (3,2) to (9,2) and a leg from (3,2) down to (3,7),
	// plus one faint pixel at (15,4) that still counts (alpha > 0).
	for x := 3; x <= 9; x++ {
		img.SetNRGBA(x, 2, color.NRGBA{A: 255})
	}
	for y := 2; y <= 7; y++ {
		img.SetNRGBA(3, y, color.NRGBA{A: 255})
	}
	img.SetNRGBA(15, 4, color.NRGBA{A: 1})
	got, ok := ppAlphaBBox(img)
	if want := image.Rect(3, 2, 16, 8); !ok || got != want {
		t.Errorf("bbox %v %v, want %v", got, ok, want)
	}
	if _, ok := ppAlphaBBox(image.NewNRGBA(image.Rect(0, 0, 5, 5))); ok {
		t.Error("transparent picture has a bbox")
	}
}

// A 100×50 object in a 200×200 picture: Hunyuan3D's extent is 99×49, the
// longer side goes to int(200·0.85) = 170, so scale = 170/99 and the object
// becomes int(99·170/99) = 170 by int(49·170/99) = 84 pixels at
// ((200−170)/2, (200−84)/2) = (15, 58). With a 200² output the cubic resize
// is a copy, so the canvas shows the placement directly.
func TestRecenterGeometry(t *testing.T) {
	cases := []struct {
		w, h       int
		obj        image.Rectangle
		placed     image.Rectangle
		canvasSide int
	}{
		{200, 200, image.Rect(50, 75, 150, 125), image.Rect(15, 58, 15+170, 58+84), 200},
		// 300×120: side 300, target 255, scale 255/99: 255 by int(49·2.5757…) = 126
		// at ((300−255)/2, (300−126)/2) = (22, 87).
		{300, 120, image.Rect(10, 10, 110, 60), image.Rect(22, 87, 22+255, 87+126), 300},
	}
	red := color.NRGBA{200, 10, 20, 255}
	for _, c := range cases {
		img := image.NewNRGBA(image.Rect(0, 0, c.w, c.h))
		draw.Draw(img, c.obj, image.NewUniform(red), image.Point{}, draw.Src)
		bbox, _ := ppAlphaBBox(img)
		if bbox != c.obj {
			t.Fatalf("bbox %v, want %v", bbox, c.obj)
		}
		canvas, err := ppRecenter(img, bbox, 0.15, c.canvasSide)
		if err != nil {
			t.Fatal(err)
		}
		for y := range canvas.h {
			for x := range canvas.w {
				p := canvas.pix[y*canvas.stride+3*x:]
				want := color.NRGBA{255, 255, 255, 255}
				if (image.Point{x, y}).In(c.placed) {
					want = red
				}
				if p[0] != want.R || p[1] != want.G || p[2] != want.B {
					t.Fatalf("%dx%d: canvas(%d,%d) = %v, want %v (object at %v)", c.w, c.h, x, y, p[:3], want, c.placed)
				}
			}
		}
	}
}

// recenter's composite is float32 with truncation: with a = 128, m = 128/255
// and black gives 255·(1−m) = 126.99999 in float32, which truncates to 126,
// not 127; 100 gives 177.19608 → 177; 255 stays 255. Opaque and clear pixels
// are exact.
func TestCompositeOnWhiteHalfAlpha(t *testing.T) {
	src := cvImage{pix: []uint8{0, 100, 255, 128, 0, 100, 255, 255, 0, 100, 255, 0, 0, 100, 255, 1}, w: 4, h: 1, cn: 4, stride: 16}
	got := ppOnWhite(src).row(0)
	want := []uint8{126, 177, 255, 0, 100, 255, 255, 255, 255, 254, 254, 255}
	if !slices.Equal(got, want) {
		t.Errorf("on white %v, want %v", got, want)
	}
}

// White maps to (1−mean)/std and black to −mean/std: the [−1,1] round trip is
// exact at both ends and bilinear weights sum to one.
func TestNormalizationOfWhiteAndBlack(t *testing.T) {
	for _, v := range []uint8{255, 0} {
		canvas := cvImage{pix: make([]uint8, 512*512*3), w: 512, h: 512, cn: 3, stride: 512 * 3}
		ppFill(canvas.pix, v)
		data := ppTensor(canvas, ppSpec).Data
		x := float64(v) / 255
		for ch := range 3 {
			want := (x - ppSpec.Mean[ch]) / ppSpec.Std[ch]
			for _, i := range []int{0, 1234, 518*518 - 1} {
				if got := data[ch*518*518+i]; math.Abs(float64(got)-want) > 1e-6 {
					t.Errorf("value %d channel %d: %v, want %v", v, ch, got, want)
				}
			}
		}
	}
}
