package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseOBJReadsEveryIndexForm(t *testing.T) {
	src := `# a quad, a triangle with texture and normal indices, negative indices
mtllib x.mtl
o thing
v 0 0 0
v 1 0 0 1.0
v 1 1 0 0.5 0.5 0.5
v 0 1 0
vt 0 0
vn 0 0 1
f 1 2 3 4
f 1/1/1 3/1/1 4/1/1
f -4//1 -3//1 -2//1
usemtl none
s off
`
	m, err := ParseOBJ(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{0, 1, 2, 0, 2, 3, 0, 2, 3, 0, 1, 2}
	if m.VertexCount() != 4 || !slicesEqual(m.Indices, want) || m.Normals != nil {
		t.Fatalf("got %d vertices, indices %v, normals %v", m.VertexCount(), m.Indices, m.Normals)
	}
}

func TestParseSTLReadsASCII(t *testing.T) {
	src := `solid two
  facet normal 0 0 1
    outer loop
      vertex 0 0 0
      vertex 1 0 0
      vertex 0 1 0
    endloop
  endfacet
  facet normal 0 0 -1
    outer loop
      vertex 0 0 0
      vertex 0 1 0
      vertex 1 0 0
    endloop
  endfacet
endsolid two
`
	m, err := ParseSTL(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if m.TriangleCount() != 2 || m.VertexCount() != 6 || m.Normals[17] != -1 || m.Vertices[12] != 0 || m.Vertices[15] != 1 {
		t.Fatalf("got %+v", m)
	}
}

func TestParsePLYReadsASCIIAndBigEndianWithExtraProperties(t *testing.T) {
	ascii := `ply
format ascii 1.0
comment extra properties and elements are skipped
element vertex 4
property float x
property float y
property float z
property uchar red
property list uchar int junk
element face 1
property list uchar uint vertex_indices
property int flags
element edge 1
property int vertex1
property int vertex2
end_header
0 0 0 255 0
1 0 0 255 2 7 8
1 1 0 255 0
0 1 0 255 1 9
4 0 1 2 3 0
0 1
`
	big := &bytes.Buffer{}
	big.WriteString("ply\r\nformat binary_big_endian 1.0\r\nelement vertex 3\r\nproperty double x\r\nproperty double y\r\n" +
		"property double z\r\nelement face 1\r\nproperty list ushort short vertex_index\r\nend_header\r\n")
	for _, x := range []float64{0, 0, 0, 1, 0, 0, 0, 1, 0} {
		binary.Write(big, binary.BigEndian, x)
	}
	binary.Write(big, binary.BigEndian, []uint16{3, 0, 1, 2})
	tests := []struct {
		name        string
		src         []byte
		vertices    int
		wantIndices []uint32
	}{
		{"ascii quad", []byte(ascii), 4, []uint32{0, 1, 2, 0, 2, 3}},
		{"big-endian triangle", big.Bytes(), 3, []uint32{0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParsePLY(bytes.NewReader(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if m.VertexCount() != tc.vertices || !slicesEqual(m.Indices, tc.wantIndices) || m.Vertices[3] != 1 {
				t.Fatalf("got %+v", m)
			}
		})
	}
}

func TestParsersRejectMalformedInput(t *testing.T) {
	plyHeader := "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n" +
		"element face 1\nproperty list uchar int vertex_indices\nend_header\n"
	triangle := func(index int32) string {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, make([]float32, 9))
		b.WriteByte(3)
		binary.Write(&b, binary.LittleEndian, []int32{0, 1, index})
		return b.String()
	}
	tests := []struct {
		name   string
		parse  func(string) error
		source string
	}{
		{"ply without header", plyParse, "hello"},
		{"ply with unknown format", plyParse, strings.Replace(plyHeader, "binary_little_endian", "binary_middle_endian", 1)},
		{"ply with a huge count", plyParse, strings.Replace(plyHeader, "vertex 3", "vertex 4000000000", 1) + triangle(2)},
		{"ply cut short", plyParse, plyHeader + triangle(2)[:40]},
		{"ply index out of range", plyParse, plyHeader + triangle(3)},
		{"ply negative index", plyParse, plyHeader + triangle(-1)},
		{"ply without z", plyParse, strings.Replace(plyHeader, "property float z\n", "", 1) + triangle(2)},
		{"ply NaN coordinate", plyParse, "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n" +
			"property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 nan 1 0 0 0 1 0 3 0 1 2\n"},
		{"obj face before vertices", objParse, "f 1 2 3\n"},
		{"obj bad number", objParse, "v 0 0 x\n"},
		{"obj two-corner face", objParse, "v 0 0 0\nv 1 0 0\nf 1 2\n"},
		{"obj index zero", objParse, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n"},
		{"obj infinite coordinate", objParse, "v 0 0 inf\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"},
		{"stl neither binary nor ascii", stlParse, "not an stl file"},
		{"stl binary with the wrong count", stlParse, strings.Repeat("\x00", 80) + "\x02\x00\x00\x00" + strings.Repeat("\x00", 50)},
		{"stl facet with two vertices", stlParse, "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nendloop\nendfacet\nendsolid\n"},
		{"stl unterminated facet", stlParse, "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(tc.source); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func plyParse(s string) error { _, err := ParsePLY(strings.NewReader(s)); return err }
func objParse(s string) error { _, err := ParseOBJ(strings.NewReader(s)); return err }
func stlParse(s string) error { _, err := ParseSTL(strings.NewReader(s)); return err }

func slicesEqual(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fuzzSeeds are small exports in every format plus the hand-written inputs.
func fuzzSeeds(f *testing.F, format Format) {
	m := icosphere(0, 1, [3]float64{})
	var buf bytes.Buffer
	if err := Export(&buf, m, format); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
}

// checkParsed holds for anything a parser accepts: a mesh every consumer can
// use, which exports and parses back unchanged.
func checkParsed(t *testing.T, m *Mesh, format Format, parse func(*bytes.Reader) (*Mesh, error)) {
	if err := m.validate(); err != nil {
		t.Fatalf("parsed mesh is invalid: %v", err)
	}
	if format == FormatSTL {
		return // STL keeps facet normals only; covered by the round-trip test
	}
	if m.TriangleCount() == 0 {
		return
	}
	var buf bytes.Buffer
	if err := Export(&buf, m, format); err != nil {
		t.Fatalf("export of a parsed mesh: %v", err)
	}
	back, err := parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if back.TriangleCount() != m.TriangleCount() || back.VertexCount() != m.VertexCount() {
		t.Fatalf("re-parse: %d/%d faces/vertices, want %d/%d", back.TriangleCount(), back.VertexCount(),
			m.TriangleCount(), m.VertexCount())
	}
}

func FuzzParsePLY(f *testing.F) {
	fuzzSeeds(f, FormatPLY)
	f.Add([]byte("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n" +
		"element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0 1 0 0 0 1 0 3 0 1 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParsePLY(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		checkParsed(t, m, FormatPLY, func(r *bytes.Reader) (*Mesh, error) { return ParsePLY(r) })
	})
}

func FuzzParseOBJ(f *testing.F) {
	fuzzSeeds(f, FormatOBJ)
	f.Add([]byte("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1\nf -3 -2 -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseOBJ(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		checkParsed(t, m, FormatOBJ, func(r *bytes.Reader) (*Mesh, error) { return ParseOBJ(r) })
	})
}

func FuzzParseSTL(f *testing.F) {
	fuzzSeeds(f, FormatSTL)
	f.Add([]byte("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseSTL(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		checkParsed(t, m, FormatSTL, nil)
		for _, x := range m.Normals {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite normal accepted")
			}
		}
	})
}
