package mesh

import (
	"context"
	"fmt"
	"math"
)

// DefaultMinComponentRatio is Hunyuan3D's floater threshold: FloaterRemover
// (hy3dgen/shapegen/postprocessors.py, remove_floater) runs MeshLab's
// compute_selection_by_small_disconnected_components_per_face with
// nbfaceratio=0.005, which selects every connected component with fewer
// faces than 0.5 % of the largest component's, then deletes them.
const DefaultMinComponentRatio = 0.005

// DefaultTargetFaces is the face budget of Hunyuan3D's FaceReducer.
const DefaultTargetFaces = 40000

// CleanOptions tunes Clean. The zero value removes floaters the way
// Hunyuan3D does and keeps every other face.
type CleanOptions struct {
	// MinComponentRatio drops every connected component with fewer faces
	// than this fraction of the largest component's. 0 means
	// DefaultMinComponentRatio; a negative value keeps every component.
	MinComponentRatio float64
	// TargetFaces is the face budget for decimation; 0 keeps every face.
	// Hunyuan3D's is DefaultTargetFaces.
	TargetFaces int
	// Threads for decimation; 0 or less uses every hardware thread.
	Threads int
}

// CleanReport counts what Clean changed.
type CleanReport struct {
	FacesIn, FacesOut       int
	VerticesIn, VerticesOut int
	// WeldedVertices were merged into another vertex at the exact same
	// position.
	WeldedVertices int
	// DegenerateFaces repeated a vertex (after welding) or had zero area.
	DegenerateFaces int
	// DuplicateFaces used the same three vertices as an earlier face, in any
	// order or winding.
	DuplicateFaces int
	// FloaterComponents were dropped for being too small, with their
	// FloaterFaces.
	FloaterComponents, FloaterFaces int
	// UnreferencedVertices were used by no remaining face.
	UnreferencedVertices int
	// DecimatedFaces were removed by decimation.
	DecimatedFaces int
}

// Clean is Hunyuan3D's mesh post-processing (FloaterRemover,
// DegenerateFaceRemover, FaceReducer) made safe for any input: it welds
// vertices at identical positions, drops degenerate and duplicate faces,
// drops components smaller than opts.MinComponentRatio of the largest,
// removes unreferenced vertices, decimates to opts.TargetFaces with
// Simplify, and sets smooth area-weighted vertex normals. m is not
// modified. Components are connected through shared vertices (MeshLab
// connects them through shared edges; marching cubes never makes two
// components that meet at a vertex only, so the two agree on its output).
func Clean(ctx context.Context, m *Mesh, opts CleanOptions) (*Mesh, CleanReport, error) {
	const op = "clean"
	report := CleanReport{FacesIn: m.TriangleCount(), VerticesIn: m.VertexCount()}
	if err := ctx.Err(); err != nil {
		return nil, report, fmt.Errorf("%s: %w", op, err)
	}
	if opts.TargetFaces < 0 {
		return nil, report, fmt.Errorf("%s: %w: target of %d faces", op, ErrInvalidMesh, opts.TargetFaces)
	}
	if math.IsNaN(opts.MinComponentRatio) || opts.MinComponentRatio > 1 {
		return nil, report, fmt.Errorf("%s: %w: component ratio %v", op, ErrInvalidMesh, opts.MinComponentRatio)
	}
	if err := m.validate(); err != nil {
		return nil, report, fmt.Errorf("%s: %w", op, err)
	}

	canonical, welded := weldIdentical(m.Vertices)
	report.WeldedVertices = welded
	faces := make([]uint32, 0, len(m.Indices))
	for f := 0; f < len(m.Indices); f += 3 {
		a, b, c := canonical[m.Indices[f]], canonical[m.Indices[f+1]], canonical[m.Indices[f+2]]
		if a == b || b == c || a == c || faceCross(m.Vertices, a, b, c) == [3]float64{} {
			report.DegenerateFaces++
			continue
		}
		faces = append(faces, a, b, c)
	}
	faces, report.DuplicateFaces = dropDuplicateFaces(faces, m.VertexCount())

	ratio := opts.MinComponentRatio
	if ratio == 0 {
		ratio = DefaultMinComponentRatio
	}
	if ratio > 0 {
		faces, report.FloaterComponents, report.FloaterFaces = dropSmallComponents(faces, m.VertexCount(), ratio)
	}

	out := compact(m.Vertices, faces)
	report.UnreferencedVertices = m.VertexCount() - welded - out.VertexCount()
	if err := ctx.Err(); err != nil {
		return nil, report, fmt.Errorf("%s: %w", op, err)
	}
	if opts.TargetFaces > 0 && out.TriangleCount() > opts.TargetFaces {
		before := out.TriangleCount()
		decimated, err := Simplify(ctx, out, opts.TargetFaces, 0, opts.Threads)
		if err != nil {
			return nil, report, fmt.Errorf("%s: %w", op, err)
		}
		out = decimated
		report.DecimatedFaces = before - out.TriangleCount()
	}
	out.Normals = VertexNormals(out)
	report.FacesOut, report.VerticesOut = out.TriangleCount(), out.VertexCount()
	return out, report, nil
}

// weldIdentical maps every vertex to the first vertex at bit-identical
// coordinates (with −0 equal to +0), and counts the vertices mapped away.
func weldIdentical(vertices []float32) (canonical []uint32, welded int) {
	n := len(vertices) / 3
	canonical = make([]uint32, n)
	// Open addressing with linear probing; a power of two at least twice n.
	size := 1
	for size < 2*n {
		size <<= 1
	}
	slots := make([]uint32, size) // vertex+1, 0 for empty
	key := func(v int) [3]uint32 {
		var k [3]uint32
		for i := range k {
			x := vertices[3*v+i]
			if x == 0 {
				x = 0 // −0 → +0
			}
			k[i] = math.Float32bits(x)
		}
		return k
	}
	for v := 0; v < n; v++ {
		k := key(v)
		h := (uint64(k[0])*0x9E3779B97F4A7C15 ^ uint64(k[1])*0xC2B2AE3D27D4EB4F ^ uint64(k[2])*0x165667B19E3779F9) >> 17
		for i := int(h) & (size - 1); ; i = (i + 1) & (size - 1) {
			if slots[i] == 0 {
				slots[i] = uint32(v) + 1
				canonical[v] = uint32(v)
				break
			}
			if w := int(slots[i] - 1); key(w) == k {
				canonical[v] = uint32(w)
				welded++
				break
			}
		}
	}
	return canonical, welded
}

// dropDuplicateFaces keeps the first of every set of faces over the same
// three vertices. Such faces share their smallest vertex, so grouping by it
// (a counting sort) leaves only tiny groups to compare.
func dropDuplicateFaces(faces []uint32, vertexCount int) ([]uint32, int) {
	count := len(faces) / 3
	start := make([]uint32, vertexCount+1)
	sorted := func(f int) [3]uint32 {
		a, b, c := faces[3*f], faces[3*f+1], faces[3*f+2]
		if a > b {
			a, b = b, a
		}
		if b > c {
			b, c = c, b
		}
		if a > b {
			a, b = b, a
		}
		return [3]uint32{a, b, c}
	}
	for f := 0; f < count; f++ {
		start[sorted(f)[0]+1]++
	}
	for v := 0; v < vertexCount; v++ {
		start[v+1] += start[v]
	}
	order := make([]uint32, count)
	fill := append([]uint32(nil), start[:vertexCount]...)
	for f := 0; f < count; f++ {
		v := sorted(f)[0]
		order[fill[v]] = uint32(f)
		fill[v]++
	}
	drop := make([]bool, count)
	duplicates := 0
	for v := 0; v < vertexCount; v++ {
		group := order[start[v]:start[v+1]]
		for i, f := range group {
			if drop[f] {
				continue
			}
			key := sorted(int(f))
			for _, g := range group[i+1:] {
				// A group lists its faces in input order: the first stays.
				if !drop[g] && sorted(int(g)) == key {
					drop[g] = true
				}
			}
		}
	}
	out := faces[:0]
	for f := 0; f < count; f++ {
		if drop[f] {
			duplicates++
			continue
		}
		out = append(out, faces[3*f], faces[3*f+1], faces[3*f+2])
	}
	return out, duplicates
}

// dropSmallComponents removes every component (faces connected through
// shared vertices) with fewer faces than ratio times the largest one's.
func dropSmallComponents(faces []uint32, vertexCount int, ratio float64) ([]uint32, int, int) {
	uf := newUnionFind(vertexCount)
	for f := 0; f < len(faces); f += 3 {
		uf.union(faces[f], faces[f+1])
		uf.union(faces[f], faces[f+2])
	}
	size := make([]int, vertexCount)
	largest := 0
	for f := 0; f < len(faces); f += 3 {
		r := uf.find(faces[f])
		size[r]++
		largest = max(largest, size[r])
	}
	minFaces := ratio * float64(largest)
	components, removed := 0, 0
	for _, s := range size {
		if s > 0 && float64(s) < minFaces {
			components++
		}
	}
	out := faces[:0]
	for f := 0; f < len(faces); f += 3 {
		if float64(size[uf.find(faces[f])]) < minFaces {
			removed++
			continue
		}
		out = append(out, faces[f], faces[f+1], faces[f+2])
	}
	return out, components, removed
}

// compact keeps the vertices the faces use, in their original order.
func compact(vertices []float32, faces []uint32) *Mesh {
	remap := make([]uint32, len(vertices)/3)
	for _, v := range faces {
		remap[v] = 1
	}
	kept := uint32(0)
	for v, used := range remap {
		if used != 0 {
			remap[v] = kept + 1
			kept++
		}
	}
	out := &Mesh{Vertices: make([]float32, 0, 3*kept), Indices: make([]uint32, len(faces))}
	for v, r := range remap {
		if r != 0 {
			out.Vertices = append(out.Vertices, vertices[3*v:3*v+3]...)
		}
	}
	for i, v := range faces {
		out.Indices[i] = remap[v] - 1
	}
	return out
}
