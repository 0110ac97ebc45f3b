package mesh

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/mesh/meshtest"
)

// TestExportGLBPassesKhronosValidator runs the Khronos glTF validator over
// the exporter's output: besides no errors, our files carry no warnings,
// and only the infos listed (an empty mesh is an empty node; a degenerate
// triangle is kept as given).
func TestExportGLBPassesKhronosValidator(t *testing.T) {
	sphere := exportMesh()
	oddNormals := slices.Clone(sphere.Normals)
	oddNormals[0], oddNormals[1], oddNormals[2] = 2*oddNormals[0], 2*oddNormals[1], 2*oddNormals[2]
	oddNormals[3], oddNormals[4], oddNormals[5] = 0, 0, 0
	oddNormals[6] = float32(math.NaN())
	tests := []struct {
		name      string
		mesh      *Mesh
		wantInfos []string
	}{
		{"icosphere with normals", sphere, nil},
		{"icosphere without normals", &Mesh{Vertices: sphere.Vertices, Indices: sphere.Indices}, nil},
		{"scaled, zero and NaN normals supplied", &Mesh{Vertices: sphere.Vertices, Indices: sphere.Indices, Normals: oddNormals}, nil},
		{"coordinates near the float32 limit", icosphere(1, 1e38, [3]float64{-1e37, 0, 1e37}), nil},
		{"single triangle", &Mesh{Vertices: []float32{0, 0, 0, 1, 0, 0, 0, 1, 0}, Indices: []uint32{0, 1, 2}}, nil},
		{"degenerate triangle and unreferenced vertex",
			&Mesh{Vertices: []float32{0, 0, 0, 1, 0, 0, 0, 1, 0, 2, 2, 2, 5, 5, 5}, Indices: []uint32{0, 1, 2, 0, 0, 3}},
			[]string{"ACCESSOR_INDEX_TRIANGLE_DEGENERATE"}},
		{"empty mesh", &Mesh{}, []string{"NODE_EMPTY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := WriteGLB(&buf, tc.mesh); err != nil {
				t.Fatal(err)
			}
			r := meshtest.RequireValidGLB(t, buf.Bytes())
			if r.NumWarnings != 0 || r.NumHints != 0 || !slices.Equal(r.Codes("info"), tc.wantInfos) {
				t.Errorf("want only the infos %v: %s", tc.wantInfos, r)
			}
		})
	}
}

func TestUnitNormalsRescalesOnlyWhatIsNotUnit(t *testing.T) {
	third := float32(1 / math.Sqrt(3))
	tests := []struct {
		name    string
		in      []float32
		want    []float32
		inPlace bool
	}{
		{"unit vectors keep their bits", []float32{third, third, third, 0, -1, 0}, []float32{third, third, third, 0, -1, 0}, true},
		{"long and short vectors keep their direction", []float32{0, 3, 0, 0, 0, -0.5}, []float32{0, 1, 0, 0, 0, -1}, false},
		{"zero becomes +Z", []float32{0, 0, 0}, []float32{0, 0, 1}, false},
		{"non-finite becomes +Z", []float32{float32(math.NaN()), 0, 0, float32(math.Inf(1)), 0, 0}, []float32{0, 0, 1, 0, 0, 1}, false},
		{"only the odd vector changes", []float32{1, 0, 0, 0, 2, 0}, []float32{1, 0, 0, 0, 1, 0}, false},
	}
	for _, tc := range tests {
		in := slices.Clone(tc.in)
		got := unitNormals(in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if sameArray := &got[0] == &in[0]; sameArray != tc.inPlace {
			t.Errorf("%s: result shares the input array = %v, want %v", tc.name, sameArray, tc.inPlace)
		}
		if !slices.EqualFunc(in, tc.in, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Errorf("%s: input modified to %v", tc.name, in)
		}
	}
}
