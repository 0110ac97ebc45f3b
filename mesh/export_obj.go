package mesh

import (
	"fmt"
	"io"
	"strconv"
)

// WriteOBJ writes m as Wavefront OBJ: "v x y z" and "vn x y z" per vertex
// (the shortest decimal that reads back as the same float32), then
// "f a//a b//b c//c" per triangle with 1-based indices.
func WriteOBJ(w io.Writer, m *Mesh) error {
	const op = "export obj"
	if err := m.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	normals := normalsFor(m)
	bw := newBufferedWriter(w)
	bw.WriteString("# hy3d\n")
	line := make([]byte, 0, 128)
	triple := func(tag string, xyz []float32) {
		line = append(line[:0], tag...)
		for _, x := range xyz {
			line = append(line, ' ')
			line = strconv.AppendFloat(line, float64(x), 'g', -1, 32)
		}
		line = append(line, '\n')
		bw.Write(line)
	}
	for v := 0; v < len(m.Vertices); v += 3 {
		triple("v", m.Vertices[v:v+3])
	}
	for v := 0; v < len(normals); v += 3 {
		triple("vn", normals[v:v+3])
	}
	for f := 0; f < len(m.Indices); f += 3 {
		line = append(line[:0], 'f')
		for _, v := range m.Indices[f : f+3] {
			line = append(line, ' ')
			line = strconv.AppendUint(line, uint64(v)+1, 10)
			line = append(line, '/', '/')
			line = strconv.AppendUint(line, uint64(v)+1, 10)
		}
		line = append(line, '\n')
		bw.Write(line)
	}
	return bw.finish(op)
}
