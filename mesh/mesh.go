// Package mesh owns triangle-mesh geometry: extraction from a scalar field
// (marching cubes in the native shim), topology checks (watertight,
// manifold, Euler characteristic), cleanup and decimation, normals, and the
// exporters (GLB, OBJ, PLY, STL). It is one of the packages that contain
// cgo (with trt and texture); everything above it sees plain Go slices.
package mesh

// Mesh is an indexed triangle mesh. Triangles are counter-clockwise seen
// from outside (right-hand normals point outward).
type Mesh struct {
	Vertices []float32 // xyz per vertex
	Indices  []uint32  // three vertex indices per triangle
	Normals  []float32 // xyz per vertex, or nil
}

// VertexCount is the number of vertices.
func (m *Mesh) VertexCount() int { return len(m.Vertices) / 3 }

// TriangleCount is the number of triangles.
func (m *Mesh) TriangleCount() int { return len(m.Indices) / 3 }

// Validate checks what every consumer of a mesh relies on (whole triples,
// indices in range, finite coordinates, normals absent or one per vertex);
// its errors wrap ErrInvalidMesh.
func (m *Mesh) Validate() error { return m.validate() }
