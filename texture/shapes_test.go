package texture

import (
	"math"

	"github.com/hy3d/hy3d/mesh"
)

// torus is a closed genus-1 mesh, counter-clockwise seen from outside,
// with seg×ring quads around a circle of radius big in the XY plane.
func torus(seg, ring int, big, small float64) *mesh.Mesh {
	m := &mesh.Mesh{}
	for i := 0; i < seg; i++ {
		a := 2 * math.Pi * float64(i) / float64(seg)
		for j := 0; j < ring; j++ {
			b := 2 * math.Pi * float64(j) / float64(ring)
			r := big + small*math.Cos(b)
			m.Vertices = append(m.Vertices, float32(r*math.Cos(a)), float32(r*math.Sin(a)), float32(small*math.Sin(b)))
		}
	}
	at := func(i, j int) uint32 { return uint32((i%seg)*ring + j%ring) }
	for i := 0; i < seg; i++ {
		for j := 0; j < ring; j++ {
			a, b, c, d := at(i, j), at(i+1, j), at(i+1, j+1), at(i, j+1)
			m.Indices = append(m.Indices, a, b, c, a, c, d)
		}
	}
	return m
}

// field is the oracle's smooth colour as a function of position in the
// normalized frame, inside [0.1, 0.9] per channel.
func field(p [3]float32) [3]float32 {
	x, y, z := float64(p[0]), float64(p[1]), float64(p[2])
	return [3]float32{
		float32(0.5 + 0.4*math.Sin(3*x+1)*math.Cos(2*y)),
		float32(0.5 + 0.4*math.Cos(2.5*y-0.5*z)),
		float32(0.5 + 0.4*math.Sin(2*z+1.5*x)),
	}
}

// helicoid is a ramp winding turns times around the Z axis, rising pitch
// per turn: every normal is near +Z, yet a projection along Z overlaps
// itself after one turn.
func helicoid(turns float64, steps, width int, pitch float64) *mesh.Mesh {
	m := &mesh.Mesh{}
	for i := 0; i <= steps; i++ {
		a := 2 * math.Pi * turns * float64(i) / float64(steps)
		for j := 0; j <= width; j++ {
			r := 0.5 + 0.5*float64(j)/float64(width)
			m.Vertices = append(m.Vertices, float32(r*math.Cos(a)), float32(r*math.Sin(a)), float32(pitch*a/(2*math.Pi)))
		}
	}
	at := func(i, j int) uint32 { return uint32(i*(width+1) + j) }
	for i := 0; i < steps; i++ {
		for j := 0; j < width; j++ {
			m.Indices = append(m.Indices, at(i, j), at(i+1, j), at(i+1, j+1), at(i, j), at(i+1, j+1), at(i, j+1))
		}
	}
	return m
}

// nonManifold is three triangles on one edge, a degenerate triangle and
// a sliver, plus an unreferenced vertex.
func nonManifold() *mesh.Mesh {
	return &mesh.Mesh{
		Vertices: []float32{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 1, 2, 2, 2, 0.5, 0, 0, 9, 9, 9},
		Indices:  []uint32{0, 1, 2, 1, 0, 3, 0, 1, 4, 0, 1, 6, 5, 5, 5},
	}
}
