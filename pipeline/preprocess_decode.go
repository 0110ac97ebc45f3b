package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// ppCodec is one allowed input format. The decoders are called directly, not
// through image.Decode, so a format some other package registers in the
// binary (GIF, BMP, …) can never reach the pipeline.
type ppCodec struct {
	name   string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var (
	ppPNG  = ppCodec{"png", png.DecodeConfig, png.Decode}
	ppJPEG = ppCodec{"jpeg", jpeg.DecodeConfig, jpeg.Decode}
	ppWebP = ppCodec{"webp", webp.DecodeConfig, webp.Decode}
)

// ppSniff picks the codec from the file signature.
func ppSniff(data []byte) (ppCodec, bool) {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return ppPNG, true
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return ppJPEG, true
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return ppWebP, true
	}
	return ppCodec{}, false
}

// ppAnimatedWebP reports whether a WebP file is in the extended format with
// the animation flag set, which the decoder cannot read: the file is valid,
// the feature is unsupported.
func ppAnimatedWebP(data []byte) bool {
	const animationFlag = 0x02
	return len(data) >= 21 && string(data[12:16]) == "VP8X" && data[20]&animationFlag != 0
}

// ppDecode decodes data into straight-alpha RGBA with its origin at (0,0),
// refusing anything but PNG, JPEG and WebP and any picture whose header
// declares more than maxPixels pixels (≤ 0: ppDefaultMaxPixels), before
// decoding its pixels. JPEGs are turned upright by their EXIF orientation.
func ppDecode(data []byte, maxPixels int) (*image.NRGBA, string, error) {
	codec, ok := ppSniff(data)
	if !ok {
		return nil, "", fmt.Errorf("%w: unrecognized file signature", ErrUnsupportedFormat)
	}
	if codec.name == ppWebP.name && ppAnimatedWebP(data) {
		return nil, codec.name, fmt.Errorf("%w: animated WebP; send one still picture", ErrUnsupportedFormat)
	}
	cfg, err := codec.config(bytes.NewReader(data))
	if err != nil {
		return nil, codec.name, ppDecodeError(codec.name, "header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, codec.name, fmt.Errorf("%w: %s declares %dx%d pixels", ErrCorruptImage, codec.name, cfg.Width, cfg.Height)
	}
	if maxPixels <= 0 {
		maxPixels = ppDefaultMaxPixels
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, codec.name, fmt.Errorf("%w: %dx%d is more than %d pixels", ErrTooManyPixels, cfg.Width, cfg.Height, maxPixels)
	}
	img, err := codec.decode(bytes.NewReader(data))
	if err != nil {
		return nil, codec.name, ppDecodeError(codec.name, "pixels", err)
	}
	if got := img.Bounds().Size(); got != (image.Point{cfg.Width, cfg.Height}) {
		return nil, codec.name, fmt.Errorf("%w: %s header says %dx%d, pixels are %v", ErrCorruptImage, codec.name, cfg.Width, cfg.Height, got)
	}
	out := ppToNRGBA(img)
	if codec.name == ppJPEG.name {
		out = ppOrient(out, ppJPEGOrientation(data))
	}
	return out, codec.name, nil
}

// ppDecodeError classifies a decoder error: a valid file using a feature the
// decoder lacks (12-bit or arithmetic-coded JPEG, …) is unsupported, anything
// else is corrupt.
func ppDecodeError(format, what string, err error) error {
	var pu png.UnsupportedError
	var ju jpeg.UnsupportedError
	if errors.As(err, &pu) || errors.As(err, &ju) {
		return fmt.Errorf("%w: %s %s: %v", ErrUnsupportedFormat, format, what, err)
	}
	return fmt.Errorf("%w: %s %s: %v", ErrCorruptImage, format, what, err)
}

// ppToNRGBA converts a decoded picture to 8-bit straight-alpha RGBA the way
// PIL's convert("RGBA") does for the same file: gray is replicated, palettes
// keep their transparency, 16-bit samples keep their high byte. The common
// decoder outputs have allocation-free loops; anything else goes through
// color.NRGBAModel.
func ppToNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if m, ok := img.(*image.NRGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	switch m := img.(type) {
	case *image.YCbCr:
		// draw's YCbCr fast path writes opaque RGBA, which is also NRGBA. It
		// samples subsampled chroma without libjpeg's "fancy" upsampling, so
		// JPEG pixels differ from PIL's by a few levels along colour edges.
		rgba := &image.RGBA{Pix: out.Pix, Stride: out.Stride, Rect: out.Rect}
		draw.Draw(rgba, rgba.Rect, m, b.Min, draw.Src)
	case *image.NYCbCrA:
		for y := range h {
			d := out.Pix[y*out.Stride:]
			for x := range w {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = r, g, bl, m.A[m.AOffset(b.Min.X+x, b.Min.Y+y)]
			}
		}
	case *image.Gray:
		for y := range h {
			s, d := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := range w {
				v := s[x]
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = v, v, v, 255
			}
		}
	case *image.Paletted:
		lut := make([]color.NRGBA, 256)
		for i := range lut {
			lut[i] = color.NRGBA{A: 255}
		}
		for i, c := range m.Palette {
			if i < len(lut) {
				lut[i] = color.NRGBAModel.Convert(c).(color.NRGBA)
			}
		}
		for y := range h {
			s, d := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := range w {
				c := lut[s[x]]
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = c.R, c.G, c.B, c.A
			}
		}
	case *image.NRGBA:
		for y := range h {
			copy(out.Pix[y*out.Stride:y*out.Stride+4*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.NRGBA64:
		for y := range h {
			s, d := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for i := range 4 * w {
				d[i] = s[2*i]
			}
		}
	case *image.Gray16:
		for y := range h {
			s, d := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):], out.Pix[y*out.Stride:]
			for x := range w {
				v := s[2*x]
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = v, v, v, 255
			}
		}
	default:
		for y := range h {
			d := out.Pix[y*out.Stride:]
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = c.R, c.G, c.B, c.A
			}
		}
	}
	return out
}

// ppHasAlpha reports whether any pixel is not fully opaque.
func ppHasAlpha(img *image.NRGBA) bool {
	w := img.Rect.Dx()
	for y := range img.Rect.Dy() {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for i := 3; i < len(row); i += 4 {
			if row[i] != 255 {
				return true
			}
		}
	}
	return false
}
