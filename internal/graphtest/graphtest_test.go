package graphtest

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

func TestInputsShapesAndRanges(t *testing.T) {
	g := engines.Graph{Inputs: []engines.TensorSpec{
		{Name: "queries", Shape: []int64{-1, -1, 3}},
		{Name: "timestep", Shape: []int64{-1}},
		{Name: "guidance", Shape: []int64{-1}},
		{Name: "latents", Shape: []int64{-1, 4, 2}},
	}}
	in := Inputs(g, 3, 5, rand.New(rand.NewPCG(1, 1)))
	want := [][]int64{{3, 5, 3}, {3}, {3}, {3, 4, 2}}
	ranges := [][2]float32{{-1.01, 1.01}, {0, 1}, {1, 10}, {-10, 10}}
	for i, x := range in {
		if x.Name != g.Inputs[i].Name || !slices.Equal(x.Shape, want[i]) || int64(len(x.Data)) != tensor.Elements(want[i]) {
			t.Fatalf("%s: shape %v, want %v", x.Name, x.Shape, want[i])
		}
		for _, v := range x.Data {
			if v < ranges[i][0] || v > ranges[i][1] {
				t.Errorf("%s: %v outside %v", x.Name, v, ranges[i])
			}
		}
	}
}
