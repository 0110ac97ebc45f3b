package paint

import (
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
