package mesh

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

// field is a scalar function of grid coordinates, positive inside.
type field func(x, y, z float64) float64

func sampleGrid(nx, ny, nz int, f field) Grid {
	g := Grid{Values: make([]float32, nx*ny*nz), NX: nx, NY: ny, NZ: nz}
	for i := 0; i < nx; i++ {
		for j := 0; j < ny; j++ {
			for k := 0; k < nz; k++ {
				g.Values[(i*ny+j)*nz+k] = float32(f(float64(i), float64(j), float64(k)))
			}
		}
	}
	return g
}

// sphere and torus are signed distances in voxels.
func sphere(cx, cy, cz, r float64) field {
	return func(x, y, z float64) float64 { return r - math.Sqrt((x-cx)*(x-cx)+(y-cy)*(y-cy)+(z-cz)*(z-cz)) }
}

func torus(cx, cy, cz, major, minor float64) field {
	return func(x, y, z float64) float64 {
		return minor - math.Hypot(math.Hypot(x-cx, y-cy)-major, z-cz)
	}
}

func union(a, b field) field {
	return func(x, y, z float64) float64 { return max(a(x, y, z), b(x, y, z)) }
}

// gyroidShell is a thin gyroid sheet cut to a ball, so that it is closed.
func gyroidShell(c, r, period, thickness float64) field {
	s := 2 * math.Pi / period
	ball := sphere(c, c, c, r)
	return func(x, y, z float64) float64 {
		g := math.Sin(s*x)*math.Cos(s*y) + math.Sin(s*y)*math.Cos(s*z) + math.Sin(s*z)*math.Cos(s*x)
		return min(thickness-math.Abs(g), ball(x, y, z))
	}
}

func extractOrFail(t testing.TB, g Grid, threads int) *Mesh {
	t.Helper()
	m, err := MarchingCubes(context.Background(), g, 0, threads)
	if err != nil {
		t.Fatalf("MarchingCubes: %v", err)
	}
	return m
}

func checkWatertight(t *testing.T, m *Mesh) Topology {
	t.Helper()
	top := Analyze(m)
	if top.Faces == 0 || top.BoundaryEdges != 0 || top.NonManifoldEdges != 0 || top.FlippedEdges != 0 || top.DegenerateFaces != 0 {
		t.Fatalf("mesh is not a clean closed surface: %+v", top)
	}
	if top.Vertices != m.VertexCount() {
		t.Errorf("%d of %d vertices are used by no triangle", m.VertexCount()-top.Vertices, m.VertexCount())
	}
	for _, v := range m.Vertices {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("non-finite vertex coordinate %v", v)
		}
	}
	return top
}

func maxSurfaceError(m *Mesh, f field) float64 {
	worst := 0.0
	for v := 0; v < m.VertexCount(); v++ {
		p := m.Vertices[3*v : 3*v+3]
		worst = max(worst, math.Abs(f(float64(p[0]), float64(p[1]), float64(p[2]))))
	}
	return worst
}

func TestMarchingCubesClosedSurfacesHaveExpectedTopology(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		f          field
		euler      int
		components int
		// Distance fields whose vertices must lie within 0.05 voxel of the
		// surface; unions have a crease where interpolation is coarser.
		distance bool
	}{
		{name: "sphere", n: 40, f: sphere(19.3, 20.2, 18.9, 12.5), euler: 2, components: 1, distance: true},
		{name: "torus", n: 40, f: torus(19.6, 20.3, 19.8, 11, 4.5), euler: 0, components: 1, distance: true},
		{name: "overlapping spheres", n: 44, f: union(sphere(14.2, 20.1, 20.3, 9), sphere(30.2, 20.1, 20.3, 9)), euler: 2, components: 1},
		{name: "separate spheres", n: 44, f: union(sphere(12.2, 20.1, 20.3, 8), sphere(30.2, 20.1, 20.3, 8)), euler: 4, components: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := extractOrFail(t, sampleGrid(tc.n, tc.n, tc.n, tc.f), 2)
			top := checkWatertight(t, m)
			if top.Euler() != tc.euler || top.Components != tc.components {
				t.Errorf("Euler %d with %d components, want %d with %d", top.Euler(), top.Components, tc.euler, tc.components)
			}
			if tc.distance {
				if e := maxSurfaceError(m, tc.f); e > 0.05 {
					t.Errorf("a vertex lies %.3f voxels off the surface", e)
				}
			}
		})
	}
}

// Ambiguous configurations may resolve either way, but always into closed
// genus-0 pieces here.
func TestMarchingCubesAmbiguousFieldsStayClosed(t *testing.T) {
	checker := sampleGrid(9, 8, 10, func(x, y, z float64) float64 {
		if x == 0 || y == 0 || z == 0 || x == 8 || y == 7 || z == 9 {
			return -1
		}
		if int(x+y+z)%2 == 1 {
			return 1 + 0.01*z
		}
		return -1 - 0.01*z
	})
	tests := []struct {
		name string
		g    Grid
	}{
		{name: "spheres touching at a cell centre", g: sampleGrid(42, 42, 42, union(sphere(11.5, 20.5, 20.5, 9), sphere(29.5, 20.5, 20.5, 9)))},
		{name: "spheres touching at a sample", g: sampleGrid(42, 42, 42, union(sphere(11, 20, 20, 9), sphere(29, 20, 20, 9)))},
		{name: "saddle through face centres", g: sampleGrid(34, 34, 34, func(x, y, z float64) float64 {
			return min((x-16.5)*(y-16.5), sphere(16.5, 16.5, 16.5, 12.2)(x, y, z))
		})},
		{name: "checkerboard", g: checker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top := checkWatertight(t, extractOrFail(t, tc.g, 2))
			if top.Euler() != 2*top.Components {
				t.Errorf("Euler %d with %d components: not all pieces are spheres", top.Euler(), top.Components)
			}
		})
	}
}

func TestMarchingCubesThinGyroidShellIsWatertight(t *testing.T) {
	top := checkWatertight(t, extractOrFail(t, sampleGrid(48, 48, 48, gyroidShell(23.5, 20.3, 13, 0.35)), 2))
	if top.Euler()%2 != 0 {
		t.Errorf("odd Euler characteristic %d on closed surfaces", top.Euler())
	}
}

// NaN samples are outside: a NaN slab through a sphere leaves two closed
// caps, with vertices half way into the slab's first cells.
func TestMarchingCubesTreatsNaNAsOutside(t *testing.T) {
	g := sampleGrid(40, 40, 40, sphere(19.3, 20.2, 18.9, 12.5))
	for i := 18; i <= 21; i++ {
		for s := i * 40 * 40; s < (i+1)*40*40; s++ {
			g.Values[s] = float32(math.NaN())
		}
	}
	m := extractOrFail(t, g, 2)
	top := checkWatertight(t, m)
	if top.Components != 2 || top.Euler() != 4 {
		t.Errorf("got %d components with Euler %d, want two caps (2, 4)", top.Components, top.Euler())
	}
	for v := 0; v < m.VertexCount(); v++ {
		if x := m.Vertices[3*v]; x > 17.5 && x < 21.5 {
			t.Fatalf("vertex at i=%v inside the NaN slab", x)
		}
	}
}

func TestMarchingCubesWindsTrianglesOutward(t *testing.T) {
	c := [3]float64{19.3, 20.2, 18.9}
	m := extractOrFail(t, sampleGrid(40, 40, 40, sphere(c[0], c[1], c[2], 12.5)), 2)
	for f := 0; f < m.TriangleCount(); f++ {
		var p [3][3]float64
		for corner := 0; corner < 3; corner++ {
			for a := 0; a < 3; a++ {
				p[corner][a] = float64(m.Vertices[3*m.Indices[3*f+corner]+uint32(a)])
			}
		}
		u := [3]float64{p[1][0] - p[0][0], p[1][1] - p[0][1], p[1][2] - p[0][2]}
		w := [3]float64{p[2][0] - p[0][0], p[2][1] - p[0][1], p[2][2] - p[0][2]}
		n := [3]float64{u[1]*w[2] - u[2]*w[1], u[2]*w[0] - u[0]*w[2], u[0]*w[1] - u[1]*w[0]}
		out := 0.0
		for a := 0; a < 3; a++ {
			out += n[a] * ((p[0][a]+p[1][a]+p[2][a])/3 - c[a])
		}
		if out <= 0 {
			t.Fatalf("triangle %d faces inward", f)
		}
	}
}

// Every corner configuration of one cube, in outside padding.
func TestMarchingCubesEveryCubeConfigurationIsWatertight(t *testing.T) {
	for config := 1; config < 256; config++ {
		g := sampleGrid(4, 4, 4, func(x, y, z float64) float64 { return -1 })
		for c := 0; c < 8; c++ {
			i, j, k := 1+c&1, 1+c>>1&1, 1+c>>2&1
			v := -0.2 - 0.07*float32(c)
			if config>>c&1 == 1 {
				v = 0.3 + 0.11*float32(c)
			}
			g.Values[(i*4+j)*4+k] = v
		}
		m, err := MarchingCubes(context.Background(), g, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if top := Analyze(m); top.Faces == 0 || !top.Watertight() || top.FlippedEdges != 0 || top.Euler() != 2*top.Components {
			t.Fatalf("configuration %#02x: %+v", config, top)
		}
	}
}

func TestMarchingCubesOutputIndependentOfThreadCount(t *testing.T) {
	g := sampleGrid(37, 41, 70, torus(18.2, 20.1, 35.3, 11, 5))
	want := extractOrFail(t, g, 1)
	for _, threads := range []int{2, 3, 0, -1, 1 << 40} {
		got := extractOrFail(t, g, threads)
		if !slices.Equal(got.Vertices, want.Vertices) || !slices.Equal(got.Indices, want.Indices) {
			t.Errorf("threads=%d changed the output", threads)
		}
	}
}

// surfaceBlocks lists the blocks that hold a cell with corners on both sides
// of level 0, and a grid copy with NaN at every sample no such block reads.
func surfaceBlocks(g Grid, blockSize int) ([][3]int32, Grid) {
	at := func(i, j, k int) float32 { return g.Values[(i*g.NY+j)*g.NZ+k] }
	seen := map[[3]int32]bool{}
	var blocks [][3]int32
	for i := 0; i+1 < g.NX; i++ {
		for j := 0; j+1 < g.NY; j++ {
			for k := 0; k+1 < g.NZ; k++ {
				in := 0
				for c := 0; c < 8; c++ {
					if at(i+c&1, j+c>>1&1, k+c>>2&1) > 0 {
						in++
					}
				}
				b := [3]int32{int32(i / blockSize), int32(j / blockSize), int32(k / blockSize)}
				if in != 0 && in != 8 && !seen[b] {
					seen[b] = true
					blocks = append(blocks, b)
				}
			}
		}
	}
	poisoned := Grid{Values: make([]float32, len(g.Values)), NX: g.NX, NY: g.NY, NZ: g.NZ}
	for s := range poisoned.Values {
		poisoned.Values[s] = float32(math.NaN())
	}
	for _, b := range blocks {
		for i := int(b[0]) * blockSize; i <= min(g.NX-1, int(b[0]+1)*blockSize); i++ {
			for j := int(b[1]) * blockSize; j <= min(g.NY-1, int(b[1]+1)*blockSize); j++ {
				for k := int(b[2]) * blockSize; k <= min(g.NZ-1, int(b[2]+1)*blockSize); k++ {
					s := (i*g.NY+j)*g.NZ + k
					poisoned.Values[s] = g.Values[s]
				}
			}
		}
	}
	return blocks, poisoned
}

func TestMarchingCubesBlocksCoveringSurfaceEqualDense(t *testing.T) {
	g := sampleGrid(41, 43, 45, torus(20.3, 21.1, 22.4, 11, 4.6))
	dense := extractOrFail(t, g, 2)
	for _, blockSize := range []int{1, 5, 8, 64} {
		blocks, poisoned := surfaceBlocks(g, blockSize)
		got, err := MarchingCubesBlocks(context.Background(), poisoned, 0, blockSize, blocks, 2)
		if err != nil {
			t.Fatalf("block size %d: %v", blockSize, err)
		}
		if !slices.Equal(got.Vertices, dense.Vertices) || !slices.Equal(got.Indices, dense.Indices) {
			t.Errorf("block size %d: %d triangles, dense has %d", blockSize, got.TriangleCount(), dense.TriangleCount())
		}
	}
	top := Analyze(dense)
	if !top.Watertight() || top.Euler() != 0 {
		t.Errorf("torus topology %+v", top)
	}
}

func TestMarchingCubesRejectsInvalidInput(t *testing.T) {
	good := sampleGrid(9, 9, 9, sphere(4, 4, 4, 3))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		g         Grid
		level     float32
		blockSize int
		blocks    [][3]int32
		want      error
	}{
		{name: "canceled context", ctx: canceled, g: good, want: context.Canceled},
		{name: "zero dimension", g: Grid{NX: 0, NY: 9, NZ: 9}, want: ErrInvalidGrid},
		{name: "too few values", g: Grid{Values: good.Values[1:], NX: 9, NY: 9, NZ: 9}, want: ErrInvalidGrid},
		{name: "dimensions overflowing", g: Grid{Values: good.Values, NX: 1 << 30, NY: 1 << 30, NZ: 1 << 30}, want: ErrInvalidGrid},
		{name: "NaN level", g: good, level: float32(math.NaN()), want: ErrInvalidGrid},
		{name: "infinite level", g: good, level: float32(math.Inf(-1)), want: ErrInvalidGrid},
		{name: "zero block size", g: good, blockSize: 0, blocks: [][3]int32{{0, 0, 0}}, want: ErrInvalidGrid},
		{name: "block past the last cell", g: good, blockSize: 4, blocks: [][3]int32{{0, 2, 0}}, want: ErrInvalidGrid},
		{name: "negative block", g: good, blockSize: 4, blocks: [][3]int32{{-1, 0, 0}}, want: ErrInvalidGrid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var err error
			if tc.blocks != nil {
				_, err = MarchingCubesBlocks(ctx, tc.g, tc.level, tc.blockSize, tc.blocks, 1)
			} else {
				_, err = MarchingCubes(ctx, tc.g, tc.level, 1)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarchingCubesBlocksWithoutBlocksIsEmpty(t *testing.T) {
	m, err := MarchingCubesBlocks(context.Background(), sampleGrid(9, 9, 9, sphere(4, 4, 4, 3)), 0, 4, nil, 1)
	if err != nil || m.TriangleCount() != 0 || m.VertexCount() != 0 {
		t.Fatalf("got %v, %v; want an empty mesh", m, err)
	}
}

// Arbitrary values inside a border of outside samples always give a clean
// closed surface.
func FuzzMarchingCubesIsWatertight(f *testing.F) {
	f.Add([]byte{0xff, 0x00, 0x81, 0x7e, 0x69, 0x96, 0x33, 0xcc})
	f.Add([]byte("checkerboard and saddles"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const n = 6
		g := sampleGrid(n, n, n, func(x, y, z float64) float64 { return -1 })
		for s, b := range data {
			i, j, k := 1+s/16%4, 1+s/4%4, 1+s%4
			if s >= 64 {
				break
			}
			v := float32(int(b)-128) / 64
			if b == 0 {
				v = float32(math.NaN())
			}
			g.Values[(i*n+j)*n+k] = v
		}
		m, err := MarchingCubes(context.Background(), g, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		if top := Analyze(m); !top.Watertight() || top.FlippedEdges != 0 || top.DegenerateFaces != 0 {
			t.Fatalf("%+v", top)
		}
		for _, v := range m.Vertices {
			if math.IsNaN(float64(v)) {
				t.Fatal("NaN vertex")
			}
		}
	})
}

// benchmarkField mixes the shapes the bench/marching_cubes comparison uses: a
// torus, two spheres and a thin gyroid shell, in a grid of n samples per axis.
func benchmarkField(n int) Grid {
	h := 2 / float64(n-1)
	sc := func(f field) field { // distances in [-1, 1] units, as voxels
		return func(x, y, z float64) float64 { return f(x*h-1, y*h-1, z*h-1) / h }
	}
	shapes := union(union(torus(0, 0, -0.35, 0.5, 0.14), sphere(-0.55, 0.5, 0.45, 0.28)),
		union(sphere(0.6, -0.5, 0.5, 0.22), func(x, y, z float64) float64 {
			return gyroidShell(0, 0.55, 0.25, 0.2)(x, y+0.1, z-0.3)
		}))
	return sampleGrid(n, n, n, sc(shapes))
}

func BenchmarkMarchingCubes(b *testing.B) {
	for _, n := range []int{128, 256} {
		g := benchmarkField(n)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("n=%d/threads=%d", n, threads), func(b *testing.B) {
				b.SetBytes(int64(4 * len(g.Values)))
				var faces int
				for b.Loop() {
					m, err := MarchingCubes(context.Background(), g, 0, threads)
					if err != nil {
						b.Fatal(err)
					}
					faces = m.TriangleCount()
				}
				b.ReportMetric(float64(faces), "faces")
			})
		}
	}
}
