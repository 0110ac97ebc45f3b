package mesh

import (
	"math"
	"testing"
)

func TestVertexNormalsWeighFacesByArea(t *testing.T) {
	// Vertex 0 is shared by a big face in the z=0 plane (normal +Z, area 2)
	// and a small one in the x=0 plane (normal +X, area 0.5).
	m := &Mesh{
		Vertices: []float32{0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0, -1, 0},
		Indices:  []uint32{0, 1, 2, 0, 3, 4},
	}
	n := VertexNormals(m)
	want := unit([3]float64{0.5, 0, 2})
	for i := range 3 {
		if math.Abs(float64(n[i])-want[i]) > 1e-6 {
			t.Fatalf("normal of vertex 0 = %v, want %v", n[:3], want)
		}
	}
}

func TestVertexNormalsAreUnitEvenWithoutArea(t *testing.T) {
	m := &Mesh{
		Vertices: []float32{0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 9, 9, 9},
		Indices:  []uint32{0, 1, 2, 0, 1, 3}, // a zero-area face; vertex 4 unused
	}
	n := VertexNormals(m)
	tests := []struct {
		vertex int
		want   [3]float32
	}{
		{0, [3]float32{0, 0, 1}}, // only the real face counts
		{2, [3]float32{0, 0, 1}}, // only on the degenerate face: +Z
		{4, [3]float32{0, 0, 1}}, // unused: +Z
	}
	for _, tc := range tests {
		if got := [3]float32(n[3*tc.vertex : 3*tc.vertex+3]); got != tc.want {
			t.Errorf("vertex %d: normal %v, want %v", tc.vertex, got, tc.want)
		}
	}
}

func TestFaceNormalFollowsWinding(t *testing.T) {
	m := &Mesh{Vertices: []float32{0, 0, 0, 1, 0, 0, 0, 1, 0}, Indices: []uint32{0, 1, 2, 0, 2, 1, 0, 0, 1}}
	tests := []struct {
		face int
		want [3]float32
	}{
		{0, [3]float32{0, 0, 1}},
		{1, [3]float32{0, 0, -1}},
		{2, [3]float32{0, 0, 1}}, // degenerate
	}
	for _, tc := range tests {
		if got := FaceNormal(m, tc.face); got != tc.want {
			t.Errorf("face %d: %v, want %v", tc.face, got, tc.want)
		}
	}
}
