package mesh

/*
#include "hy3d.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// ErrInvalidMesh is wrapped by every error about a mesh that cleanup,
// decimation or export cannot work on (an index out of range, a coordinate
// that is not finite, an array whose length is not a multiple of three).
var ErrInvalidMesh = errors.New("invalid mesh")

// Simplify decimates m toward targetFaces triangles by quadric edge
// collapse (native/src/simplify.cpp describes how, and how it matches
// Hunyuan3D's FaceReducer). Every collapse keeps the mesh manifold: a
// manifold input stays manifold, a closed one stays closed, and the genus
// of each component is kept. Boundary vertices and the vertices of
// non-manifold edges never move. maxError > 0 also stops collapses whose
// estimated error exceeds that fraction of the bounding-box diagonal, so
// the result can stay above the budget; so can a mesh whose every
// remaining collapse would break the rules (a tetrahedron, for one). The
// result has no normals and no unreferenced vertex; vertices that did not
// move keep their exact coordinates. threads <= 0 uses every hardware
// thread (only part of the work runs in parallel; the result does not
// depend on the count). The native call cannot be interrupted: ctx is
// checked before it starts.
func Simplify(ctx context.Context, m *Mesh, targetFaces int, maxError float32, threads int) (*Mesh, error) {
	const op = "simplify"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if targetFaces < 0 {
		return nil, fmt.Errorf("%s: %w: target of %d faces", op, ErrInvalidMesh, targetFaces)
	}
	if !(maxError >= 0) || math.IsInf(float64(maxError), 0) {
		return nil, fmt.Errorf("%s: %w: max error %v", op, ErrInvalidMesh, maxError)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var vertices *C.float
	var indices *C.uint32_t
	if len(m.Vertices) > 0 {
		vertices = (*C.float)(unsafe.Pointer(&m.Vertices[0]))
	}
	if len(m.Indices) > 0 {
		indices = (*C.uint32_t)(unsafe.Pointer(&m.Indices[0]))
	}

	return runNative(op, ErrInvalidMesh, func(out **C.hy3d_mesh) C.hy3d_status {
		return C.hy3d_simplify(vertices, C.size_t(m.VertexCount()), indices, C.size_t(m.TriangleCount()),
			C.size_t(targetFaces), C.float(maxError), cThreads(threads), out)
	})
}

// validate checks what every consumer of a mesh relies on: whole triples,
// indices in range, finite coordinates, normals absent or one per vertex.
func (m *Mesh) validate() error {
	if len(m.Vertices)%3 != 0 {
		return fmt.Errorf("%w: %d vertex floats is not a multiple of 3", ErrInvalidMesh, len(m.Vertices))
	}
	if len(m.Indices)%3 != 0 {
		return fmt.Errorf("%w: %d indices is not a multiple of 3", ErrInvalidMesh, len(m.Indices))
	}
	if m.Normals != nil && len(m.Normals) != len(m.Vertices) {
		return fmt.Errorf("%w: %d normal floats for %d vertices", ErrInvalidMesh, len(m.Normals), m.VertexCount())
	}
	if len(m.Vertices) > 3*math.MaxUint32 {
		return fmt.Errorf("%w: %d vertices do not fit 32-bit indices", ErrInvalidMesh, m.VertexCount())
	}
	n := uint32(m.VertexCount())
	for i, v := range m.Indices {
		if v >= n {
			return fmt.Errorf("%w: index %d at position %d is out of range for %d vertices", ErrInvalidMesh, v, i, n)
		}
	}
	for i, x := range m.Vertices {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: vertex %d has a non-finite coordinate", ErrInvalidMesh, i/3)
		}
	}
	return nil
}
