package mesh

import (
	"context"
	"errors"
	"math"
	"testing"
)

func TestCleanDropsFloatersSmallerThanTheRatio(t *testing.T) {
	big := icosphere(5, 1, [3]float64{})             // 20480 faces
	small := icosphere(2, 0.05, [3]float64{3, 0, 0}) // 320 faces: 1.6 % of the largest
	tiny := icosphere(1, 0.02, [3]float64{0, 3, 0})  // 80 faces: 0.39 %
	speck := icosphere(0, 0.01, [3]float64{0, 0, 3}) // 20 faces
	in := withMeshes(big, small, tiny, speck)
	tests := []struct {
		name           string
		ratio          float64
		wantFaces      int
		wantComponents int
	}{
		{"default ratio keeps 1.6 %, drops 0.39 %", 0, 20480 + 320, 2},
		{"2 % drops both small ones", 0.02, 20480, 1},
		{"negative ratio keeps everything", -1, 20480 + 320 + 80 + 20, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, report, err := Clean(context.Background(), in, CleanOptions{MinComponentRatio: tc.ratio})
			if err != nil {
				t.Fatal(err)
			}
			top := Analyze(out)
			if out.TriangleCount() != tc.wantFaces || top.Components != tc.wantComponents || !top.Watertight() {
				t.Fatalf("%d faces in %d components (%+v), want %d in %d", out.TriangleCount(), top.Components, top,
					tc.wantFaces, tc.wantComponents)
			}
			removed := in.TriangleCount() - tc.wantFaces
			if report.FloaterFaces != removed || report.FloaterComponents != 4-tc.wantComponents {
				t.Fatalf("report %+v, want %d floater faces in %d components", report, removed, 4-tc.wantComponents)
			}
			if report.UnreferencedVertices != in.VertexCount()-out.VertexCount() || report.FacesOut != tc.wantFaces {
				t.Fatalf("report %+v", report)
			}
		})
	}
}

func TestCleanDropsDegenerateAndDuplicateFaces(t *testing.T) {
	in := icosphere(3, 1, [3]float64{})
	faces := in.TriangleCount()
	a, b, c := in.Indices[0], in.Indices[1], in.Indices[2]
	// Three points on a line make a zero-area face (and are then unused).
	in.Vertices = append(in.Vertices, 5, 0, 0, 6, 0, 0, 8, 0, 0)
	line := uint32(in.VertexCount() - 3)
	// Exactly equal coordinates are welded first: this face has all three
	// corners at one point.
	pa := in.Vertices[3*a : 3*a+3]
	in.Vertices = append(in.Vertices, pa[0], pa[1], pa[2], pa[0], pa[1], pa[2])
	twinA, twinB := uint32(in.VertexCount()-2), uint32(in.VertexCount()-1)
	in.Indices = append(in.Indices,
		a, a, b, // repeated index
		line, line+1, line+2, // collinear: zero area
		a, twinA, twinB, // a single point after welding
		b, c, a, // the first face, rotated
		a, c, b, // the first face, reversed
	)
	out, report, err := Clean(context.Background(), in, CleanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if report.DegenerateFaces != 3 || report.DuplicateFaces != 2 || report.WeldedVertices != 2 {
		t.Fatalf("report %+v, want 3 degenerate, 2 duplicate faces, 2 welded vertices", report)
	}
	if out.TriangleCount() != faces || out.VertexCount() != in.VertexCount()-5 || report.UnreferencedVertices != 3 {
		t.Fatalf("%d faces, %d vertices, report %+v; want %d, %d", out.TriangleCount(), out.VertexCount(), report,
			faces, in.VertexCount()-5)
	}
	if top := Analyze(out); !top.Watertight() || top.FlippedEdges != 0 || top.Euler() != 2 {
		t.Fatalf("cleaned topology %+v", top)
	}
}

func TestCleanWeldsTriangleSoupIntoAClosedMesh(t *testing.T) {
	sphere := icosphere(3, 1, [3]float64{})
	soup := &Mesh{}
	for i, v := range sphere.Indices {
		soup.Vertices = append(soup.Vertices, sphere.Vertices[3*v:3*v+3]...)
		soup.Indices = append(soup.Indices, uint32(i))
	}
	// −0 and +0 are one position.
	for i, x := range soup.Vertices {
		if x == 0 && i%2 == 0 {
			soup.Vertices[i] = float32(math.Copysign(0, -1))
		}
	}
	out, report, err := Clean(context.Background(), soup, CleanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.VertexCount() != sphere.VertexCount() || report.WeldedVertices != soup.VertexCount()-sphere.VertexCount() {
		t.Fatalf("%d vertices, report %+v; want %d", out.VertexCount(), report, sphere.VertexCount())
	}
	if top := Analyze(out); !top.Watertight() || top.Euler() != 2 {
		t.Fatalf("welded topology %+v", top)
	}
}

func TestCleanDecimatesThinShellToBudgetAndStaysClosed(t *testing.T) {
	in := gyroidShellMesh(t, 64)
	before := Analyze(in)
	out, report, err := Clean(context.Background(), in, CleanOptions{TargetFaces: 10000, MinComponentRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	after := Analyze(out)
	if out.TriangleCount() > 10000 || out.TriangleCount() < 9998 || report.FacesOut != out.TriangleCount() {
		t.Fatalf("%d faces (report %+v), want 10000", out.TriangleCount(), report)
	}
	if report.DecimatedFaces != in.TriangleCount()-out.TriangleCount() {
		t.Fatalf("report %+v", report)
	}
	if !after.Watertight() || after.FlippedEdges != 0 || after.Euler() != before.Euler() || duplicateFaces(out) != 0 {
		t.Fatalf("decimated %+v (Euler %d), was %+v (Euler %d)", after, after.Euler(), before, before.Euler())
	}
	if len(out.Normals) != len(out.Vertices) {
		t.Fatalf("%d normal floats for %d vertices", len(out.Normals), out.VertexCount())
	}
}

func TestCleanNormalsPointOutwardOnASphere(t *testing.T) {
	center := [3]float64{0.3, -2, 5}
	out, _, err := Clean(context.Background(), icosphere(5, 2, center), CleanOptions{TargetFaces: 3000})
	if err != nil {
		t.Fatal(err)
	}
	for v := 0; v < out.VertexCount(); v++ {
		var radial [3]float64
		for i := range 3 {
			radial[i] = float64(out.Vertices[3*v+i]) - center[i]
		}
		r := unit(radial)
		n := out.Normals[3*v : 3*v+3]
		if d := r[0]*float64(n[0]) + r[1]*float64(n[1]) + r[2]*float64(n[2]); d < 0.99 {
			t.Fatalf("vertex %d: normal %v against radial direction %v (cos %v)", v, n, r, d)
		}
	}
}

func TestCleanWithoutBudgetKeepsEveryGoodFace(t *testing.T) {
	in := torusMesh(40, 20, 1, 0.3)
	out, report, err := Clean(context.Background(), in, CleanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.TriangleCount() != in.TriangleCount() || report.DecimatedFaces != 0 || report.FacesIn != report.FacesOut {
		t.Fatalf("%d faces, report %+v", out.TriangleCount(), report)
	}
}

func TestCleanDoesNotModifyItsInput(t *testing.T) {
	in := withMeshes(icosphere(3, 1, [3]float64{}), icosphere(0, 0.01, [3]float64{3, 0, 0}))
	in.Indices = append(in.Indices, 0, 0, 1)
	vertices := append([]float32(nil), in.Vertices...)
	indices := append([]uint32(nil), in.Indices...)
	if _, _, err := Clean(context.Background(), in, CleanOptions{TargetFaces: 100}); err != nil {
		t.Fatal(err)
	}
	for i := range vertices {
		if in.Vertices[i] != vertices[i] {
			t.Fatalf("vertex float %d changed", i)
		}
	}
	for i := range indices {
		if in.Indices[i] != indices[i] {
			t.Fatalf("index %d changed", i)
		}
	}
}

func TestCleanOfNothingIsEmpty(t *testing.T) {
	out, report, err := Clean(context.Background(), &Mesh{Vertices: []float32{1, 2, 3}, Indices: []uint32{0, 0, 0}},
		CleanOptions{TargetFaces: 10})
	if err != nil {
		t.Fatal(err)
	}
	if out.TriangleCount() != 0 || out.VertexCount() != 0 || report.DegenerateFaces != 1 || report.UnreferencedVertices != 1 {
		t.Fatalf("out %+v, report %+v", out, report)
	}
}

func TestCleanRejectsInvalidInput(t *testing.T) {
	sphere := icosphere(1, 1, [3]float64{})
	nan := icosphere(1, 1, [3]float64{})
	nan.Vertices[0] = float32(math.NaN())
	tests := []struct {
		name string
		mesh *Mesh
		opts CleanOptions
	}{
		{"NaN coordinate", nan, CleanOptions{}},
		{"index out of range", &Mesh{Vertices: make([]float32, 9), Indices: []uint32{0, 1, 3}}, CleanOptions{}},
		{"normals of the wrong length", &Mesh{Vertices: sphere.Vertices, Indices: sphere.Indices, Normals: []float32{0, 0, 1}}, CleanOptions{}},
		{"negative budget", sphere, CleanOptions{TargetFaces: -5}},
		{"ratio above one", sphere, CleanOptions{MinComponentRatio: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Clean(context.Background(), tc.mesh, tc.opts); !errors.Is(err, ErrInvalidMesh) {
				t.Fatalf("err = %v, want ErrInvalidMesh", err)
			}
		})
	}
}

func TestCleanStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Clean(ctx, icosphere(2, 1, [3]float64{}), CleanOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
