package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// glbOf packs a JSON document and a BIN chunk into a GLB.
func glbOf(json string, bin []byte) []byte {
	for len(json)%4 != 0 {
		json += " "
	}
	for len(bin)%4 != 0 {
		bin = append(bin, 0)
	}
	var b bytes.Buffer
	le := func(v uint32) { binary.Write(&b, binary.LittleEndian, v) }
	le(glbMagic)
	le(2)
	le(uint32(12 + 8 + len(json) + 8 + len(bin)))
	le(uint32(len(json)))
	le(glbChunkJSON)
	b.WriteString(json)
	le(uint32(len(bin)))
	le(glbChunkBIN)
	b.Write(bin)
	return b.Bytes()
}

// A triangle with 16-bit indices in a strided view, for the table below.
func triangleBin() []byte {
	var b bytes.Buffer
	for _, v := range []float32{0, 0, 0, 1, 0, 0, 0, 1, 0} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	for _, i := range []uint16{0, 1, 2} {
		binary.Write(&b, binary.LittleEndian, i)
	}
	return b.Bytes()
}

const triangleJSON = `{"asset":{"version":"2.0"},"buffers":[{"byteLength":44}],
"bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":36},{"buffer":0,"byteOffset":36,"byteLength":6}],
"accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"},{"bufferView":1,"componentType":5123,"count":3,"type":"SCALAR"}],
"meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":1}]}]}`

// What hy3d's own GLB writer writes reads back exactly.
func TestParseGLBReadsWhatWriteGLBWrites(t *testing.T) {
	m := icosphere(2, 1, [3]float64{0.5, 0, 0})
	var buf bytes.Buffer
	if err := WriteGLB(&buf, m); err != nil {
		t.Fatal(err)
	}
	back, err := ParseGLB(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Vertices, m.Vertices) || !slices.Equal(back.Indices, m.Indices) {
		t.Fatalf("read back %d vertices %d faces, wrote %d %d", back.VertexCount(), back.TriangleCount(),
			m.VertexCount(), m.TriangleCount())
	}
}

func TestParseGLB(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    []byte
		faces   int
		wantErr bool
	}{
		{"triangle with 16-bit indices", glbOf(triangleJSON, triangleBin()), 1, false},
		{"no indices", glbOf(`{"buffers":[{"byteLength":36}],"bufferViews":[{"buffer":0,"byteLength":36}],
"accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"}],
"meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}]}`, triangleBin()), 1, false},
		{"not glb", []byte("solid x\n"), 0, true},
		{"index out of range", glbOf(triangleJSON, append(triangleBin()[:36], 0, 0, 1, 0, 7, 0)), 0, true},
		{"count beyond the view", glbOf(
			`{"buffers":[{"byteLength":36}],"bufferViews":[{"buffer":0,"byteLength":36}],
"accessors":[{"bufferView":0,"componentType":5126,"count":4,"type":"VEC3"}],
"meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}]}`, triangleBin()), 0, true},
		{"external buffer", glbOf(`{"buffers":[{"byteLength":36,"uri":"x.bin"}],"bufferViews":[{"buffer":0,"byteLength":36}],
"accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"}],
"meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}]}`, triangleBin()), 0, true},
		{"lines", glbOf(`{"meshes":[{"primitives":[{"attributes":{"POSITION":0},"mode":1}]}]}`, nil), 0, true},
		{"truncated", glbOf(triangleJSON, triangleBin())[:50], 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseGLB(bytes.NewReader(tc.data))
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.TriangleCount() != tc.faces {
				t.Fatalf("%d faces, want %d", m.TriangleCount(), tc.faces)
			}
		})
	}
}

func FuzzParseGLB(f *testing.F) {
	fuzzSeeds(f, FormatGLB)
	f.Add(glbOf(triangleJSON, triangleBin()))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseGLB(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		checkParsed(t, m, FormatGLB, func(r *bytes.Reader) (*Mesh, error) { return ParseGLB(r) })
	})
}
