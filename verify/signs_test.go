package verify

import (
	"math"
	"testing"
)

func TestCompareSignsCountsOnlyPointsNearTheSurface(t *testing.T) {
	tests := []struct {
		name        string
		got, want   []float32
		near, agree int
		iou         float64
		nan         int
		pass        bool
	}{
		{name: "identical volumes agree everywhere",
			got: []float32{-3, -0.5, 0.5, 3}, want: []float32{-3, -0.5, 0.5, 3}, near: 2, agree: 2, iou: 1, pass: true},
		{name: "a flip far from the surface is outside the band but lowers the IoU",
			// |−3| and |3| are both beyond the band: a wildly wrong point
			// that never places the surface.
			got: []float32{-3, -0.5, 0.5, 3}, want: []float32{3, -0.5, 0.5, 3}, near: 2, agree: 2, iou: 2.0 / 3, pass: true},
		{name: "a flip near the surface counts against",
			got: []float32{-3, 0.1, 0.5, 3}, want: []float32{-3, -0.1, 0.5, 3}, near: 2, agree: 1, iou: 2.0 / 3},
		{name: "a point near on one side only is still counted",
			got: []float32{2, 0.5}, want: []float32{-0.5, 0.5}, near: 2, agree: 1, iou: 0.5},
		{name: "zero is outside, as for marching cubes at level 0",
			got: []float32{0, 0.5}, want: []float32{-0.2, 0.5}, near: 2, agree: 2, iou: 1, pass: true},
		{name: "NaN fails and counts as a disagreement near the surface",
			got: []float32{float32(math.NaN()), 0.5}, want: []float32{0.5, 0.5}, near: 2, agree: 1, nan: 1, iou: 1},
		{name: "no point near the surface agrees trivially",
			got: []float32{-3, -3}, want: []float32{-2, -5}, near: 0, agree: 0, iou: 1, pass: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CompareSigns(tc.got, tc.want, 0.95, DefaultAgreement)
			if err != nil {
				t.Fatal(err)
			}
			if s.Near != tc.near || s.Agree != tc.agree || s.NaN != tc.nan || s.Pass != tc.pass || math.Abs(s.IoU-tc.iou) > 1e-12 {
				t.Errorf("near %d agree %d nan %d iou %v pass %v; want %d %d %d %v %v",
					s.Near, s.Agree, s.NaN, s.IoU, s.Pass, tc.near, tc.agree, tc.nan, tc.iou, tc.pass)
			}
		})
	}
}

func TestCompareSignsPassesAtTheThresholdExactly(t *testing.T) {
	// 50 near points, one flipped: 0.98 agreement.
	got := make([]float32, 50)
	want := make([]float32, 50)
	for i := range got {
		got[i], want[i] = 0.5, 0.5
	}
	got[7] = -0.5
	s, err := CompareSigns(got, want, 0.95, 0.98)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Pass || s.Fraction != 0.98 {
		t.Errorf("fraction %v pass %v, want 0.98 and a pass", s.Fraction, s.Pass)
	}
	got[8] = -0.5
	if s, _ := CompareSigns(got, want, 0.95, 0.98); s.Pass {
		t.Errorf("fraction %v passed a 0.98 threshold", s.Fraction)
	}
}

func TestCompareSignsRejectsBadArguments(t *testing.T) {
	for _, tc := range []struct {
		name       string
		got, want  []float32
		band, thre float64
	}{
		{"different sizes", []float32{1}, []float32{1, 2}, 1, 0.9},
		{"zero band", []float32{1}, []float32{1}, 0, 0.9},
		{"threshold above 1", []float32{1}, []float32{1}, 1, 1.5},
		{"NaN threshold", []float32{1}, []float32{1}, 1, math.NaN()},
	} {
		if _, err := CompareSigns(tc.got, tc.want, tc.band, tc.thre); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
