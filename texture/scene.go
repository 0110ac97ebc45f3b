package texture

import (
	"context"
	"fmt"
	"math"

	"github.com/hy3d/hy3d/mesh"
)

// NormalMode selects the normals a view carries: Hunyuan3D-2.0 shades and
// bakes with vertex normals, 2.1 with flat face normals.
type NormalMode int

const (
	// VertexNormals are the normalized sum of the unit normals of the faces
	// around a position (trimesh's mean_vertex_normals), summed over the
	// copies of that position the atlas split, so they do not jump at seams.
	VertexNormals NormalMode = iota
	// FaceNormals are flat per face.
	FaceNormals
)

// Scene is an atlased mesh in Hunyuan3D-Paint's normalized frame, ready to
// be rendered, rasterized in UV space and baked. The frame maps an input
// point (x, y, z) to (-x, z, -y) (Z up), centres the bounding box and
// scales the farthest vertex to NormalizedDiameter/2 from the centre.
// Normals point out of the surface for counter-clockwise input triangles.
type Scene struct {
	atlas         *Atlas
	positions     []float32 // per atlas vertex, normalized frame
	faceNormals   []float32 // per face
	vertexNormals []float32 // per atlas vertex
	faceAreas     []float64
	threads       int
}

// NewScene places the atlas of m in the normalized frame. threads <= 0 uses
// every hardware thread in the kernels; no result depends on it.
func NewScene(m *mesh.Mesh, a *Atlas, threads int) (*Scene, error) {
	const op = "scene"
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidInput, err)
	}
	if len(a.Indices) != len(m.Indices) || len(a.UV) != 2*len(a.Xref) || len(a.FaceChart) != m.TriangleCount() {
		return nil, fmt.Errorf("%s: %w: atlas does not belong to this mesh", op, ErrInvalidInput)
	}
	for _, x := range a.Xref {
		if int(x) >= m.VertexCount() {
			return nil, fmt.Errorf("%s: %w: atlas vertex refers past the mesh", op, ErrInvalidInput)
		}
	}
	for _, v := range a.Indices {
		if int(v) >= len(a.Xref) {
			return nil, fmt.Errorf("%s: %w: atlas index out of range", op, ErrInvalidInput)
		}
	}
	s := &Scene{atlas: a, threads: threads}
	s.normalize(m)
	s.normals(m)
	return s, nil
}

func (s *Scene) normalize(m *mesh.Mesh) {
	n := m.VertexCount()
	frame := make([]float64, 3*n)
	lo := [3]float64{math.Inf(1), math.Inf(1), math.Inf(1)}
	hi := [3]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for v := 0; v < n; v++ {
		p := toFrame([3]float64{float64(m.Vertices[3*v]), float64(m.Vertices[3*v+1]), float64(m.Vertices[3*v+2])})
		for k := 0; k < 3; k++ {
			frame[3*v+k] = p[k]
			lo[k], hi[k] = math.Min(lo[k], p[k]), math.Max(hi[k], p[k])
		}
	}
	centre := [3]float64{(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2}
	radius := 0.0
	for v := 0; v < n; v++ {
		d := 0.0
		for k := 0; k < 3; k++ {
			d += (frame[3*v+k] - centre[k]) * (frame[3*v+k] - centre[k])
		}
		radius = math.Max(radius, math.Sqrt(d))
	}
	scale := 1.0
	if radius > 0 {
		scale = NormalizedDiameter / (2 * radius)
	}
	s.positions = make([]float32, 3*len(s.atlas.Xref))
	for v, x := range s.atlas.Xref {
		for k := 0; k < 3; k++ {
			s.positions[3*v+k] = float32((frame[3*int(x)+k] - centre[k]) * scale)
		}
	}
}

// toFrame is Hunyuan3D's axis change (x, y, z) → (-x, z, -y). It is a
// reflection (determinant -1), so the right-hand normals of triangles
// turn inward in the new frame; normals are computed in the input frame
// and mapped, which keeps them outward.
func toFrame(p [3]float64) [3]float64 { return [3]float64{-p[0], p[2], -p[1]} }

func (s *Scene) normals(m *mesh.Mesh) {
	t := m.TriangleCount()
	s.faceNormals = make([]float32, 3*t)
	s.faceAreas = make([]float64, t)
	sum := make([]float64, 3*m.VertexCount())
	for f := 0; f < t; f++ {
		var p [3][3]float64
		for k := 0; k < 3; k++ {
			v := m.Indices[3*f+k]
			p[k] = [3]float64{float64(m.Vertices[3*v]), float64(m.Vertices[3*v+1]), float64(m.Vertices[3*v+2])}
		}
		c := cross3([3]float64{p[1][0] - p[0][0], p[1][1] - p[0][1], p[1][2] - p[0][2]},
			[3]float64{p[2][0] - p[0][0], p[2][1] - p[0][1], p[2][2] - p[0][2]})
		s.faceAreas[f] = math.Sqrt(c[0]*c[0]+c[1]*c[1]+c[2]*c[2]) / 2
		n := toFrame(norm3(c))
		for k := 0; k < 3; k++ {
			s.faceNormals[3*f+k] = float32(n[k])
		}
		for k := 0; k < 3; k++ {
			v := m.Indices[3*f+k]
			for j := 0; j < 3; j++ {
				sum[3*int(v)+j] += n[j]
			}
		}
	}
	s.vertexNormals = make([]float32, 3*len(s.atlas.Xref))
	for v, x := range s.atlas.Xref {
		n := norm3([3]float64{sum[3*x], sum[3*x+1], sum[3*x+2]})
		for k := 0; k < 3; k++ {
			s.vertexNormals[3*v+k] = float32(n[k])
		}
	}
}

// Positions are the atlas vertices in the normalized frame (3 per vertex).
func (s *Scene) Positions() []float32 { return s.positions }

// Atlas is the atlas the scene was built on.
func (s *Scene) Atlas() *Atlas { return s.atlas }

// View is one rendered view, Size×Size pixels, row 0 at the bottom of the
// view (Hunyuan3D's rasterizer does not flip rows). FaceIDs are -1 on the
// background; Depth is the distance along the view direction; Normals are
// unit world normals in the normalized frame (3 per pixel, 0 on the
// background), per vertex or per face as the view was rendered.
type View struct {
	Camera  Camera
	Size    int
	FaceIDs []int32
	Bary    []float32
	Depth   []float32
	Normals []float32
}

// Render rasterizes one view at size×size pixels.
func (s *Scene) Render(ctx context.Context, cam Camera, size int, mode NormalMode) (*View, error) {
	const op = "render"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkSize(op, size); err != nil {
		return nil, err
	}
	v := &View{Camera: cam, Size: size, FaceIDs: make([]int32, size*size), Bary: make([]float32, 3*size*size),
		Depth: make([]float32, size*size)}
	w2c := cam.WorldToCamera()
	if err := nativeRasterizeOrtho(s.positions, s.atlas.Indices, &w2c, OrthoScale, size, size, s.threads,
		v.FaceIDs, v.Bary, v.Depth); err != nil {
		return nil, err
	}
	var err error
	v.Normals, err = s.interpolateNormals(v.FaceIDs, v.Bary, mode)
	return v, err
}

func (s *Scene) interpolateNormals(faceIDs []int32, bary []float32, mode NormalMode) ([]float32, error) {
	out := make([]float32, 3*len(faceIDs))
	attrs, perFace := s.vertexNormals, false
	if mode == FaceNormals {
		attrs, perFace = s.faceNormals, true
	}
	// Blended vertex normals are rescaled to unit length.
	if err := nativeInterpolate(attrs, 3, perFace, !perFace, s.atlas.Indices, faceIDs, bary, []float32{0, 0, 0},
		s.threads, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Interpolate blends per-vertex attributes (channels floats per atlas
// vertex) over a raster's faces; background pixels get background.
func (s *Scene) Interpolate(attrs []float32, channels int, faceIDs []int32, bary []float32, background []float32) ([]float32, error) {
	if channels <= 0 || len(attrs) != channels*len(s.atlas.Xref) || len(background) != channels ||
		len(bary) != 3*len(faceIDs) {
		return nil, fmt.Errorf("interpolate: %w: attribute or raster sizes", ErrInvalidInput)
	}
	out := make([]float32, channels*len(faceIDs))
	return out, nativeInterpolate(attrs, channels, false, false, s.atlas.Indices, faceIDs, bary, background, s.threads, out)
}

// UVRaster is the mesh rasterized in UV space at Size×Size texels: the face
// of every texel (FaceIDs, -1 in the gutters) and, for the covered texels
// tile by tile (8×8-texel tiles, so that texels close on the surface stay
// close in the list), their linear index and world position in the
// normalized frame.
type UVRaster struct {
	Size           int
	FaceIDs        []int32
	TexelIndex     []uint32
	TexelPositions []float32
}

// RasterizeUV rasterizes the atlas at size×size texels.
func (s *Scene) RasterizeUV(ctx context.Context, size int) (*UVRaster, error) {
	const op = "rasterize uv"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkSize(op, size); err != nil {
		return nil, err
	}
	r := &UVRaster{Size: size, FaceIDs: make([]int32, size*size)}
	if err := nativeRasterizeUV(s.atlas.UV, s.atlas.Indices, size, size, s.threads, r.FaceIDs, nil); err != nil {
		return nil, err
	}
	var err error
	r.TexelIndex, r.TexelPositions, err = nativeUVTexels(s.atlas.UV, s.atlas.Indices, r.FaceIDs, size, size,
		s.positions, 3, s.threads)
	if err != nil {
		return nil, err
	}
	return r, nil
}
