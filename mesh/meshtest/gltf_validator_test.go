package meshtest_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/qmuntal/gltf"

	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/mesh/meshtest"
)

func triangleGLB(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	m := &mesh.Mesh{Vertices: []float32{0, 0, 0, 1, 0, 0, 0, 1, 0}, Indices: []uint32{0, 1, 2}}
	if err := mesh.WriteGLB(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestValidateGLBReportsWhatTheValidatorFinds pins that the helper is not
// vacuous: a file the validator rejects comes back with its errors.
func TestValidateGLBReportsWhatTheValidatorFinds(t *testing.T) {
	var doc gltf.Document
	if err := gltf.NewDecoder(bytes.NewReader(triangleGLB(t))).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	doc.Accessors[doc.Meshes[0].Primitives[0].Attributes[gltf.POSITION]].Max[0] = 2
	var wrongBounds bytes.Buffer
	enc := gltf.NewEncoder(&wrongBounds)
	enc.AsBinary = true
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	truncated := triangleGLB(t)
	truncated = truncated[:len(truncated)-8]

	tests := []struct {
		name     string
		glb      []byte
		wantCode string // among the errors; "" for a valid file
	}{
		{"valid triangle", triangleGLB(t), ""},
		{"position max larger than any vertex", wrongBounds.Bytes(), "ACCESSOR_MAX_MISMATCH"},
		{"file cut short", truncated, "GLB_UNEXPECTED_END_OF_CHUNK_DATA"},
		{"not glTF at all", []byte("solid cube\nendsolid cube\n"), "UNREADABLE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := meshtest.ValidateGLB(t, tc.glb)
			if r.ValidatorVersion == "" {
				t.Errorf("report names no validator version: %s", r)
			}
			errs := r.Codes("error")
			if tc.wantCode == "" && r.NumErrors != 0 || tc.wantCode != "" && !slices.Contains(errs, tc.wantCode) {
				t.Errorf("errors %v, want %q: %s", errs, tc.wantCode, r)
			}
		})
	}
}
