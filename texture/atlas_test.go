package texture

import (
	"context"
	"math"
	"testing"

	"github.com/hy3d/hy3d/mesh"
)

func TestAtlasProperties(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       *mesh.Mesh
		size    int
		padding int
	}{
		{"torus", torus(64, 32, 1, 0.4), 1024, 1},
		{"torus without padding", torus(64, 32, 1, 0.4), 1024, 0},
		{"torus, padding 3", torus(64, 32, 1, 0.4), 1024, 3},
		{"thin torus", torus(200, 8, 1, 0.05), 2048, 1},
		{"helicoid (overlaps unless split)", helicoid(2.5, 200, 8, 0.2), 1024, 1},
		{"helicoid without padding", helicoid(2.5, 200, 8, 0.2), 1024, 0},
		{"non-manifold with degenerate faces", nonManifold(), 256, 1},
		{"two pieces", twoPieces(), 512, 1},
		{"more charts than room for their padding", torus(64, 32, 1, 0.4), 32, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := DefaultAtlasOptions(tc.size)
			opt.Padding = tc.padding
			a, err := BuildAtlas(context.Background(), tc.m, opt)
			if err != nil {
				t.Fatal(err)
			}
			st := a.Stats
			t.Logf("%d faces: %d charts, stretch %.4f, utilization %.3f, overlaps %d, %v", tc.m.TriangleCount(),
				st.Charts, st.StretchL2, st.Utilization, st.OverlapTexels, st.Duration)
			if st.OverlapTexels != 0 {
				t.Errorf("%d overlapping texels", st.OverlapTexels)
			}
			// MeasureAtlas scores in Go what the native builder reported.
			measured, err := MeasureAtlas(tc.m, a, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if measured.OverlapTexels != 0 {
				t.Errorf("independent check: %d texel centres inside two faces", measured.OverlapTexels)
			}
			if math.Abs(measured.StretchL2-st.StretchL2) > 1e-6 || math.Abs(measured.Utilization-st.Utilization) > 0.01 {
				t.Errorf("measured stretch %.6f, utilization %.4f; builder reported %.6f, %.4f",
					measured.StretchL2, measured.Utilization, st.StretchL2, st.Utilization)
			}
			// Charts share no atlas vertex, so each is one island or more.
			if measured.Charts < st.Charts {
				t.Errorf("%d UV islands for %d charts", measured.Charts, st.Charts)
			}
			for i, x := range a.UV {
				if !(x >= 0 && x <= 1) {
					t.Fatalf("uv %d = %v outside [0, 1]", i, x)
				}
			}
			// 40° charts stretch a face by at most 1/cos 40° ≈ 1.31 in one
			// direction, L2 stretch sqrt((1 + 1.31²)/2) ≈ 1.17 before the
			// normalization to the mean scale; merged fragments (up to 60°)
			// are few, so the mesh's stretch stays under that.
			const maxStretch = 1.17
			if st.StretchL2 < 1 || st.StretchL2 > maxStretch {
				t.Errorf("L2 stretch %.4f outside [1, %.2f]", st.StretchL2, maxStretch)
			}
			checkSplitOnlyAtSeams(t, tc.m, a)
		})
	}
}

func twoPieces() *mesh.Mesh {
	a, b := torus(16, 8, 1, 0.3), torus(16, 8, 0.5, 0.2)
	m := &mesh.Mesh{Vertices: append(append([]float32{}, a.Vertices...), b.Vertices...), Indices: append([]uint32{}, a.Indices...)}
	for _, i := range b.Indices {
		m.Indices = append(m.Indices, i+uint32(a.VertexCount()))
	}
	for v := a.VertexCount(); v < m.VertexCount(); v++ {
		m.Vertices[3*v] += 3
	}
	return m
}

// checkSplitOnlyAtSeams: every atlas vertex is one input vertex in one
// chart, and two corners of the same input vertex in the same chart share
// the atlas vertex.
func checkSplitOnlyAtSeams(t *testing.T, m *mesh.Mesh, a *Atlas) {
	t.Helper()
	type key struct{ vertex, chart uint32 }
	seen := map[key]uint32{}
	for i, v := range a.Indices {
		f := i / 3
		if a.Xref[v] != m.Indices[i] {
			t.Fatalf("corner %d: atlas vertex %d is input vertex %d, want %d", i, v, a.Xref[v], m.Indices[i])
		}
		k := key{m.Indices[i], a.FaceChart[f]}
		if prev, ok := seen[k]; ok && prev != v {
			t.Fatalf("input vertex %d split inside chart %d", k.vertex, k.chart)
		}
		seen[k] = v
	}
	if len(seen) != a.VertexCount() {
		t.Errorf("%d atlas vertices for %d (vertex, chart) pairs", a.VertexCount(), len(seen))
	}
}

func TestAtlasRejectsBadInput(t *testing.T) {
	ok := torus(8, 4, 1, 0.3)
	for _, tc := range []struct {
		name string
		m    *mesh.Mesh
		opt  AtlasOptions
	}{
		{"index out of range", &mesh.Mesh{Vertices: []float32{0, 0, 0}, Indices: []uint32{0, 0, 1}}, DefaultAtlasOptions(64)},
		{"NaN coordinate", &mesh.Mesh{Vertices: []float32{0, 0, float32(math.NaN()), 1, 0, 0, 0, 1, 0}, Indices: []uint32{0, 1, 2}}, DefaultAtlasOptions(64)},
		{"zero size", ok, DefaultAtlasOptions(0)},
		{"angle 90", ok, AtlasOptions{Size: 64, MaxChartAngle: 90}},
		{"padding above a quarter", ok, AtlasOptions{Size: 64, Padding: 17, MaxChartAngle: 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BuildAtlas(context.Background(), tc.m, tc.opt); err == nil {
				t.Error("accepted")
			}
		})
	}
}
