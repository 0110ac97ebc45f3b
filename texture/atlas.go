package texture

import (
	"context"
	"fmt"
	"time"

	"github.com/hy3d/hy3d/mesh"
)

// AtlasOptions configure BuildAtlas.
type AtlasOptions struct {
	Size          int     // atlas side in texels: packing and the overlap check run at it
	Padding       int     // no texel centre lies within Padding texels of two charts; 1: bilinear lookups of two charts never read one texel
	MaxChartAngle float64 // degrees a face normal may turn away from its chart's mean normal, in (0, 90)
	Threads       int     // <= 0: every hardware thread
}

// DefaultAtlasOptions packs for a texture of the given size with one
// texel of padding and charts whose normals stay within 40° (a face is
// then stretched by at most 1/cos 40° ≈ 1.31 along one direction).
func DefaultAtlasOptions(size int) AtlasOptions {
	return AtlasOptions{Size: size, Padding: 1, MaxChartAngle: 40}
}

// Atlas is a mesh laid out in UV space. Its vertices are the input
// vertices split only where a chart border passes: vertex v is input vertex
// Xref[v] with texture coordinates UV[2v], UV[2v+1] (glTF convention: (0, 0)
// is the first texel of the first row). Triangle f keeps its index and
// winding and lies in chart FaceChart[f].
type Atlas struct {
	Xref      []uint32
	UV        []float32
	Indices   []uint32
	FaceChart []uint32
	Stats     AtlasStats
}

// AtlasStats describe an atlas: its chart count, its L2 stretch (Sander et
// al. 2001; 1 for an isometry up to one global scale), the fraction of
// texel centres some face covers, the texel centres strictly inside two
// faces (0 unless an overlap survived every split), and the build time.
type AtlasStats struct {
	Charts        int
	StretchL2     float64
	Utilization   float64
	OverlapTexels uint64
	Duration      time.Duration
}

// VertexCount is the number of (split) atlas vertices.
func (a *Atlas) VertexCount() int { return len(a.Xref) }

// BuildAtlas segments m into charts, projects each onto the plane of its
// mean normal and packs them into a square of opt.Size texels
// (native/src/texture_atlas.cpp). A mesh without triangles gives an empty
// atlas. The native call cannot be interrupted: ctx is checked before.
func BuildAtlas(ctx context.Context, m *mesh.Mesh, opt AtlasOptions) (*Atlas, error) {
	const op = "atlas"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidInput, err)
	}
	if err := checkSize(op, opt.Size); err != nil {
		return nil, err
	}
	start := time.Now()
	a, err := nativeAtlas(m.Vertices, m.Indices, opt)
	if err != nil {
		return nil, err
	}
	a.Stats.Duration = time.Since(start)
	return a, nil
}
