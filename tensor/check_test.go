package tensor

import (
	"errors"
	"math"
	"testing"
)

func TestCheckAcceptsOrRejectsShapes(t *testing.T) {
	dynamic := Info{Name: "x", Dims: []int64{-1, 3}}
	profiled := Info{Name: "x", Dims: []int64{-1, -1}, Min: []int64{1, 2}, Opt: []int64{1, 4}, Max: []int64{4, 8}}
	tests := []struct {
		name  string
		t     Tensor
		info  Info
		valid bool
	}{
		{"matching static and dynamic dims", Tensor{"x", []int64{2, 3}, make([]float32, 6)}, dynamic, true},
		{"static dim differs", Tensor{"x", []int64{2, 4}, make([]float32, 8)}, dynamic, false},
		{"rank too low", Tensor{"x", []int64{6}, make([]float32, 6)}, dynamic, false},
		{"rank too high", Tensor{"x", []int64{1, 2, 3}, make([]float32, 6)}, dynamic, false},
		{"too few values", Tensor{"x", []int64{2, 3}, make([]float32, 5)}, dynamic, false},
		{"too many values", Tensor{"x", []int64{2, 3}, make([]float32, 7)}, dynamic, false},
		{"zero batch", Tensor{"x", []int64{0, 3}, nil}, dynamic, false},
		{"negative dims whose product matches the data", Tensor{"x", []int64{-1, -1}, make([]float32, 1)}, Info{Name: "x", Dims: []int64{-1, -1}}, false},
		{"overflowing shape", Tensor{"x", []int64{math.MaxInt64 / 2, 3}, nil}, dynamic, false},
		{"inside the profile", Tensor{"x", []int64{4, 8}, make([]float32, 32)}, profiled, true},
		{"below the profile", Tensor{"x", []int64{1, 1}, make([]float32, 1)}, profiled, false},
		{"above the profile", Tensor{"x", []int64{5, 2}, make([]float32, 10)}, profiled, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Check(tc.info)
			if tc.valid && err != nil {
				t.Fatalf("Check = %v, want nil", err)
			}
			if !tc.valid && !errors.Is(err, ErrShape) {
				t.Fatalf("Check = %v, want ErrShape", err)
			}
		})
	}
}
