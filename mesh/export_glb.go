package mesh

import (
	"fmt"
	"io"
	"unsafe"

	"github.com/qmuntal/gltf"
	"github.com/qmuntal/gltf/modeler"
)

// WriteGLB writes m as binary glTF 2.0: one buffer holding float32
// positions (with the min/max glTF requires), float32 unit normals and
// uint32 indices, each view 4-byte aligned; one mesh with one indexed
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
		normals := normalsFor(m)
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
