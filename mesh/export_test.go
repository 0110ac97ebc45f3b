package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/qmuntal/gltf"
	"github.com/qmuntal/gltf/modeler"
)

// exportMesh is a closed mesh with normals and coordinates that need every
// digit of a float32.
func exportMesh() *Mesh {
	m := icosphere(2, 1.2345678, [3]float64{0.1, -3.3, 1e-3})
	m.Normals = VertexNormals(m)
	return m
}

func TestParseFormatAcceptsNamesAndExtensions(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"glb", FormatGLB, false},
		{"GLB", FormatGLB, false},
		{".obj", FormatOBJ, false},
		{"Ply", FormatPLY, false},
		{"stl", FormatSTL, false},
		{"fbx", "", true},
		{"", "", true},
		{"..glb", "", true},
	}
	for _, tc := range tests {
		got, err := ParseFormat(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrUnknownFormat)) {
			t.Errorf("ParseFormat(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestFormatDescribesItself(t *testing.T) {
	tests := []struct {
		f           Format
		ext, ctype  string
		parseBackTo Format
	}{
		{FormatGLB, ".glb", "model/gltf-binary", FormatGLB},
		{FormatOBJ, ".obj", "model/obj", FormatOBJ},
		{FormatPLY, ".ply", "application/octet-stream", FormatPLY},
		{FormatSTL, ".stl", "model/stl", FormatSTL},
	}
	for _, tc := range tests {
		if tc.f.Extension() != tc.ext || tc.f.ContentType() != tc.ctype {
			t.Errorf("%s: %q %q", tc.f, tc.f.Extension(), tc.f.ContentType())
		}
		if back, err := ParseFormat(tc.f.Extension()); err != nil || back != tc.parseBackTo {
			t.Errorf("%s: extension parses to %q, %v", tc.f, back, err)
		}
	}
}

func TestExportGLBIsValidGLTF(t *testing.T) {
	m := exportMesh()
	var buf bytes.Buffer
	if err := Export(&buf, m, FormatGLB); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if string(raw[:4]) != "glTF" || binary.LittleEndian.Uint32(raw[4:]) != 2 ||
		int(binary.LittleEndian.Uint32(raw[8:])) != len(raw) || len(raw)%4 != 0 {
		t.Fatalf("bad GLB header % x (file of %d bytes)", raw[:12], len(raw))
	}
	var doc gltf.Document
	if err := gltf.NewDecoder(bytes.NewReader(raw)).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Asset.Version != "2.0" || len(doc.Buffers) != 1 || doc.Buffers[0].URI != "" || len(doc.Meshes) != 1 ||
		doc.Scene == nil || len(doc.Scenes[*doc.Scene].Nodes) != 1 || doc.Nodes[0].Mesh == nil {
		t.Fatalf("document layout: %+v", doc)
	}
	for i, bv := range doc.BufferViews {
		if bv.ByteOffset%4 != 0 {
			t.Errorf("buffer view %d at offset %d is not 4-byte aligned", i, bv.ByteOffset)
		}
	}
	p := doc.Meshes[0].Primitives[0]
	if p.Mode != gltf.PrimitiveTriangles || p.Indices == nil {
		t.Fatalf("primitive %+v", p)
	}
	pos, nrm, idx := doc.Accessors[p.Attributes[gltf.POSITION]], doc.Accessors[p.Attributes[gltf.NORMAL]], doc.Accessors[*p.Indices]
	if pos.ComponentType != gltf.ComponentFloat || pos.Type != gltf.AccessorVec3 || pos.Count != m.VertexCount() ||
		nrm.ComponentType != gltf.ComponentFloat || nrm.Type != gltf.AccessorVec3 || nrm.Count != m.VertexCount() ||
		idx.ComponentType != gltf.ComponentUint || idx.Type != gltf.AccessorScalar || idx.Count != len(m.Indices) {
		t.Fatalf("accessors: position %+v, normal %+v, indices %+v", pos, nrm, idx)
	}
	if doc.BufferViews[*idx.BufferView].Target != gltf.TargetElementArrayBuffer ||
		doc.BufferViews[*pos.BufferView].Target != gltf.TargetArrayBuffer {
		t.Fatalf("buffer view targets")
	}
	lo, hi := bounds(m)
	for i := range 3 {
		if pos.Min[i] != float64(lo[i]) || pos.Max[i] != float64(hi[i]) {
			t.Fatalf("position bounds %v..%v, want %v..%v", pos.Min, pos.Max, lo, hi)
		}
	}
	positions, err := modeler.ReadPosition(&doc, pos, nil)
	if err != nil {
		t.Fatal(err)
	}
	normals, err := modeler.ReadNormal(&doc, nrm, nil)
	if err != nil {
		t.Fatal(err)
	}
	indices, err := modeler.ReadIndices(&doc, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := &Mesh{Indices: indices}
	for v := range positions {
		got.Vertices = append(got.Vertices, positions[v][:]...)
		got.Normals = append(got.Normals, normals[v][:]...)
	}
	sameMesh(t, got, m)
}

func TestExportRoundTripsThroughParsers(t *testing.T) {
	tests := []struct {
		format Format
		parse  func(io.Reader) (*Mesh, error)
	}{
		{FormatOBJ, ParseOBJ},
		{FormatPLY, ParsePLY},
	}
	for _, tc := range tests {
		t.Run(string(tc.format), func(t *testing.T) {
			m := exportMesh()
			var buf bytes.Buffer
			if err := Export(&buf, m, tc.format); err != nil {
				t.Fatal(err)
			}
			got, err := tc.parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			sameMesh(t, got, m)
		})
	}
}

func TestExportSTLStoresFacetsWithTheirNormals(t *testing.T) {
	m := exportMesh()
	var buf bytes.Buffer
	if err := Export(&buf, m, FormatSTL); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 84+50*m.TriangleCount() || strings.HasPrefix(buf.String(), "solid") {
		t.Fatalf("%d bytes for %d triangles", buf.Len(), m.TriangleCount())
	}
	got, err := ParseSTL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.TriangleCount() != m.TriangleCount() {
		t.Fatalf("%d triangles, want %d", got.TriangleCount(), m.TriangleCount())
	}
	for f := 0; f < m.TriangleCount(); f++ {
		for k := range 3 {
			v, w := m.Indices[3*f+k], got.Indices[3*f+k]
			if [3]float32(m.Vertices[3*v:3*v+3]) != [3]float32(got.Vertices[3*w:3*w+3]) {
				t.Fatalf("triangle %d corner %d differs", f, k)
			}
			if [3]float32(got.Normals[3*w:3*w+3]) != FaceNormal(m, f) {
				t.Fatalf("triangle %d: normal %v, want %v", f, got.Normals[3*w:3*w+3], FaceNormal(m, f))
			}
		}
	}
	// Welded back together, the facets are the closed sphere again.
	closed, _, err := Clean(t.Context(), got, CleanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if top := Analyze(closed); !top.Watertight() || top.Euler() != 2 || closed.VertexCount() != m.VertexCount() {
		t.Fatalf("welded STL: %+v", top)
	}
}

func TestExportWithoutNormalsComputesThem(t *testing.T) {
	m := exportMesh()
	bare := &Mesh{Vertices: m.Vertices, Indices: m.Indices}
	for _, f := range []Format{FormatOBJ, FormatPLY} {
		var withNormals, computed bytes.Buffer
		if err := Export(&withNormals, m, f); err != nil {
			t.Fatal(err)
		}
		if err := Export(&computed, bare, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(withNormals.Bytes(), computed.Bytes()) {
			t.Errorf("%s: output differs when the normals are computed on the fly", f)
		}
	}
}

func TestExportEmptyMeshParsesBackEmpty(t *testing.T) {
	empty := &Mesh{}
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Export(&buf, empty, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var got *Mesh
		var err error
		switch f {
		case FormatGLB:
			var doc gltf.Document
			err = gltf.NewDecoder(&buf).Decode(&doc)
			if err == nil && (len(doc.Meshes) != 0 || len(doc.Nodes) != 1) {
				t.Errorf("glb: %d meshes, %d nodes", len(doc.Meshes), len(doc.Nodes))
			}
			got = &Mesh{}
		case FormatOBJ:
			got, err = ParseOBJ(&buf)
		case FormatPLY:
			got, err = ParsePLY(&buf)
		case FormatSTL:
			got, err = ParseSTL(&buf)
		}
		if err != nil || got.TriangleCount() != 0 || got.VertexCount() != 0 {
			t.Errorf("%s: %+v, %v", f, got, err)
		}
	}
}

func TestExportRejectsUnknownFormatAndInvalidMesh(t *testing.T) {
	if err := Export(io.Discard, exportMesh(), "fbx"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("fbx: %v", err)
	}
	bad := &Mesh{Vertices: make([]float32, 9), Indices: []uint32{0, 1, 9}}
	for _, f := range Formats {
		if err := Export(io.Discard, bad, f); !errors.Is(err, ErrInvalidMesh) {
			t.Errorf("%s: %v, want ErrInvalidMesh", f, err)
		}
	}
}

type failingWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errDiskFull
	}
	w.after -= len(p)
	return len(p), nil
}

func TestExportReportsWriteErrors(t *testing.T) {
	m := icosphere(5, 1, [3]float64{}) // larger than the write buffer
	for _, f := range Formats {
		for _, after := range []int{0, 100, 70000} {
			if err := Export(&failingWriter{after: after}, m, f); !errors.Is(err, errDiskFull) {
				t.Errorf("%s failing after %d bytes: %v", f, after, err)
			}
		}
	}
}

// sameMesh fails unless got has exactly want's vertices, indices and normals.
func sameMesh(t *testing.T, got, want *Mesh) {
	t.Helper()
	if len(got.Vertices) != len(want.Vertices) || len(got.Indices) != len(want.Indices) || len(got.Normals) != len(want.Normals) {
		t.Fatalf("sizes: %d/%d/%d floats/indices/normals, want %d/%d/%d", len(got.Vertices), len(got.Indices),
			len(got.Normals), len(want.Vertices), len(want.Indices), len(want.Normals))
	}
	for i := range want.Vertices {
		if got.Vertices[i] != want.Vertices[i] || got.Normals[i] != want.Normals[i] {
			t.Fatalf("vertex float %d: %v/%v, want %v/%v", i, got.Vertices[i], got.Normals[i], want.Vertices[i], want.Normals[i])
		}
	}
	for i := range want.Indices {
		if got.Indices[i] != want.Indices[i] {
			t.Fatalf("index %d: %d, want %d", i, got.Indices[i], want.Indices[i])
		}
	}
}

func bounds(m *Mesh) (lo, hi [3]float32) {
	lo = [3]float32{math.MaxFloat32, math.MaxFloat32, math.MaxFloat32}
	hi = [3]float32{-math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32}
	for v := 0; v < len(m.Vertices); v += 3 {
		for i := range 3 {
			lo[i] = min(lo[i], m.Vertices[v+i])
			hi[i] = max(hi[i], m.Vertices[v+i])
		}
	}
	return lo, hi
}
