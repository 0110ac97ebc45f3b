package mesh

import (
	"fmt"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/qmuntal/gltf"
	"github.com/qmuntal/gltf/modeler"
)

// WriteGLB writes m as binary glTF 2.0: one buffer holding float32
// positions (with the min/max glTF requires), float32 unit normals (see
// unitNormals) and uint32 indices, each view 4-byte aligned; one mesh with one indexed
// triangle primitive, one node, one scene. A mesh without triangles
// becomes a scene with an empty node, since glTF forbids empty accessors.
func WriteGLB(w io.Writer, m *Mesh) error {
	const op = "export glb"
	if err := m.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	doc := gltf.NewDocument()
	doc.Asset.Generator = "hy3d"
	node := &gltf.Node{Name: "hy3d"}
	if m.TriangleCount() > 0 {
		normals := unitNormals(normalsFor(m))
		n := m.VertexCount()
		positions := unsafe.Slice((*[3]float32)(unsafe.Pointer(&m.Vertices[0])), n)
		normalTriples := unsafe.Slice((*[3]float32)(unsafe.Pointer(&normals[0])), n)
		primitive := &gltf.Primitive{
			Mode:    gltf.PrimitiveTriangles,
			Indices: gltf.Index(modeler.WriteIndices(doc, m.Indices)),
			Attributes: gltf.PrimitiveAttributes{
				gltf.POSITION: modeler.WritePosition(doc, positions),
				gltf.NORMAL:   modeler.WriteNormal(doc, normalTriples),
			},
		}
		doc.Meshes = []*gltf.Mesh{{Name: "hy3d", Primitives: []*gltf.Primitive{primitive}}}
		node.Mesh = gltf.Index(0)
	}
	doc.Nodes = []*gltf.Node{node}
	doc.Scenes[0].Nodes = []int{0}
	bw := newBufferedWriter(w)
	enc := gltf.NewEncoder(bw)
	enc.AsBinary = true
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return bw.finish(op)
}

// unitTolerance is how far from 1 a supplied normal's length may be and still
// be written as is: far above float32 rounding, far below the 0.00674 the
// Khronos validator allows (the error of 8-bit quantized normals).
const unitTolerance = 1e-4

// unitNormals returns normals with every vector of unit length, as glTF
// requires of NORMAL. Computed normals already are; supplied ones may be
// scaled, zero or non-finite (STL files often store zero facet normals).
// Those are rescaled, and the ones without a direction become +Z as in
// VertexNormals. Unit vectors keep their exact bits, and normals is copied
// only when a vector changes.
func unitNormals(normals []float32) []float32 {
	out := normals
	copied := false
	for v := 0; v+2 < len(normals); v += 3 {
		n := [3]float64{float64(normals[v]), float64(normals[v+1]), float64(normals[v+2])}
		if math.Abs(math.Sqrt(n[0]*n[0]+n[1]*n[1]+n[2]*n[2])-1) <= unitTolerance { // false for NaN
			continue
		}
		if !copied {
			out, copied = slices.Clone(normals), true
		}
		n = unit(n)
		out[v], out[v+1], out[v+2] = float32(n[0]), float32(n[1]), float32(n[2])
	}
	return out
}
