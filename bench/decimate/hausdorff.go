package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/hy3d/hy3d/mesh"
)

type vec [3]float64

func sub(a, b vec) vec           { return vec{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func add(a, b vec) vec           { return vec{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func scale(a vec, s float64) vec { return vec{a[0] * s, a[1] * s, a[2] * s} }
func dot(a, b vec) float64       { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func cross(a, b vec) vec {
	return vec{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func vertex(m *mesh.Mesh, v uint32) vec {
	return vec{float64(m.Vertices[3*v]), float64(m.Vertices[3*v+1]), float64(m.Vertices[3*v+2])}
}

func corners(m *mesh.Mesh, f int) (vec, vec, vec) {
	return vertex(m, m.Indices[3*f]), vertex(m, m.Indices[3*f+1]), vertex(m, m.Indices[3*f+2])
}

// samples are every vertex of m plus n points spread uniformly by area over
// its triangles (fixed seed, so runs compare).
func samples(m *mesh.Mesh, n int) []vec {
	out := make([]vec, 0, m.VertexCount()+n)
	for v := 0; v < m.VertexCount(); v++ {
		out = append(out, vertex(m, uint32(v)))
	}
	cum := make([]float64, m.TriangleCount())
	total := 0.0
	for f := range cum {
		a, b, c := corners(m, f)
		total += math.Sqrt(dot(cross(sub(b, a), sub(c, a)), cross(sub(b, a), sub(c, a))))
		cum[f] = total
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		x := rng.Float64() * total
		lo, hi := 0, len(cum)-1
		for lo < hi {
			mid := (lo + hi) / 2
			if cum[mid] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		a, b, c := corners(m, lo)
		u, w := rng.Float64(), rng.Float64()
		if u+w > 1 {
			u, w = 1-u, 1-w
		}
		out = append(out, add(a, add(scale(sub(b, a), u), scale(sub(c, a), w))))
	}
	return out
}

// triangleGrid bins a mesh's triangles into uniform cells by bounding box,
// for nearest-triangle queries.
type triangleGrid struct {
	m      *mesh.Mesh
	lo     vec
	cell   float64
	dims   [3]int
	starts []int32 // CSR over cells
	tris   []int32
}

func newTriangleGrid(m *mesh.Mesh) *triangleGrid {
	lo, hi := vec{math.Inf(1), math.Inf(1), math.Inf(1)}, vec{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for v := 0; v < m.VertexCount(); v++ {
		p := vertex(m, uint32(v))
		for i := range 3 {
			lo[i], hi[i] = min(lo[i], p[i]), max(hi[i], p[i])
		}
	}
	// About two triangles per cell on a surface: cells of a few mean edges.
	ext := sub(hi, lo)
	area := 2 * (ext[0]*ext[1] + ext[1]*ext[2] + ext[2]*ext[0])
	cell := math.Max(math.Sqrt(area/float64(max(m.TriangleCount(), 1))), 1e-9*math.Sqrt(dot(ext, ext))+1e-30)
	g := &triangleGrid{m: m, lo: lo, cell: cell}
	for i := range 3 {
		g.dims[i] = max(1, int(ext[i]/cell)+1)
	}
	cellRange := func(f int) (a, b [3]int) {
		p, q, r := corners(m, f)
		for i := range 3 {
			a[i] = g.clamp(i, int((min(p[i], q[i], r[i])-lo[i])/cell))
			b[i] = g.clamp(i, int((max(p[i], q[i], r[i])-lo[i])/cell))
		}
		return a, b
	}
	count := make([]int32, g.dims[0]*g.dims[1]*g.dims[2]+1)
	each := func(f int, fn func(c int)) {
		a, b := cellRange(f)
		for x := a[0]; x <= b[0]; x++ {
			for y := a[1]; y <= b[1]; y++ {
				for z := a[2]; z <= b[2]; z++ {
					fn(g.index(x, y, z))
				}
			}
		}
	}
	for f := 0; f < m.TriangleCount(); f++ {
		each(f, func(c int) { count[c+1]++ })
	}
	for c := 1; c < len(count); c++ {
		count[c] += count[c-1]
	}
	g.starts = count
	g.tris = make([]int32, count[len(count)-1])
	fill := append([]int32(nil), count...)
	for f := 0; f < m.TriangleCount(); f++ {
		each(f, func(c int) { g.tris[fill[c]] = int32(f); fill[c]++ })
	}
	return g
}

func (g *triangleGrid) clamp(axis, i int) int { return min(max(i, 0), g.dims[axis]-1) }
func (g *triangleGrid) index(x, y, z int) int { return (x*g.dims[1]+y)*g.dims[2] + z }

// distance from p to the nearest triangle: cells are searched in growing
// cubic shells until the nearest found is closer than any unsearched cell.
func (g *triangleGrid) distance(p vec) float64 {
	var c [3]int
	for i := range 3 {
		c[i] = g.clamp(i, int(math.Floor((p[i]-g.lo[i])/g.cell)))
	}
	best := math.Inf(1)
	maxShell := max(g.dims[0], g.dims[1], g.dims[2])
	for r := 0; r <= maxShell; r++ {
		// Every cell outside the first r shells is at least (r−1)·cell from
		// p (even when p lies outside the grid and c was clamped).
		if r >= 2 && float64(r-1)*g.cell > best {
			break
		}
		for x := c[0] - r; x <= c[0]+r; x++ {
			if x < 0 || x >= g.dims[0] {
				continue
			}
			for y := c[1] - r; y <= c[1]+r; y++ {
				if y < 0 || y >= g.dims[1] {
					continue
				}
				for z := c[2] - r; z <= c[2]+r; z++ {
					if z < 0 || z >= g.dims[2] {
						continue
					}
					if max(abs(x-c[0]), abs(y-c[1]), abs(z-c[2])) != r {
						continue // inside the shell: already searched
					}
					cell := g.index(x, y, z)
					for _, f := range g.tris[g.starts[cell]:g.starts[cell+1]] {
						a, b, cc := corners(g.m, int(f))
						best = min(best, pointTriangle(p, a, b, cc))
					}
				}
			}
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// pointTriangle is the distance from p to triangle abc (Ericson, Real-Time
// Collision Detection, 5.1.5: closest point by Voronoi region). Zero-area
// triangles take the nearest of their edges instead: Ericson's divisions are
// 0/0 on a zero-length edge, and marching cubes emits such triangles wherever
// the field is exactly 0 at a grid point (corners of a triangle land on it),
// which the benchmark's open-surface field does along the grid's box.
func pointTriangle(p, a, b, c vec) float64 {
	ab, ac, ap := sub(b, a), sub(c, a), sub(p, a)
	if n := cross(ab, ac); dot(n, n) == 0 {
		return min(pointSegment(p, a, b), pointSegment(p, b, c), pointSegment(p, c, a))
	}
	d1, d2 := dot(ab, ap), dot(ac, ap)
	if d1 <= 0 && d2 <= 0 {
		return dist(p, a)
	}
	bp := sub(p, b)
	d3, d4 := dot(ab, bp), dot(ac, bp)
	if d3 >= 0 && d4 <= d3 {
		return dist(p, b)
	}
	vc := d1*d4 - d3*d2
	if vc <= 0 && d1 >= 0 && d3 <= 0 {
		return dist(p, add(a, scale(ab, d1/(d1-d3))))
	}
	cp := sub(p, c)
	d5, d6 := dot(ab, cp), dot(ac, cp)
	if d6 >= 0 && d5 <= d6 {
		return dist(p, c)
	}
	vb := d5*d2 - d1*d6
	if vb <= 0 && d2 >= 0 && d6 <= 0 {
		return dist(p, add(a, scale(ac, d2/(d2-d6))))
	}
	va := d3*d6 - d5*d4
	if va <= 0 && d4-d3 >= 0 && d5-d6 >= 0 {
		return dist(p, add(b, scale(sub(c, b), (d4-d3)/((d4-d3)+(d5-d6)))))
	}
	denom := va + vb + vc
	v, w := vb/denom, vc/denom
	return dist(p, add(a, add(scale(ab, v), scale(ac, w))))
}

// pointSegment is the distance from p to segment ab (a point when a == b).
func pointSegment(p, a, b vec) float64 {
	ab := sub(b, a)
	length2 := dot(ab, ab)
	if length2 == 0 {
		return dist(p, a)
	}
	t := min(max(dot(sub(p, a), ab)/length2, 0), 1)
	return dist(p, add(a, scale(ab, t)))
}

func dist(a, b vec) float64 { d := sub(a, b); return math.Sqrt(dot(d, d)) }

// oneSided is the largest and the mean distance from the samples of `from`
// to the surface of `to`.
func oneSided(from, to *mesh.Mesh, n int) (maxDist, meanDist float64) {
	pts := samples(from, n)
	g := newTriangleGrid(to)
	workers := runtime.GOMAXPROCS(0)
	maxes, sums := make([]float64, workers), make([]float64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(pts); i += workers {
				d := g.distance(pts[i])
				maxes[w] = max(maxes[w], d)
				sums[w] += d
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		maxDist = max(maxDist, maxes[w])
		meanDist += sums[w]
	}
	return maxDist, meanDist / float64(len(pts))
}

// hausdorff is the symmetric Hausdorff distance between a and b (the
// larger of the two one-sided ones) and the mean of both directions' mean
// distances, each estimated from the vertices plus n area samples.
func hausdorff(a, b *mesh.Mesh, n int) (maxDist, meanDist float64) {
	ab, abMean := oneSided(a, b, n)
	ba, baMean := oneSided(b, a, n)
	return max(ab, ba), (abMean + baMean) / 2
}
