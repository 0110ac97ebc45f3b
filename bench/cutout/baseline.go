package main

import (
	"image"
	"math"
)

// borderColourMatte is the cut-out hy3d's preprocessing used before package
// cutout, kept here as the benchmark's baseline: the background colour is
// the per-channel median of the 1-pixel frame, and alpha ramps from 0 at an
// RGB distance of 24 from it to 255 at 64.
func borderColourMatte(img *image.NRGBA) *image.Alpha {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	var hist [3][256]int
	frame := 0
	for y := range h {
		for x := range w {
			if x != 0 && y != 0 && x != w-1 && y != h-1 {
				continue
			}
			p := img.Pix[y*img.Stride+4*x:]
			for c := range 3 {
				hist[c][p[c]]++
			}
			frame++
		}
	}
	var bg [3]float64
	for c := range 3 {
		seen := 0
		for v, n := range hist[c] {
			seen += n
			if seen >= (frame+1)/2 {
				bg[c] = float64(v)
				break
			}
		}
	}
	const lo, hi = 24, 64
	out := image.NewAlpha(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			p := img.Pix[y*img.Stride+4*x:]
			dr, dg, db := float64(p[0])-bg[0], float64(p[1])-bg[1], float64(p[2])-bg[2]
			d := math.Sqrt(dr*dr + dg*dg + db*db)
			out.Pix[y*out.Stride+x] = uint8(math.Round(255 * min(max((d-lo)/(hi-lo), 0), 1)))
		}
	}
	return out
}
