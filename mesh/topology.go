package mesh

import "sort"

// Topology summarizes the combinatorial health of a mesh. An edge is an
// unordered vertex pair; it is a boundary edge when one triangle uses it,
// manifold when exactly two do, and non-manifold when more than two do.
type Topology struct {
	Vertices         int // vertices referenced by at least one triangle
	Faces            int
	Edges            int
	BoundaryEdges    int
	NonManifoldEdges int
	// FlippedEdges counts manifold edges whose two triangles traverse them in
	// the same direction: the neighbours disagree on winding.
	FlippedEdges int
	// DegenerateFaces counts triangles that repeat a vertex index.
	DegenerateFaces int
	Components      int // connected components of the face graph (via shared vertices)
}

// Euler is the Euler characteristic V − E + F (2 per closed sphere-like
// component, 0 per torus).
func (t Topology) Euler() int { return t.Vertices - t.Edges + t.Faces }

// Watertight reports whether every edge is shared by exactly two triangles.
func (t Topology) Watertight() bool { return t.BoundaryEdges == 0 && t.NonManifoldEdges == 0 }

// Manifold reports whether no edge is shared by more than two triangles.
func (t Topology) Manifold() bool { return t.NonManifoldEdges == 0 }

type directedEdge struct{ from, to uint32 }

// Analyze computes the topology of m. It costs a sort over 3·F edges.
func Analyze(m *Mesh) Topology {
	t := Topology{Faces: m.TriangleCount()}
	edges := make([]directedEdge, 0, len(m.Indices))
	used := make([]bool, m.VertexCount())
	parent := newUnionFind(m.VertexCount())
	for f := 0; f < t.Faces; f++ {
		a, b, c := m.Indices[3*f], m.Indices[3*f+1], m.Indices[3*f+2]
		if a == b || b == c || a == c {
			t.DegenerateFaces++
		}
		used[a], used[b], used[c] = true, true, true
		parent.union(a, b)
		parent.union(a, c)
		edges = append(edges, directedEdge{a, b}, directedEdge{b, c}, directedEdge{c, a})
	}
	for v, u := range used {
		if u {
			t.Vertices++
			if parent.find(uint32(v)) == uint32(v) {
				t.Components++
			}
		}
	}
	key := func(e directedEdge) (uint32, uint32) {
		if e.from < e.to {
			return e.from, e.to
		}
		return e.to, e.from
	}
	sort.Slice(edges, func(i, j int) bool {
		ai, bi := key(edges[i])
		aj, bj := key(edges[j])
		if ai != aj {
			return ai < aj
		}
		return bi < bj
	})
	for i := 0; i < len(edges); {
		a, b := key(edges[i])
		j := i + 1
		for j < len(edges) {
			if c, d := key(edges[j]); c != a || d != b {
				break
			}
			j++
		}
		t.Edges++
		switch j - i {
		case 1:
			t.BoundaryEdges++
		case 2:
			if edges[i].from == edges[i+1].from {
				t.FlippedEdges++
			}
		default:
			t.NonManifoldEdges++
		}
		i = j
	}
	return t
}

type unionFind []uint32

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = uint32(i)
	}
	return u
}

func (u unionFind) find(x uint32) uint32 {
	for u[x] != x {
		u[x] = u[u[x]]
		x = u[x]
	}
	return x
}

func (u unionFind) union(a, b uint32) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		u[ra] = rb
	}
}
