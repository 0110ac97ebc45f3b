package mesh

import "math"

// VertexNormals returns smooth unit normals, three floats per vertex: the
// sum of the normals of the faces around each vertex, each weighted by its
// face's area (the unnormalized cross product carries exactly that weight).
// A vertex with no area around it (unreferenced, or only on degenerate
// faces) gets +Z, so every normal is unit length as glTF requires.
func VertexNormals(m *Mesh) []float32 {
	sum := make([]float64, len(m.Vertices))
	for f := 0; f+2 < len(m.Indices); f += 3 {
		a, b, c := m.Indices[f], m.Indices[f+1], m.Indices[f+2]
		n := faceCross(m.Vertices, a, b, c)
		for _, v := range [3]uint32{a, b, c} {
			sum[3*v] += n[0]
			sum[3*v+1] += n[1]
			sum[3*v+2] += n[2]
		}
	}
	out := make([]float32, len(m.Vertices))
	for v := 0; v < len(out); v += 3 {
		n := unit([3]float64{sum[v], sum[v+1], sum[v+2]})
		out[v], out[v+1], out[v+2] = float32(n[0]), float32(n[1]), float32(n[2])
	}
	return out
}

// FaceNormal is the unit normal of triangle f (right-hand rule over its
// winding), or +Z for a degenerate triangle.
func FaceNormal(m *Mesh, f int) [3]float32 {
	n := unit(faceCross(m.Vertices, m.Indices[3*f], m.Indices[3*f+1], m.Indices[3*f+2]))
	return [3]float32{float32(n[0]), float32(n[1]), float32(n[2])}
}

// faceCross is (b−a)×(c−a) in float64: twice the area, along the normal.
func faceCross(vertices []float32, a, b, c uint32) [3]float64 {
	ax, ay, az := float64(vertices[3*a]), float64(vertices[3*a+1]), float64(vertices[3*a+2])
	ux, uy, uz := float64(vertices[3*b])-ax, float64(vertices[3*b+1])-ay, float64(vertices[3*b+2])-az
	vx, vy, vz := float64(vertices[3*c])-ax, float64(vertices[3*c+1])-ay, float64(vertices[3*c+2])-az
	return [3]float64{uy*vz - uz*vy, uz*vx - ux*vz, ux*vy - uy*vx}
}

func unit(n [3]float64) [3]float64 {
	l := math.Sqrt(n[0]*n[0] + n[1]*n[1] + n[2]*n[2])
	if l == 0 || math.IsNaN(l) || math.IsInf(l, 0) {
		return [3]float64{0, 0, 1}
	}
	return [3]float64{n[0] / l, n[1] / l, n[2] / l}
}

// normalsFor returns m.Normals when they fit m, else computes them.
func normalsFor(m *Mesh) []float32 {
	if len(m.Normals) == len(m.Vertices) {
		return m.Normals
	}
	return VertexNormals(m)
}
