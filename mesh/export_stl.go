package mesh

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// stlHeader fills STL's 80-byte header. It must not start with "solid",
// which readers take as the mark of an ASCII file.
const stlHeader = "hy3d binary STL"

// WriteSTL writes m as binary STL: an 80-byte header, the triangle count,
// then per triangle its unit normal (from its winding; zero when
// degenerate, as the format allows), its three corners and a zero
// attribute word, all little-endian.
func WriteSTL(w io.Writer, m *Mesh) error {
	const op = "export stl"
	if err := m.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if m.TriangleCount() > math.MaxUint32 {
		return fmt.Errorf("%s: %w: %d triangles do not fit STL's count", op, ErrInvalidMesh, m.TriangleCount())
	}
	bw := newBufferedWriter(w)
	var header [84]byte
	copy(header[:], stlHeader)
	binary.LittleEndian.PutUint32(header[80:], uint32(m.TriangleCount()))
	bw.Write(header[:])
	var rec [50]byte
	for f := 0; f < m.TriangleCount(); f++ {
		var n [3]float32
		if c := faceCross(m.Vertices, m.Indices[3*f], m.Indices[3*f+1], m.Indices[3*f+2]); c != [3]float64{} {
			u := unit(c)
			n = [3]float32{float32(u[0]), float32(u[1]), float32(u[2])}
		}
		for i, x := range n {
			binary.LittleEndian.PutUint32(rec[4*i:], math.Float32bits(x))
		}
		for k := 0; k < 3; k++ {
			v := m.Indices[3*f+k]
			for i := 0; i < 3; i++ {
				binary.LittleEndian.PutUint32(rec[12+12*k+4*i:], math.Float32bits(m.Vertices[3*v+uint32(i)]))
			}
		}
		bw.Write(rec[:])
	}
	return bw.finish(op)
}
