package pipeline

import (
	"fmt"
	"image"
	"math"
)

// The fallback matte's ramp, in RGB distance from the background colour:
// JPEG noise and gentle shading on a studio backdrop stay below ppMatteLow,
// and anything at least ppMatteHigh away is taken as object.
const (
	ppMatteLow  = 24
	ppMatteHigh = 64
	// ppBorderNoisy is the share of frame pixels off the background colour
	// above which the background is probably not a plain backdrop.
	ppBorderNoisy = 0.10
)

// ppBorderMatte is the cut-out of last resort for a picture with no alpha
// and no matting engine. It takes the background colour as the per-channel
// median of the 1-pixel frame and sets each pixel's alpha from its Euclidean
// RGB distance d to that colour: 0 up to ppMatteLow, 255 from ppMatteHigh, a
// linear ramp between (so edges stay soft). Colours are left as they are: the
// white composite in recenter then treats them as straight alpha. It returns
// a warning when the frame is not a plain colour, because then the matte
// likely keeps background.
func ppBorderMatte(img *image.NRGBA) string {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	var hist [3][256]int
	frame := 0
	ppEachFramePixel(w, h, func(x, y int) {
		p := img.Pix[y*img.Stride+4*x:]
		for c := range 3 {
			hist[c][p[c]]++
		}
		frame++
	})
	var bg [3]int
	for c := range 3 {
		bg[c] = ppMedian(&hist[c], frame)
	}
	dist2 := func(p []uint8) int {
		dr, dg, db := int(p[0])-bg[0], int(p[1])-bg[1], int(p[2])-bg[2]
		return dr*dr + dg*dg + db*db
	}
	const lo2, hi2 = ppMatteLow * ppMatteLow, ppMatteHigh * ppMatteHigh
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for i := 0; i < len(row); i += 4 {
			switch d2 := dist2(row[i:]); {
			case d2 <= lo2:
				row[i+3] = 0
			case d2 >= hi2:
				row[i+3] = 255
			default:
				t := (math.Sqrt(float64(d2)) - ppMatteLow) / (ppMatteHigh - ppMatteLow)
				row[i+3] = uint8(math.Round(255 * t))
			}
		}
	}
	off := 0
	ppEachFramePixel(w, h, func(x, y int) {
		if img.Pix[y*img.Stride+4*x+3] != 0 {
			off++
		}
	})
	if float64(off) > ppBorderNoisy*float64(frame) {
		return fmt.Sprintf("background is not a plain colour (%d of %d border pixels differ from it): the cut-out may keep some of it", off, frame)
	}
	return ""
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

// ppMedian is the lower median of n samples given their histogram.
func ppMedian(hist *[256]int, n int) int {
	need, seen := (n+1)/2, 0
	for v, c := range hist {
		seen += c
		if seen >= need {
			return v
		}
	}
	return 255
}
