package synthpic

import (
	"image"
	"math"
	"slices"
	"testing"
)

// A disc's mask covers π/4 of its bounding square, and the pixels inside it
// have the object's colour, not the backdrop's.
func TestRenderDrawsTheMaskedObject(t *testing.T) {
	for _, kind := range Backdrops {
		t.Run(kind, func(t *testing.T) {
			sc := Scene{W: 200, H: 160, Backdrop: kind, Base: [3]float64{200, 200, 200}, Shape: "disc",
				Size: 0.5, Colour: [3]float64{30, 45, 110}, Seed: 7}
			img, mask, err := sc.Render()
			if err != nil {
				t.Fatal(err)
			}
			n, blue := 0, 0
			for i, m := range mask {
				if !m {
					continue
				}
				n++
				p := img.Pix[(i/sc.W)*img.Stride+4*(i%sc.W):]
				if p[2] > p[0]+30 {
					blue++
				}
			}
			want := math.Pi / 4 * (0.5 * 160) * (0.5 * 160)
			if math.Abs(float64(n)-want) > 0.03*want {
				t.Errorf("mask of %d pixels, want about %.0f", n, want)
			}
			if blue < n*95/100 {
				t.Errorf("%d of %d masked pixels have the object's colour", blue, n)
			}
			again, _, err := sc.Render()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(img.Pix, again.Pix) {
				t.Error("one scene rendered twice differs")
			}
		})
	}
}

func TestIoU(t *testing.T) {
	a := image.NewAlpha(image.Rect(0, 0, 4, 1))
	copy(a.Pix, []uint8{255, 128, 127, 0})
	for _, c := range []struct {
		mask []bool
		want float64
	}{
		{[]bool{true, true, false, false}, 1},
		{[]bool{true, false, false, false}, 0.5},
		{[]bool{false, false, true, true}, 0},
		{[]bool{true, true, true, true}, 0.5},
	} {
		if got := IoU(a, c.mask); got != c.want {
			t.Errorf("IoU(%v) = %v, want %v", c.mask, got, c.want)
		}
	}
	if got := IoU(image.NewAlpha(image.Rect(0, 0, 2, 1)), []bool{false, false}); got != 1 {
		t.Errorf("two empty masks: IoU %v, want 1", got)
	}
}
