package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"testing"

	"github.com/hy3d/hy3d/engines"
)

// FuzzPreprocess feeds untrusted bytes to the decoders and the stages after
// them. Any input must either fail with one of the four client errors or give
// a well-formed tensor; it must never panic or allocate beyond the pixel
// limit. A small spec keeps each run cheap: decoding is what is under test.
func FuzzPreprocess(f *testing.F) {
	f.Add(ppEncodePNG(f, ppSynthetic(12, 9, image.Rect(1, 1, 11, 8))))
	f.Add(ppEncodePNG(f, image.NewGray(image.Rect(0, 0, 5, 4))))
	f.Add(ppPNGHeader(3, 3))
	f.Add(ppPNGHeader(1<<20, 1<<20))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, ppSynthetic(16, 8, image.Rect(2, 1, 14, 7)), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(ppWithOrientation(buf.Bytes(), 8, binary.LittleEndian))
	for _, name := range []string{"testdata/object_lossless.webp", "testdata/object_lossy_alpha.webp"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)-7])
	}
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8L"))
	f.Add([]byte("\xff\xd8\xff"))

	spec := engines.ImageSpec{Size: 20, CanvasSize: 16, BorderRatio: 0.15, Mean: ppSpec.Mean, Std: ppSpec.Std}
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Preprocess(context.Background(), data, PreprocessOptions{MaxPixels: maxPixels, Image: spec})
		if err != nil {
			for _, want := range []error{ErrUnsupportedFormat, ErrTooManyPixels, ErrNoObject, ErrCorruptImage} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error outside the client errors: %v", err)
		}
		if len(p.Tensor.Data) != 3*20*20 || p.Source.X*p.Source.Y > maxPixels || !p.BBox.In(image.Rectangle{Max: p.Source}) {
			t.Fatalf("tensor of %d values, source %v, bbox %v", len(p.Tensor.Data), p.Source, p.BBox)
		}
	})
}

func BenchmarkPreprocess(b *testing.B) {
	const side = 1024
	rgba := ppSynthetic(side, side, image.Rect(100, 60, 900, 980))
	var jpg bytes.Buffer
	// The same object flattened on white, as a photo would come.
	flat := image.NewNRGBA(rgba.Rect)
	ppFill(flat.Pix, 255)
	for i := 0; i < len(flat.Pix); i += 4 {
		a := uint16(rgba.Pix[i+3])
		for c := range 3 {
			flat.Pix[i+c] = uint8((uint16(rgba.Pix[i+c])*a + 255*(255-a)) / 255)
		}
	}
	if err := jpeg.Encode(&jpg, flat, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"png_rgba_1024", ppEncodePNG(b, rgba)},
		{"jpeg_1024", jpg.Bytes()},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := Preprocess(context.Background(), c.data, PreprocessOptions{Image: ppSpec}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The stages after decoding, on the decoded 1024² picture.
	b.Run("pixels_1024", func(b *testing.B) {
		bbox, _ := ppAlphaBBox(rgba)
		for b.Loop() {
			canvas, err := ppRecenter(rgba, bbox, ppSpec.BorderRatio, ppSpec.CanvasSize)
			if err != nil {
				b.Fatal(err)
			}
			ppTensor(canvas, ppSpec)
		}
	})
}
