package paint

import (
	"image"
	"image/color"
	"image/draw"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/texture"
)

// 2.0's six fixed views get Tencent's camera ids (docs/paint-contract.md).
func TestCameraIDsOfTheSixViews(t *testing.T) {
	var got []float32
	for _, c := range texture.Cameras20() {
		id, err := cameraID(c)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if want := []float32{21, 12, 15, 18, 43, 37}; !slices.Equal(got, want) {
		t.Fatalf("camera ids %v, want %v", got, want)
	}
	if _, err := cameraID(texture.Camera{Elev: 45}); err == nil {
		t.Fatal("elevation 45 accepted")
	}
}

// RoPE voxel indices: a cell's foreground mean, rounded half to even;
// cells with under 1/16 foreground get 0; a pixel with any channel at
// exactly 1 is background.
func TestRopeIndices(t *testing.T) {
	img := texture.NewImage(8, 8, 3)
	for p := 0; p < 64; p++ {
		x, y := p%8, p/8
		v := [3]float32{1, 1, 1} // background
		switch {
		case x < 4 && y < 4: // top-left cell: all 0.5
			v = [3]float32{0.5, 0.5, 0.5}
		case x >= 4 && y < 4 && x == 4 && y == 0: // top-right: one pixel of 16, at the threshold
			v = [3]float32{0.2, 0.4, 0.6}
		case x < 4 && y >= 4: // bottom-left: half foreground at 0.25, half with one channel at 1
			v = [3]float32{0.25, 0.25, 0.25}
			if x >= 2 {
				v = [3]float32{0.9, 1, 0.9}
			}
		}
		copy(img.Pix[3*p:], v[:])
	}
	got := ropeIndices([]texture.Image{img}, 2, 8)
	want := []float32{
		4, 4, 4, // round(3.5) to even
		1, 3, 4, // 1 fg pixel ≥ 16/16: 0.2·7=1.4, 0.4·7=2.8, 0.6·7=4.2
		2, 2, 2, // 0.25·7 = 1.75
		0, 0, 0, // no foreground
	}
	if !slices.Equal(got, want) {
		t.Fatalf("indices %v, want %v", got, want)
	}
}

// Guidance combination per layout.
func TestCombine(t *testing.T) {
	u, r, f := []float32{1, 2}, []float32{3, 2}, []float32{5, 0}
	for _, tc := range []struct {
		guidance string
		rows     [][]float32
		want     []float32
	}{
		{"cfg", [][]float32{u, r}, []float32{1 + 2*2, 2}},
		{"cfg3", [][]float32{u, r, f}, []float32{1 + 2*2 + 2*2, 2 + 0 + 2*-2}},
		{"none", [][]float32{f}, f},
	} {
		if got := combine(tc.guidance, 2, tc.rows); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.guidance, got, tc.want)
		}
	}
}

func TestPreparePictureRecentresACutOut(t *testing.T) {
	blue, clear := color.NRGBA{0, 0, 255, 255}, color.NRGBA{255, 0, 0, 0}
	// cutOut is a 50×50 picture, transparent but for a 10×10 blue square at (x, y).
	cutOut := func(x, y int) image.Image {
		img := image.NewNRGBA(image.Rect(0, 0, 50, 50))
		draw.Draw(img, img.Rect, image.NewUniform(clear), image.Point{}, draw.Src)
		draw.Draw(img, image.Rect(x, y, x+10, y+10), image.NewUniform(blue), image.Point{}, draw.Src)
		return img
	}
	opaque := image.NewNRGBA(image.Rect(0, 0, 14, 10))
	draw.Draw(opaque, opaque.Rect, image.NewUniform(blue), image.Point{}, draw.Src)
	white, onBlue := [3]float32{1, 1, 1}, [3]float32{0, 0, 1}
	tests := []struct {
		name     string
		picture  image.Image
		recenter bool
		want     map[image.Point][3]float32 // on the 14×14 result
	}{
		// The 10×10 square with 2 pixels of margin (20 %) on every side.
		{"cut-out in a corner", cutOut(0, 0), true, map[image.Point][3]float32{{1, 1}: white, {2, 2}: onBlue, {11, 11}: onBlue, {12, 12}: white, {7, 1}: white}},
		{"cut-out off centre", cutOut(31, 17), true, map[image.Point][3]float32{{1, 1}: white, {2, 2}: onBlue, {11, 11}: onBlue, {12, 12}: white, {7, 1}: white}},
		// Opaque: padded to a square as given, 2 white rows above and below.
		{"opaque", opaque, true, map[image.Point][3]float32{{0, 0}: white, {0, 1}: white, {0, 2}: onBlue, {13, 11}: onBlue, {13, 12}: white}},
		// 2.1: as given, the square a fifth of the picture in its corner.
		{"cut-out in a corner, not recentred", cutOut(0, 0), false, map[image.Point][3]float32{{0, 0}: onBlue, {1, 1}: onBlue, {3, 3}: white, {7, 7}: white}},
		{"fully transparent", image.NewNRGBA(image.Rect(0, 0, 14, 14)), true, map[image.Point][3]float32{{0, 0}: white, {7, 7}: white}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := preparePicture(tc.picture, 14, tc.recenter)
			for p, want := range tc.want {
				i := 3 * (p.Y*14 + p.X)
				if rgb := [3]float32(got.Pix[i : i+3]); rgb != want {
					t.Errorf("pixel %v = %v, want %v", p, rgb, want)
				}
			}
		})
	}
}
