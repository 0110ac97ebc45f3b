package mesh

import "testing"

// tetrahedron returns a closed, consistently wound tetrahedron.
func tetrahedron() *Mesh {
	return &Mesh{
		Vertices: []float32{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1},
		Indices:  []uint32{0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3},
	}
}

func TestAnalyzeCountsEdgesByUse(t *testing.T) {
	tests := []struct {
		name string
		mesh *Mesh
		want Topology
	}{
		{
			name: "closed tetrahedron is watertight with Euler 2",
			mesh: tetrahedron(),
			want: Topology{Vertices: 4, Faces: 4, Edges: 6, Components: 1},
		},
		{
			name: "single triangle has three boundary edges",
			mesh: &Mesh{Vertices: make([]float32, 9), Indices: []uint32{0, 1, 2}},
			want: Topology{Vertices: 3, Faces: 1, Edges: 3, BoundaryEdges: 3, Components: 1},
		},
		{
			name: "three triangles on one edge make it non-manifold",
			mesh: &Mesh{Vertices: make([]float32, 15), Indices: []uint32{0, 1, 2, 1, 0, 3, 0, 1, 4}},
			want: Topology{Vertices: 5, Faces: 3, Edges: 7, BoundaryEdges: 6, NonManifoldEdges: 1, Components: 1},
		},
		{
			name: "neighbours with the same edge direction are flipped",
			mesh: &Mesh{Vertices: make([]float32, 12), Indices: []uint32{0, 1, 2, 0, 1, 3}},
			want: Topology{Vertices: 4, Faces: 2, Edges: 5, BoundaryEdges: 4, FlippedEdges: 1, Components: 1},
		},
		{
			name: "repeated vertex is degenerate; unused vertices are not counted",
			mesh: &Mesh{Vertices: make([]float32, 18), Indices: []uint32{0, 0, 1, 3, 4, 5}},
			want: Topology{Vertices: 5, Faces: 2, Edges: 5, BoundaryEdges: 4, DegenerateFaces: 1, Components: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(tc.mesh)
			if got != tc.want {
				t.Fatalf("Analyze = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTetrahedronEulerAndWatertight(t *testing.T) {
	top := Analyze(tetrahedron())
	if top.Euler() != 2 || !top.Watertight() || !top.Manifold() || top.FlippedEdges != 0 {
		t.Fatalf("tetrahedron topology %+v: Euler %d", top, top.Euler())
	}
}
