package mesh

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

// icosphere is a subdivided icosahedron on a sphere of radius r around c:
// 20·4^levels faces, closed, wound outward.
func icosphere(levels int, r float64, c [3]float64) *Mesh {
	t := (1 + math.Sqrt(5)) / 2
	pts := [][3]float64{{-1, t, 0}, {1, t, 0}, {-1, -t, 0}, {1, -t, 0}, {0, -1, t}, {0, 1, t},
		{0, -1, -t}, {0, 1, -t}, {t, 0, -1}, {t, 0, 1}, {-t, 0, -1}, {-t, 0, 1}}
	faces := [][3]uint32{{0, 11, 5}, {0, 5, 1}, {0, 1, 7}, {0, 7, 10}, {0, 10, 11}, {1, 5, 9}, {5, 11, 4},
		{11, 10, 2}, {10, 7, 6}, {7, 1, 8}, {3, 9, 4}, {3, 4, 2}, {3, 2, 6}, {3, 6, 8}, {3, 8, 9},
		{4, 9, 5}, {2, 4, 11}, {6, 2, 10}, {8, 6, 7}, {9, 8, 1}}
	for range levels {
		mid := map[[2]uint32]uint32{}
		midpoint := func(a, b uint32) uint32 {
			key := [2]uint32{min(a, b), max(a, b)}
			if m, ok := mid[key]; ok {
				return m
			}
			pa, pb := pts[a], pts[b]
			pts = append(pts, [3]float64{(pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2, (pa[2] + pb[2]) / 2})
			mid[key] = uint32(len(pts) - 1)
			return mid[key]
		}
		next := make([][3]uint32, 0, 4*len(faces))
		for _, f := range faces {
			a, b, c := midpoint(f[0], f[1]), midpoint(f[1], f[2]), midpoint(f[2], f[0])
			next = append(next, [3]uint32{f[0], a, c}, [3]uint32{f[1], b, a}, [3]uint32{f[2], c, b}, [3]uint32{a, b, c})
		}
		faces = next
	}
	m := &Mesh{}
	for _, p := range pts {
		n := math.Sqrt(p[0]*p[0] + p[1]*p[1] + p[2]*p[2])
		m.Vertices = append(m.Vertices, float32(c[0]+r*p[0]/n), float32(c[1]+r*p[1]/n), float32(c[2]+r*p[2]/n))
	}
	for _, f := range faces {
		m.Indices = append(m.Indices, f[0], f[1], f[2])
	}
	return m
}

// torusMesh is an n×k grid on a torus around z, each quad split in two.
func torusMesh(n, k int, major, minor float64) *Mesh {
	m := &Mesh{}
	for i := range n {
		for j := range k {
			a, b := 2*math.Pi*float64(i)/float64(n), 2*math.Pi*float64(j)/float64(k)
			m.Vertices = append(m.Vertices, float32((major+minor*math.Cos(b))*math.Cos(a)),
				float32((major+minor*math.Cos(b))*math.Sin(a)), float32(minor*math.Sin(b)))
		}
	}
	id := func(i, j int) uint32 { return uint32((i%n)*k + j%k) }
	for i := range n {
		for j := range k {
			m.Indices = append(m.Indices, id(i, j), id(i+1, j), id(i+1, j+1), id(i, j), id(i+1, j+1), id(i, j+1))
		}
	}
	return m
}

// plate is a closed box of size sx×sy×sz whose sides are fine grids; with
// a tiny sz it is a thin plate whose two faces meet only along the rim.
func plate(sx, sy, sz float64, nx, ny int) *Mesh {
	m := &Mesh{}
	ids := map[[3]int]uint32{}
	div := [3]int{nx, ny, 1}
	size := [3]float64{sx, sy, sz}
	vertex := func(p [3]int) uint32 {
		if id, ok := ids[p]; ok {
			return id
		}
		for a := range 3 {
			m.Vertices = append(m.Vertices, float32(size[a]*float64(p[a])/float64(div[a])))
		}
		ids[p] = uint32(m.VertexCount() - 1)
		return ids[p]
	}
	// Each side: axes (a, b) spanning it, the fixed axis at 0 or its end,
	// wound so that its normal points out.
	for _, s := range []struct{ a, b, fixed, at int }{
		{0, 1, 2, 1}, {1, 0, 2, 0}, {1, 2, 0, 1}, {2, 1, 0, 0}, {2, 0, 1, 1}, {0, 2, 1, 0},
	} {
		for i := range div[s.a] {
			for j := range div[s.b] {
				var q [4]uint32
				for c, d := range [4][2]int{{0, 0}, {1, 0}, {1, 1}, {0, 1}} {
					var p [3]int
					p[s.a], p[s.b], p[s.fixed] = i+d[0], j+d[1], s.at*div[s.fixed]
					q[c] = vertex(p)
				}
				m.Indices = append(m.Indices, q[0], q[1], q[2], q[0], q[2], q[3])
			}
		}
	}
	return m
}

// shellField is a gyroid sheet of the given thickness (in units of the
// gyroid function, ~1 voxel here) cut to a ball: the thin, curved walls on
// which meshoptimizer's simplifier leaves non-manifold edges.
func gyroidShellMesh(t testing.TB, n int) *Mesh {
	t.Helper()
	g := Grid{Values: make([]float32, n*n*n), NX: n, NY: n, NZ: n}
	c := float64(n-1) / 2
	s := 2 * math.Pi / (float64(n) / 3)
	for i := range n {
		for j := range n {
			for k := range n {
				x, y, z := float64(i), float64(j), float64(k)
				gyr := math.Sin(s*x)*math.Cos(s*y) + math.Sin(s*y)*math.Cos(s*z) + math.Sin(s*z)*math.Cos(s*x)
				ball := 0.42*float64(n) - math.Sqrt((x-c)*(x-c)+(y-c)*(y-c)+(z-c)*(z-c))
				g.Values[(i*n+j)*n+k] = float32(min(0.3-math.Abs(gyr), ball))
			}
		}
	}
	m, err := MarchingCubes(context.Background(), g, 0, 1)
	if err != nil {
		t.Fatalf("MarchingCubes: %v", err)
	}
	return m
}

func withMeshes(ms ...*Mesh) *Mesh {
	out := &Mesh{}
	for _, m := range ms {
		base := uint32(out.VertexCount())
		out.Vertices = append(out.Vertices, m.Vertices...)
		for _, v := range m.Indices {
			out.Indices = append(out.Indices, base+v)
		}
	}
	return out
}

// duplicateFaces counts faces over the same vertex set as an earlier one.
func duplicateFaces(m *Mesh) int {
	seen := map[[3]uint32]bool{}
	n := 0
	for f := 0; f < len(m.Indices); f += 3 {
		a, b, c := m.Indices[f], m.Indices[f+1], m.Indices[f+2]
		key := [3]uint32{min(a, b, c), a + b + c - min(a, b, c) - max(a, b, c), max(a, b, c)}
		if seen[key] {
			n++
		}
		seen[key] = true
	}
	return n
}

func TestSimplifyMeetsBudgetAndKeepsClosedShapesClosed(t *testing.T) {
	gyroid := gyroidShellMesh(t, 64)
	tests := []struct {
		name   string
		mesh   *Mesh
		target int
	}{
		{"icosphere", icosphere(5, 1, [3]float64{}), 1000},
		{"torus", torusMesh(120, 60, 1, 0.3), 2000},
		{"thin plate", plate(1, 1, 0.002, 60, 60), 500},
		{"nearly touching spheres", withMeshes(icosphere(4, 0.5, [3]float64{-0.5001, 0, 0}),
			icosphere(4, 0.5, [3]float64{0.5001, 0, 0})), 800},
		{"thin gyroid shell from marching cubes", gyroid, gyroid.TriangleCount() / 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := Analyze(tc.mesh)
			if !before.Watertight() || before.FlippedEdges != 0 {
				t.Fatalf("test mesh is not closed and oriented: %+v", before)
			}
			out, err := Simplify(context.Background(), tc.mesh, tc.target, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			after := Analyze(out)
			if got := out.TriangleCount(); got > tc.target || got < tc.target-2 {
				t.Errorf("%d faces, want %d (or up to 2 fewer)", got, tc.target)
			}
			if !after.Watertight() || after.FlippedEdges != 0 || after.DegenerateFaces != 0 {
				t.Errorf("decimated topology %+v", after)
			}
			if after.Euler() != before.Euler() || after.Components != before.Components {
				t.Errorf("Euler %d, %d components; want %d, %d", after.Euler(), after.Components, before.Euler(), before.Components)
			}
			if d := duplicateFaces(out); d != 0 {
				t.Errorf("%d duplicate faces", d)
			}
			if after.Vertices != out.VertexCount() {
				t.Errorf("%d of %d vertices referenced", after.Vertices, out.VertexCount())
			}
		})
	}
}

func TestSimplifyKeepsTheSurface(t *testing.T) {
	out, err := Simplify(context.Background(), icosphere(5, 1, [3]float64{}), 2000, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Edges of a 2000-face unit sphere are ~0.08 long; the vertices stay on it.
	for v := 0; v < out.VertexCount(); v++ {
		p := out.Vertices[3*v : 3*v+3]
		if r := math.Sqrt(float64(p[0]*p[0] + p[1]*p[1] + p[2]*p[2])); math.Abs(r-1) > 0.01 {
			t.Fatalf("vertex %d at radius %v", v, r)
		}
	}
}

func TestSimplifyLeavesBoundaryVerticesInPlace(t *testing.T) {
	n := 40
	sheet := &Mesh{}
	for i := 0; i <= n; i++ {
		for j := 0; j <= n; j++ {
			x, y := float64(i)/float64(n), float64(j)/float64(n)
			sheet.Vertices = append(sheet.Vertices, float32(x), float32(y), float32(0.05*math.Sin(6*x)*math.Cos(5*y)))
		}
	}
	for i := range n {
		for j := range n {
			a := uint32(i*(n+1) + j)
			sheet.Indices = append(sheet.Indices, a, a+uint32(n+1), a+uint32(n+2), a, a+uint32(n+2), a+1)
		}
	}
	out, err := Simplify(context.Background(), sheet, 600, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out.TriangleCount() >= sheet.TriangleCount() {
		t.Fatalf("no decimation: %d faces", out.TriangleCount())
	}
	before, after := Analyze(sheet), Analyze(out)
	if after.BoundaryEdges != before.BoundaryEdges || after.NonManifoldEdges != 0 || after.FlippedEdges != 0 {
		t.Fatalf("boundary changed: %+v, was %+v", after, before)
	}
	kept := map[[3]float32]bool{}
	for v := 0; v < out.VertexCount(); v++ {
		kept[[3]float32(out.Vertices[3*v:3*v+3])] = true
	}
	for v := 0; v < sheet.VertexCount(); v++ {
		p := [3]float32(sheet.Vertices[3*v : 3*v+3])
		if (p[0] == 0 || p[0] == 1 || p[1] == 0 || p[1] == 1) && !kept[p] {
			t.Fatalf("boundary vertex %v moved or vanished", p)
		}
	}
}

func TestSimplifyUnderBudgetKeepsEveryFace(t *testing.T) {
	in := torusMesh(20, 10, 1, 0.3)
	out, err := Simplify(context.Background(), in, in.TriangleCount(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out.TriangleCount() != in.TriangleCount() || out.VertexCount() != in.VertexCount() {
		t.Fatalf("%d faces, %d vertices; want %d, %d", out.TriangleCount(), out.VertexCount(), in.TriangleCount(), in.VertexCount())
	}
}

func TestSimplifyErrorBoundStopsEarly(t *testing.T) {
	in := icosphere(4, 1, [3]float64{})
	out, err := Simplify(context.Background(), in, 100, 1e-5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out.TriangleCount() < 1000 {
		t.Fatalf("a 1e-5 error bound still allowed %d faces", out.TriangleCount())
	}
}

func TestSimplifyRejectsInvalidInput(t *testing.T) {
	good := icosphere(1, 1, [3]float64{})
	outOfRange := icosphere(1, 1, [3]float64{})
	outOfRange.Indices[4] = uint32(outOfRange.VertexCount())
	notFinite := icosphere(1, 1, [3]float64{})
	notFinite.Vertices[7] = float32(math.Inf(1))
	tests := []struct {
		name     string
		mesh     *Mesh
		target   int
		maxError float32
	}{
		{"index out of range", outOfRange, 10, 0},
		{"infinite coordinate", notFinite, 10, 0},
		{"ragged indices", &Mesh{Vertices: good.Vertices, Indices: good.Indices[:5]}, 10, 0},
		{"negative target", good, -1, 0},
		{"NaN error bound", good, 10, float32(math.NaN())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Simplify(context.Background(), tc.mesh, tc.target, tc.maxError, 0); !errors.Is(err, ErrInvalidMesh) {
				t.Fatalf("err = %v, want ErrInvalidMesh", err)
			}
		})
	}
}

func TestSimplifyStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Simplify(ctx, icosphere(2, 1, [3]float64{}), 10, 0, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestSimplifyEmptyMeshIsEmpty(t *testing.T) {
	out, err := Simplify(context.Background(), &Mesh{}, 10, 0, 0)
	if err != nil || out.TriangleCount() != 0 || out.VertexCount() != 0 {
		t.Fatalf("Simplify(empty) = %+v, %v", out, err)
	}
}

// BenchmarkSimplify decimates marching-cubes meshes of a thin gyroid shell
// to Hunyuan3D's 40,000-face budget (bench/decimate compares with MeshLab).
func BenchmarkSimplify(b *testing.B) {
	for _, n := range []int{128, 192} {
		in := gyroidShellMesh(b, n)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("faces=%d/threads=%d", in.TriangleCount(), threads), func(b *testing.B) {
				for b.Loop() {
					if _, err := Simplify(context.Background(), in, DefaultTargetFaces, 0, threads); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestSimplifyResultDoesNotDependOnThreads(t *testing.T) {
	in := gyroidShellMesh(t, 96) // enough vertices to rank on several threads
	one, err := Simplify(context.Background(), in, 20000, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	four, err := Simplify(context.Background(), in, 20000, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one.Vertices, four.Vertices) || !slices.Equal(one.Indices, four.Indices) {
		t.Fatalf("1 thread: %d faces, 4 threads: %d faces, or the same count in another order", one.TriangleCount(), four.TriangleCount())
	}
}
