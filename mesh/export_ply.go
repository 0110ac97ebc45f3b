package mesh

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// WritePLY writes m as binary little-endian PLY: vertices with float x, y,
// z, nx, ny, nz, then faces as "list uchar int vertex_indices" — the
// element layout MeshLab, Blender and trimesh all read.
func WritePLY(w io.Writer, m *Mesh) error {
	const op = "export ply"
	if err := m.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if m.VertexCount() > math.MaxInt32 {
		return fmt.Errorf("%s: %w: %d vertices do not fit PLY's int indices", op, ErrInvalidMesh, m.VertexCount())
	}
	normals := normalsFor(m)
	bw := newBufferedWriter(w)
	fmt.Fprintf(bw, "ply\nformat binary_little_endian 1.0\ncomment hy3d\n"+
		"element vertex %d\nproperty float x\nproperty float y\nproperty float z\n"+
		"property float nx\nproperty float ny\nproperty float nz\n"+
		"element face %d\nproperty list uchar int vertex_indices\nend_header\n",
		m.VertexCount(), m.TriangleCount())
	var vert [24]byte
	for v := 0; v < len(m.Vertices); v += 3 {
		for i := 0; i < 3; i++ {
			binary.LittleEndian.PutUint32(vert[4*i:], math.Float32bits(m.Vertices[v+i]))
			binary.LittleEndian.PutUint32(vert[12+4*i:], math.Float32bits(normals[v+i]))
		}
		bw.Write(vert[:])
	}
	var face [13]byte
	face[0] = 3
	for f := 0; f < len(m.Indices); f += 3 {
		for k := 0; k < 3; k++ {
			binary.LittleEndian.PutUint32(face[1+4*k:], m.Indices[f+k])
		}
		bw.Write(face[:])
	}
	return bw.finish(op)
}
