package pipeline

import (
	"context"
	"image"

	"github.com/hy3d/hy3d/cutout"
)

// ppWarnCutOut is the warning of the no-alpha, no-matting fallback.
const ppWarnCutOut = "no alpha and no matting engine: the object was cut out by a colour-model graph cut " +
	"seeded by the picture's border; a matting model (tools/add-matting) does better on photos"

// ppTouchesFrame is the share of the ring ppFrameInset pixels inside the
// picture's edge kept as object above which the cut-out warns that the
// object reaches the border. The ring lies just inside the frame that seeds
// the cut-out's backdrop model (3 % of the longer side), which is taken as
// backdrop wherever it looks like it.
const (
	ppTouchesFrame = 0.05
	ppFrameInset   = 0.035
)

// ppCutOut is the cut-out of last resort for a picture with no alpha and no
// matting engine: package cutout's graph cut, as a Matter. It returns a
// warning when the object reaches the picture's border: there the backdrop
// model has seen object colours, and the part of the object on the border
// is lost.
func ppCutOut(ctx context.Context, img *image.NRGBA) (string, error) {
	if err := ppApplyMatte(ctx, img, cutoutMatter{}); err != nil {
		return "", err
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	d := int(ppFrameInset*float64(max(w, h))) + 1
	if 2*d >= min(w, h) {
		return "", nil
	}
	ring, kept := 0, 0
	ppEachFramePixel(w-2*d, h-2*d, func(x, y int) {
		ring++
		if img.Pix[(y+d)*img.Stride+4*(x+d)+3] != 0 {
			kept++
		}
	})
	if float64(kept) > ppTouchesFrame*float64(ring) {
		return "the object reaches the picture's border: the cut-out may have lost the part of it on the border", nil
	}
	return "", nil
}

type cutoutMatter struct{}

func (cutoutMatter) Alpha(ctx context.Context, rgb *image.NRGBA) (*image.Alpha, error) {
	return cutout.Alpha(ctx, rgb)
}

// ppEachFramePixel calls f once for every pixel of the 1-pixel frame of a
// w×h picture.
func ppEachFramePixel(w, h int, f func(x, y int)) {
	for x := range w {
		f(x, 0)
		if h > 1 {
			f(x, h-1)
		}
	}
	for y := 1; y < h-1; y++ {
		f(0, y)
		if w > 1 {
			f(w-1, y)
		}
	}
}
