package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"os"
	"slices"
	"strings"
	"testing"
)

// ppPNGHeader is a PNG signature and a valid IHDR chunk declaring w×h 8-bit
// RGBA, and nothing else: enough for DecodeConfig, no pixels to decode.
func ppPNGHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func ppPreprocessErr(data []byte, opts PreprocessOptions) error {
	if opts.Image.Size == 0 {
		opts.Image = ppSpec
	}
	_, err := Preprocess(context.Background(), data, opts)
	return err
}

func TestPreprocessRejectsBadInput(t *testing.T) {
	valid := ppEncodePNG(t, ppSynthetic(32, 32, image.Rect(4, 4, 28, 28)))
	opaque1x1 := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	opaque1x1.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 255})
	half1x1 := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	half1x1.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 128})
	row := image.NewNRGBA(image.Rect(0, 0, 9, 9))
	draw.Draw(row, image.Rect(1, 4, 8, 5), image.NewUniform(color.NRGBA{A: 255}), image.Point{}, draw.Src)
	cases := []struct {
		name string
		data []byte
		max  int
		want error
	}{
		{"empty", nil, 0, ErrUnsupportedFormat},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 0, ErrUnsupportedFormat},
		{"bmp", append([]byte("BM"), make([]byte, 60)...), 0, ErrUnsupportedFormat},
		{"text", []byte("hello, world"), 0, ErrUnsupportedFormat},
		{"png signature then garbage", append([]byte("\x89PNG\r\n\x1a\n"), "garbage garbage"...), 0, ErrCorruptImage},
		{"truncated png", valid[:len(valid)/2], 0, ErrCorruptImage},
		{"png header without pixels", ppPNGHeader(64, 64), 0, ErrCorruptImage},
		// The same header claiming 100000² pixels is refused before decoding:
		// ErrTooManyPixels, not the ErrCorruptImage decoding would give.
		{"huge png header", ppPNGHeader(100000, 100000), 1 << 24, ErrTooManyPixels},
		{"huge png header, default limit", ppPNGHeader(100000, 100000), 0, ErrTooManyPixels},
		{"over a small limit", valid, 32*32 - 1, ErrTooManyPixels},
		{"zero width", ppPNGHeader(0, 10), 0, ErrCorruptImage},
		{"fully transparent", ppEncodePNG(t, image.NewNRGBA(image.Rect(0, 0, 8, 8))), 0, ErrNoObject},
		{"1x1 opaque", ppEncodePNG(t, opaque1x1), 0, ErrNoObject},
		{"1x1 translucent", ppEncodePNG(t, half1x1), 0, ErrNoObject},
		{"single row object", ppEncodePNG(t, row), 0, ErrNoObject},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ppPreprocessErr(c.data, PreprocessOptions{MaxPixels: c.max})
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}

func TestPreprocessRejectsBadSpec(t *testing.T) {
	data := ppEncodePNG(t, ppSynthetic(16, 16, image.Rect(2, 2, 14, 14)))
	for _, spec := range []func(s *PreprocessOptions){
		func(o *PreprocessOptions) { o.Image.Size = 0 },
		func(o *PreprocessOptions) { o.Image.CanvasSize = -1 },
		func(o *PreprocessOptions) { o.Image.BorderRatio = 1 },
		func(o *PreprocessOptions) { o.Image.Std[1] = 0 },
	} {
		opts := PreprocessOptions{Image: ppSpec}
		spec(&opts)
		if _, err := Preprocess(context.Background(), data, opts); err == nil {
			t.Errorf("spec %+v accepted", opts.Image)
		}
	}
}

// Grayscale and paletted PNGs decode to the same pixels as their RGBA
// equivalents (PIL's convert("RGBA")): same 512² hash.
func TestPreprocessGrayAndPalettedPNG(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 40, 30))
	rgbOfGray := image.NewNRGBA(gray.Rect)
	for y := range 30 {
		for x := range 40 {
			v := uint8(240)
			if x >= 10 && x < 30 && y >= 8 && y < 22 {
				v = uint8(x * 4)
			}
			gray.SetGray(x, y, color.Gray{v})
			rgbOfGray.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	a, b := ppRun(t, ppEncodePNG(t, gray), PreprocessOptions{}), ppRun(t, ppEncodePNG(t, rgbOfGray), PreprocessOptions{})
	if a.Hash != b.Hash || !slices.Contains(a.Warnings, ppWarnCutOut) {
		t.Errorf("gray PNG: hash equal %v, warnings %q", a.Hash == b.Hash, a.Warnings)
	}

	pal := color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{200, 50, 50, 255}, color.NRGBA{50, 50, 200, 128}}
	paletted := image.NewPaletted(image.Rect(0, 0, 24, 20), pal)
	rgba := image.NewNRGBA(paletted.Rect)
	for y := range 20 {
		for x := range 24 {
			i := uint8(0)
			switch {
			case x >= 4 && x < 20 && y >= 3 && y < 17:
				i = 1
			case x >= 2 && x < 22 && y >= 2 && y < 18:
				i = 2
			}
			paletted.SetColorIndex(x, y, i)
			rgba.Set(x, y, pal[i])
		}
	}
	a, b = ppRun(t, ppEncodePNG(t, paletted), PreprocessOptions{}), ppRun(t, ppEncodePNG(t, rgba), PreprocessOptions{})
	if a.Hash != b.Hash || len(a.Warnings) != 0 || a.BBox != image.Rect(2, 2, 22, 18) {
		t.Errorf("paletted PNG: hash equal %v, warnings %q, bbox %v", a.Hash == b.Hash, a.Warnings, a.BBox)
	}
}

// A JPEG has no alpha: without a matting engine the background is estimated
// from the border, with a warning, and the bbox finds the dark square.
func TestPreprocessJPEGUsesBorderFallback(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	draw.Draw(img, img.Rect, image.NewUniform(color.RGBA{250, 250, 250, 255}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(30, 20, 70, 50), image.NewUniform(color.RGBA{30, 60, 120, 255}), image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	p := ppRun(t, buf.Bytes(), PreprocessOptions{})
	if p.Format != "jpeg" || !slices.Equal(p.Warnings, []string{ppWarnCutOut}) {
		t.Errorf("format %q warnings %q", p.Format, p.Warnings)
	}
	// JPEG ringing may add a pixel or two around the square.
	if b := p.BBox; b.Min.X < 28 || b.Min.X > 30 || b.Min.Y < 18 || b.Min.Y > 20 || b.Max.X < 70 || b.Max.X > 72 || b.Max.Y < 50 || b.Max.Y > 52 {
		t.Errorf("bbox %v, want about (30,20)-(70,50)", b)
	}
}

// An RGBA picture that is opaque everywhere has no usable alpha: it takes
// the same path as RGB (Hunyuan3D's API server runs rembg on every picture).
func TestPreprocessOpaqueRGBACountsAsNoAlpha(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	draw.Draw(img, img.Rect, image.NewUniform(color.NRGBA{255, 255, 255, 255}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(10, 12, 30, 25), image.NewUniform(color.NRGBA{0, 0, 0, 255}), image.Point{}, draw.Src)
	p := ppRun(t, ppEncodePNG(t, img), PreprocessOptions{})
	if !slices.Contains(p.Warnings, ppWarnCutOut) || p.BBox != image.Rect(10, 12, 30, 25) {
		t.Errorf("warnings %q bbox %v", p.Warnings, p.BBox)
	}
}

// An object cut off by the picture's edge is cut out with a warning that
// part of it may be lost; one inside the picture gets none.
func TestCutOutWarnsWhenTheObjectRunsOff(t *testing.T) {
	for _, c := range []struct {
		name string
		obj  image.Rectangle
		warn bool
	}{
		{"inside", image.Rect(20, 15, 60, 45), false},
		{"runs off the left", image.Rect(0, 10, 50, 50), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := image.NewNRGBA(image.Rect(0, 0, 80, 60))
			draw.Draw(img, img.Rect, image.NewUniform(color.NRGBA{200, 200, 205, 255}), image.Point{}, draw.Src)
			draw.Draw(img, c.obj, image.NewUniform(color.NRGBA{150, 40, 30, 255}), image.Point{}, draw.Src)
			w, err := ppCutOut(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(w, "reaches the picture's border"); got != c.warn {
				t.Errorf("warning %q, want one: %v", w, c.warn)
			}
			if bbox, ok := ppAlphaBBox(img); !ok || !bbox.In(c.obj) || bbox.Dx() < c.obj.Dx()-4 {
				t.Errorf("object found at %v (%v), drawn at %v", bbox, ok, c.obj)
			}
		})
	}
}

// ppFakeMatter cuts out a fixed rectangle and records what it was given.
type ppFakeMatter struct {
	rect image.Rectangle
	size image.Point // matte size; zero means the picture's
	err  error
	got  *image.NRGBA
}

func (m *ppFakeMatter) Alpha(ctx context.Context, rgb *image.NRGBA) (*image.Alpha, error) {
	m.got = rgb
	if m.err != nil {
		return nil, m.err
	}
	size := m.size
	if size == (image.Point{}) {
		size = rgb.Rect.Size()
	}
	a := image.NewAlpha(image.Rectangle{Max: size})
	draw.Draw(a, m.rect, image.Opaque, image.Point{}, draw.Src)
	return a, nil
}

func TestPreprocessMatting(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 50, 40))
	draw.Draw(img, img.Rect, image.NewUniform(color.RGBA{90, 140, 60, 255}), image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	m := &ppFakeMatter{rect: image.Rect(5, 6, 25, 30)}
	p := ppRun(t, buf.Bytes(), PreprocessOptions{Matting: m})
	if len(p.Warnings) != 0 || p.BBox != m.rect || m.got == nil {
		t.Errorf("warnings %q bbox %v (matte %v)", p.Warnings, p.BBox, m.rect)
	}

	// Pictures with alpha never reach the engine.
	m.got = nil
	ppRun(t, ppEncodePNG(t, ppSynthetic(20, 20, image.Rect(2, 2, 18, 18))), PreprocessOptions{Matting: m})
	if m.got != nil {
		t.Error("matting engine called for a picture with alpha")
	}

	engineDown := errors.New("engine down")
	if err := ppPreprocessErr(buf.Bytes(), PreprocessOptions{Matting: &ppFakeMatter{err: engineDown}}); !errors.Is(err, engineDown) {
		t.Errorf("engine error %v", err)
	}
	if err := ppPreprocessErr(buf.Bytes(), PreprocessOptions{Matting: &ppFakeMatter{size: image.Pt(10, 10)}}); err == nil {
		t.Error("matte of the wrong size accepted")
	}
	if err := ppPreprocessErr(buf.Bytes(), PreprocessOptions{Matting: &ppFakeMatter{}}); !errors.Is(err, ErrNoObject) {
		t.Errorf("empty matte: %v", err)
	}
}

func TestPreprocessHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := ppEncodePNG(t, ppSynthetic(20, 20, image.Rect(2, 2, 18, 18)))
	if _, err := Preprocess(ctx, data, PreprocessOptions{Image: ppSpec}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// testdata/object_lossless.webp is ppSynthetic(16, 12, (2,1)-(14,11)) through
// `cwebp -lossless -exact`, so it must give exactly the PNG's result;
// object_lossy_alpha.webp is the same picture lossy (VP8 + ALPH chunk).
func TestPreprocessWebP(t *testing.T) {
	want := ppRun(t, ppEncodePNG(t, ppSynthetic(16, 12, image.Rect(2, 1, 14, 11))), PreprocessOptions{})
	lossless, err := os.ReadFile("testdata/object_lossless.webp")
	if err != nil {
		t.Fatal(err)
	}
	p := ppRun(t, lossless, PreprocessOptions{})
	if p.Format != "webp" || p.Hash != want.Hash || p.BBox != want.BBox {
		t.Errorf("lossless WebP: format %q, bbox %v (PNG %v), same pixels %v", p.Format, p.BBox, want.BBox, p.Hash == want.Hash)
	}
	lossy, err := os.ReadFile("testdata/object_lossy_alpha.webp")
	if err != nil {
		t.Fatal(err)
	}
	p = ppRun(t, lossy, PreprocessOptions{})
	if p.Format != "webp" || len(p.Warnings) != 0 || p.BBox.Dx() < 10 || p.BBox.Dy() < 8 {
		t.Errorf("lossy WebP with alpha: format %q warnings %q bbox %v", p.Format, p.Warnings, p.BBox)
	}
	if _, ok := ppSniff(lossless); !ok {
		t.Error("WebP signature not recognized")
	}
}

// animatedWebP wraps the one frame of testdata/object_lossless.webp in the
// extended format with the animation flag, an ANIM and an ANMF chunk: a valid
// animated WebP of one 16x12 frame.
func animatedWebP(t *testing.T) []byte {
	t.Helper()
	still, err := os.ReadFile("testdata/object_lossless.webp")
	if err != nil {
		t.Fatal(err)
	}
	frame := still[12:] // the VP8L chunk, header included
	u24 := func(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }
	chunk := func(fourcc string, payload []byte) []byte {
		c := append([]byte(fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))...)
		c = append(c, payload...)
		if len(payload)%2 == 1 {
			c = append(c, 0)
		}
		return c
	}
	vp8x := append([]byte{0x02, 0, 0, 0}, append(u24(15), u24(11)...)...)
	anmf := slices.Concat(u24(0), u24(0), u24(15), u24(11), u24(100), []byte{0}, frame)
	body := slices.Concat([]byte("WEBP"), chunk("VP8X", vp8x), chunk("ANIM", make([]byte, 6)), chunk("ANMF", anmf))
	return slices.Concat([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body))), body)
}

func TestAnimatedWebPIsUnsupported(t *testing.T) {
	_, format, err := ppDecode(animatedWebP(t), 0)
	if !errors.Is(err, ErrUnsupportedFormat) || format != "webp" {
		t.Errorf("animated WebP: format %q, error %v; want webp and ErrUnsupportedFormat", format, err)
	}
}
