package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Errors for input the client can fix; the server maps them to 4xx. Preprocess
// wraps them with detail, so test with errors.Is.
var (
	ErrUnsupportedFormat = errors.New("unsupported image format (PNG, JPEG or WebP)")
	ErrTooManyPixels     = errors.New("image has too many pixels")
	ErrNoObject          = errors.New("image shows no object")
	ErrCorruptImage      = errors.New("corrupt image")
)

// ppDefaultMaxPixels bounds decoding when PreprocessOptions.MaxPixels is not
// set, so a forgotten option cannot turn a small request into a huge
// allocation (4096² RGBA is 64 MiB).
const ppDefaultMaxPixels = 4096 * 4096

// PreprocessOptions configures Preprocess.
type PreprocessOptions struct {
	// MaxPixels rejects an image whose header declares more than width·height
	// pixels, before decoding it. Zero or less means 4096².
	MaxPixels int
	// Image is the conditioner's input geometry and normalization from the
	// model set's manifest (Size 518, CanvasSize 512, BorderRatio 0.15,
	// ImageNet mean/std for every Hunyuan3D family).
	Image engines.ImageSpec
	// Matting, when set, cuts out images that have no alpha channel.
	Matting Matter
}

// Matter estimates an alpha matte for an image without one (the optional
// matting engine). rgb is opaque; the matte must have rgb's size. Preprocess
// uses it as straight alpha: rembg's naive cutout, which Hunyuan3D's apps
// call, also multiplies the colour by the matte and so darkens soft edges
// before the white composite; that is not reproduced.
type Matter interface {
	Alpha(ctx context.Context, rgb *image.NRGBA) (*image.Alpha, error)
}

// Prepared is a preprocessed image, ready for the conditioner.
type Prepared struct {
	Tensor   tensor.Tensor   // "image", [1,3,Size,Size] float32, CHW, normalized
	Hash     [32]byte        // SHA-256 of the recentered CanvasSize² RGB pixels (row-major, interleaved)
	Source   image.Point     // decoded (upright) width and height
	BBox     image.Rectangle // object bounding box (alpha > 0) in source pixels
	Warnings []string        // degraded but usable input, for the client
	Format   string          // "png", "jpeg" or "webp"
}

// Preprocess turns an encoded picture into the conditioner's input the way
// Hunyuan3D does (hy3dgen/shapegen/preprocessors.py ImageProcessorV2 and the
// DinoImageEncoder transform in hy3dgen/shapegen/models/conditioner.py; the
// same code in Hunyuan3D-2.1's hy3dshape), in its order and with its
// interpolation kernels:
//
//  1. Decode PNG, JPEG or WebP; the header's size is checked against
//     MaxPixels before any pixel is decoded. A JPEG is turned upright by its
//     EXIF orientation, as rembg does before cutting out (Source and BBox are
//     then in upright pixels).
//  2. Alpha. An image with an alpha channel that is not fully opaque keeps it.
//     Otherwise (RGB, grayscale, or RGBA that is opaque everywhere) the
//     background must be removed first, as Hunyuan3D's apps do with rembg for
//     RGB pictures: the Matting engine when there is one, else package
//     cutout's colour-model graph cut (GrabCut-style, seeded by the picture's
//     border), and says so in Warnings. Treating opaque RGBA
//     like RGB differs from Hunyuan3D's gradio app, which only looks at the
//     PIL mode and would keep the whole rectangle; its API server removes the
//     background of every picture.
//  3. Recenter (ImageProcessorV2.recenter): crop to the bounding box of
//     alpha > 0 — keeping Hunyuan3D's extent of max−min, which leaves out the
//     last row and column — scale it with cv2.INTER_AREA so the longer side is
//     int(S·(1−BorderRatio)) where S is the longer side of the whole picture,
//     center it on an S×S transparent canvas, and composite on white in
//     float32 with truncation to 8 bits.
//  4. Resize the canvas to CanvasSize² with cv2.INTER_CUBIC; Hash is taken
//     here.
//  5. Scale to [−1,1] and back to [0,1] in float32 as the processor and the
//     encoder do, resize to Size² with torchvision's bilinear (antialias),
//     normalize with the ImageNet mean/std, and lay out CHW.
//
// A picture whose object is empty, a single row or column, or too thin to
// keep a pixel after scaling is rejected with ErrNoObject (Hunyuan3D raises
// or crashes in cv2.resize on these).
func Preprocess(ctx context.Context, data []byte, opts PreprocessOptions) (*Prepared, error) {
	spec := opts.Image
	if err := ppCheckSpec(spec); err != nil {
		return nil, err
	}
	img, format, err := ppDecode(data, opts.MaxPixels)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var warnings []string
	empty := "the picture is fully transparent"
	if !ppHasAlpha(img) {
		empty = "no object stands out from the background"
		if opts.Matting != nil {
			if err := ppApplyMatte(ctx, img, opts.Matting); err != nil {
				return nil, err
			}
		} else {
			warnings = append(warnings, ppWarnCutOut)
			w, err := ppCutOut(ctx, img)
			if err != nil {
				return nil, err
			}
			if w != "" {
				warnings = append(warnings, w)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bbox, ok := ppAlphaBBox(img)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoObject, empty)
	}
	canvas, err := ppRecenter(img, bbox, spec.BorderRatio, spec.CanvasSize)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Prepared{
		Tensor:   ppTensor(canvas, spec),
		Hash:     sha256.Sum256(canvas.pix),
		Source:   img.Rect.Size(),
		BBox:     bbox,
		Warnings: warnings,
		Format:   format,
	}, nil
}

func ppCheckSpec(s engines.ImageSpec) error {
	if s.Size < 1 || s.CanvasSize < 1 {
		return fmt.Errorf("preprocess: image size %d, canvas %d: want both ≥ 1", s.Size, s.CanvasSize)
	}
	if !(s.BorderRatio >= 0 && s.BorderRatio < 1) {
		return fmt.Errorf("preprocess: border ratio %g outside [0, 1)", s.BorderRatio)
	}
	for _, v := range s.Std {
		if v == 0 {
			return fmt.Errorf("preprocess: std %v has a zero", s.Std)
		}
	}
	return nil
}

// ppApplyMatte asks the matting engine for img's alpha and stores it in img.
func ppApplyMatte(ctx context.Context, img *image.NRGBA, m Matter) error {
	a, err := m.Alpha(ctx, img)
	if err != nil {
		return fmt.Errorf("matting: %w", err)
	}
	if a == nil || a.Rect.Size() != img.Rect.Size() {
		var got image.Point
		if a != nil {
			got = a.Rect.Size()
		}
		return fmt.Errorf("matting: matte is %v for a %v picture", got, img.Rect.Size())
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for y := range h {
		src := a.Pix[y*a.Stride : y*a.Stride+w]
		dst := img.Pix[y*img.Stride:]
		for x, v := range src {
			dst[4*x+3] = v
		}
	}
	return nil
}

// ppAlphaBBox is the bounding box of pixels with alpha > 0 (np.nonzero of the
// mask in recenter), as a half-open rectangle.
func ppAlphaBBox(img *image.NRGBA) (image.Rectangle, bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	x0, y0, x1, y1 := w, h, -1, -1
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		first := -1
		for x := 0; x < w; x++ {
			if row[4*x+3] != 0 {
				first = x
				break
			}
		}
		if first < 0 {
			continue
		}
		last := first
		for x := w - 1; x > first; x-- {
			if row[4*x+3] != 0 {
				last = x
				break
			}
		}
		x0, x1 = min(x0, first), max(x1, last)
		if y0 == h {
			y0 = y
		}
		y1 = y
	}
	if x1 < 0 {
		return image.Rectangle{}, false
	}
	return image.Rect(x0, y0, x1+1, y1+1), true
}

// ppRecenter is ImageProcessorV2.recenter followed by load_image's resize to
// the canvas: it returns the canvas² RGB image.
func ppRecenter(img *image.NRGBA, bbox image.Rectangle, border float64, canvas int) (cvImage, error) {
	side := max(img.Rect.Dx(), img.Rect.Dy())
	// Hunyuan3D's extent is max−min of the nonzero coordinates: the crop
	// image[min:max] leaves out the last row and column of the object.
	h, w := bbox.Dy()-1, bbox.Dx()-1
	if h == 0 || w == 0 {
		return cvImage{}, fmt.Errorf("%w: the object is a single row or column of pixels", ErrNoObject)
	}
	target := int(float64(side) * (1 - border))
	scale := float64(target) / float64(max(h, w))
	h2, w2 := int(float64(h)*scale), int(float64(w)*scale)
	if h2 < 1 || w2 < 1 {
		return cvImage{}, fmt.Errorf("%w: the %dx%d object is too thin to recenter", ErrNoObject, w, h)
	}
	oy, ox := (side-h2)/2, (side-w2)/2

	crop := cvImage{
		pix:    img.Pix[bbox.Min.Y*img.Stride+4*bbox.Min.X:],
		w:      w,
		h:      h,
		cn:     4,
		stride: img.Stride,
	}
	placed := cvImage{pix: make([]uint8, w2*h2*4), w: w2, h: h2, cn: 4, stride: 4 * w2}
	cvResizeArea(crop, placed)
	onWhite := ppOnWhite(placed)

	// The S×S canvas is white around the placed object; the cubic resize reads
	// it row by row, so it is never allocated whole.
	seg := 3 * ox
	src := func(y int, dst []uint8) {
		if y < oy || y >= oy+h2 {
			ppFill(dst, 255)
			return
		}
		ppFill(dst[:seg], 255)
		n := copy(dst[seg:], onWhite.row(y-oy))
		ppFill(dst[seg+n:], 255)
	}
	out := cvImage{pix: make([]uint8, canvas*canvas*3), w: canvas, h: canvas, cn: 3, stride: 3 * canvas}
	cvResizeCubic(side, side, 3, src, out)
	return out, nil
}

func ppFill(b []uint8, v uint8) {
	for i := range b {
		b[i] = v
	}
}

// ppOnWhite composites straight-alpha RGBA on white as recenter does with
// numpy: rgb·m + 255·(1−m) with m = a/255, all in float32, truncated to 8 bits.
// It works in place: each row's RGB result is packed at the start of the row,
// which is returned as a 3-channel view with the RGBA stride.
func ppOnWhite(rgba cvImage) cvImage {
	for y := range rgba.h {
		row := rgba.row(y)
		for x := range rgba.w {
			p := row[4*x : 4*x+4 : 4*x+4]
			r, g, b, a := p[0], p[1], p[2], p[3]
			switch a {
			case 255:
			case 0:
				r, g, b = 255, 255, 255
			default:
				m := float32(a) / 255
				bg := float32(255 * float32(1-m))
				r = uint8(min(max(float32(float32(r)*m)+bg, 0), 255))
				g = uint8(min(max(float32(float32(g)*m)+bg, 0), 255))
				b = uint8(min(max(float32(float32(b)*m)+bg, 0), 255))
			}
			row[3*x], row[3*x+1], row[3*x+2] = r, g, b
		}
	}
	return cvImage{pix: rgba.pix, w: rgba.w, h: rgba.h, cn: 3, stride: rgba.stride}
}

// ppTensor maps the canvas to the conditioner's input: v/255·2−1 (the
// processor's array_to_tensor), (x+1)/2 (the encoder's value_range), bilinear
// antialiased resize to Size², then (x−mean)/std, each step in float32.
func ppTensor(canvas cvImage, spec engines.ImageSpec) tensor.Tensor {
	var lut [256]float32
	for v := range lut {
		x := float32(float32(v)/255) * 2
		x = float32(x-1) + 1
		lut[v] = x / 2
	}
	n, c := spec.Size, canvas.w
	data := make([]float32, 3*n*n)
	plane := make([]float32, c*c)
	for ch := range 3 {
		for i := range plane {
			plane[i] = lut[canvas.pix[3*i+ch]]
		}
		out := data[ch*n*n : (ch+1)*n*n]
		torchResizeBilinear(plane, c, c, out, n, n)
		mean, std := float32(spec.Mean[ch]), float32(spec.Std[ch])
		for i, v := range out {
			out[i] = float32(v-mean) / std
		}
	}
	return tensor.Tensor{Name: "image", Shape: []int64{1, 3, int64(n), int64(n)}, Data: data}
}

// Picture is a preprocessed picture as the conditioner sees it (the object
// cut out, centred and composited on white, at Size²) in 8-bit RGB: what a
// paint model paints with, so that the texture follows the cut-out the
// shape was made from.
func (p *Pipeline) Picture(prep *Prepared) *image.NRGBA {
	spec := p.set.Image
	n := spec.Size
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	for ch := range 3 {
		plane := prep.Tensor.Data[ch*n*n : (ch+1)*n*n]
		mean, std := spec.Mean[ch], spec.Std[ch]
		for i, v := range plane {
			x := (float64(v)*std + mean) * 255
			img.Pix[4*i+ch] = uint8(math.Round(min(max(x, 0), 255)))
		}
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	return img
}
