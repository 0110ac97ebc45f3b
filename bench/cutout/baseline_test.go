package main

import (
	"image"
	"image/color"
	"image/draw"
	"testing"
)

// The baseline ramps alpha on the RGB distance from the frame's median
// colour: 24 levels off is backdrop, 44 half-way (128), 64 object.
func TestBorderColourMatteRamp(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 10, 10))
	draw.Draw(img, img.Rect, image.NewUniform(color.NRGBA{128, 128, 128, 255}), image.Point{}, draw.Src)
	img.SetNRGBA(3, 3, color.NRGBA{128 + 44, 128, 128, 255})
	img.SetNRGBA(4, 4, color.NRGBA{128 + 24, 128, 128, 255})
	img.SetNRGBA(5, 5, color.NRGBA{128, 128 - 64, 128, 255})
	a := borderColourMatte(img)
	for _, c := range []struct {
		x, y int
		a    uint8
	}{{3, 3, 128}, {4, 4, 0}, {5, 5, 255}, {0, 0, 0}, {9, 9, 0}} {
		if got := a.AlphaAt(c.x, c.y).A; got != c.a {
			t.Errorf("alpha at (%d,%d) = %d, want %d", c.x, c.y, got, c.a)
		}
	}
}
