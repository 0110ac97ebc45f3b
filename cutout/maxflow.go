package cutout

import (
	"math"
	"slices"
)

// flowGraph is a flow network for the Boykov–Kolmogorov max-flow algorithm
// (Y. Boykov and V. Kolmogorov, "An Experimental Comparison of
// Min-Cut/Max-Flow Algorithms for Energy Minimization in Vision", IEEE PAMI
// 26(9), 2004): two search trees grown from the terminals, augmentation along
// the path where they meet, and adoption of the orphans a saturated arc
// leaves behind. It is fast on the sparse, short-path graphs of image
// segmentation. Arcs are stored per node (CSR); every arc has a sister in the
// opposite direction. The terminal links of a node are folded into one
// residual: trcap > 0 from the source, < 0 to the sink.
type flowGraph struct {
	first  []int32   // arcs of node i are first[i] .. first[i+1]-1
	trcap  []float32 // residual terminal capacity
	head   []int32   // arc → node it points to
	sister []int32   // arc → reverse arc
	rcap   []float32 // residual capacity of each arc
	cap0   []float32 // capacity of each arc, for reset

	tree   []uint8 // treeFree, treeSource or treeSink
	parent []int32 // arc to the parent, or parentTerminal / parentOrphan / parentNone
	ts     []int32 // time stamp of dist (BK's distance heuristics)
	dist   []int32 // distance to the terminal when ts is current
}

const (
	treeFree uint8 = iota
	treeSource
	treeSink
)

const (
	parentNone     int32 = -1
	parentTerminal int32 = -2
	parentOrphan   int32 = -3
)

// flowEdge is an undirected neighbour pair with a capacity per direction.
type flowEdge struct {
	u, v     int32
	cuv, cvu float32
}

// newFlowGraph builds the network of n nodes with terminal residuals trcap
// (owned by the graph from now on) and the given edges.
func newFlowGraph(trcap []float32, edges []flowEdge) *flowGraph {
	n := len(trcap)
	g := &flowGraph{
		first:  make([]int32, n+1),
		trcap:  trcap,
		head:   make([]int32, 2*len(edges)),
		sister: make([]int32, 2*len(edges)),
		rcap:   make([]float32, 2*len(edges)),
		tree:   make([]uint8, n),
		parent: make([]int32, n),
		ts:     make([]int32, n),
		dist:   make([]int32, n),
	}
	for _, e := range edges {
		g.first[e.u+1]++
		g.first[e.v+1]++
	}
	for i := range n {
		g.first[i+1] += g.first[i]
	}
	fill := make([]int32, n)
	copy(fill, g.first[:n])
	for _, e := range edges {
		a, b := fill[e.u], fill[e.v]
		fill[e.u]++
		fill[e.v]++
		g.head[a], g.rcap[a], g.sister[a] = e.v, e.cuv, b
		g.head[b], g.rcap[b], g.sister[b] = e.u, e.cvu, a
	}
	g.cap0 = slices.Clone(g.rcap)
	return g
}

// reset restores the arcs' capacities and sets new terminal residuals, so
// one graph serves several cuts that differ only in their data terms.
func (g *flowGraph) reset(trcap []float32) {
	copy(g.rcap, g.cap0)
	copy(g.trcap, trcap)
	clear(g.ts)
}

// sourceSide reports whether node i ends on the source side of the minimum
// cut (reachable from the source in the residual network).
func (g *flowGraph) sourceSide(i int) bool { return g.tree[i] == treeSource }

// maxflow runs the algorithm to completion and returns the flow (excluding
// the part of the terminal capacities folded into trcap).
func (g *flowGraph) maxflow() float64 {
	n := len(g.trcap)
	queue := make([]int32, 0, n)
	queued := make([]bool, n)
	push := func(i int32) {
		if !queued[i] {
			queued[i] = true
			queue = append(queue, i)
		}
	}
	for i := range n {
		switch t := g.trcap[i]; {
		case t > 0:
			g.tree[i], g.parent[i] = treeSource, parentTerminal
		case t < 0:
			g.tree[i], g.parent[i] = treeSink, parentTerminal
		default:
			g.tree[i], g.parent[i] = treeFree, parentNone
			continue
		}
		g.dist[i] = 1
		push(int32(i))
	}
	var (
		flow    float64
		orphans []int32
		time    int32
		qhead   int
		current int32 = -1
	)
	for {
		i := current
		if i < 0 || g.parent[i] == parentNone {
			i = -1
			for qhead < len(queue) {
				c := queue[qhead]
				qhead++
				queued[c] = false
				if g.parent[c] != parentNone {
					i = c
					break
				}
			}
			if qhead > 4096 && 2*qhead > len(queue) {
				queue = append(queue[:0], queue[qhead:]...)
				qhead = 0
			}
			if i < 0 {
				return flow
			}
		}
		current = -1
		mid := g.grow(i, push)
		if mid < 0 {
			continue
		}
		current = i // i may hold more paths: look at it again first
		time++
		flow += float64(g.augment(mid, &orphans))
		for len(orphans) > 0 {
			o := orphans[len(orphans)-1]
			orphans = orphans[:len(orphans)-1]
			g.adopt(o, time, push, &orphans)
		}
	}
}

// grow extends i's tree over its free neighbours and returns the arc (from
// the source tree to the sink tree) where the trees meet, or -1.
func (g *flowGraph) grow(i int32, push func(int32)) int32 {
	fromSource := g.tree[i] == treeSource
	for a := g.first[i]; a < g.first[i+1]; a++ {
		out := a // the arc flow would take, in the direction source → sink
		if !fromSource {
			out = g.sister[a]
		}
		if g.rcap[out] <= 0 {
			continue
		}
		j := g.head[a]
		switch {
		case g.tree[j] == treeFree:
			g.tree[j] = g.tree[i]
			g.parent[j] = g.sister[a]
			g.ts[j] = g.ts[i]
			g.dist[j] = g.dist[i] + 1
			push(j)
		case g.tree[j] != g.tree[i]:
			return out
		case g.ts[j] <= g.ts[i] && g.dist[j] > g.dist[i]:
			// a shorter way to the terminal for j: BK's heuristic
			g.parent[j] = g.sister[a]
			g.ts[j] = g.ts[i]
			g.dist[j] = g.dist[i] + 1
		}
	}
	return -1
}

// augment pushes the bottleneck flow along source → … → mid → … → sink and
// records the nodes whose parent link saturated as orphans.
func (g *flowGraph) augment(mid int32, orphans *[]int32) float32 {
	bottleneck := g.rcap[mid]
	for x := g.head[g.sister[mid]]; ; {
		a := g.parent[x]
		if a == parentTerminal {
			bottleneck = min(bottleneck, g.trcap[x])
			break
		}
		bottleneck = min(bottleneck, g.rcap[g.sister[a]])
		x = g.head[a]
	}
	for x := g.head[mid]; ; {
		a := g.parent[x]
		if a == parentTerminal {
			bottleneck = min(bottleneck, -g.trcap[x])
			break
		}
		bottleneck = min(bottleneck, g.rcap[a])
		x = g.head[a]
	}

	g.rcap[g.sister[mid]] += bottleneck
	g.rcap[mid] -= bottleneck
	for x := g.head[g.sister[mid]]; ; {
		a := g.parent[x]
		if a == parentTerminal {
			g.trcap[x] -= bottleneck
			if g.trcap[x] <= 0 {
				g.trcap[x] = 0
				g.parent[x] = parentOrphan
				*orphans = append(*orphans, x)
			}
			break
		}
		g.rcap[a] += bottleneck
		g.rcap[g.sister[a]] -= bottleneck
		if g.rcap[g.sister[a]] <= 0 {
			g.parent[x] = parentOrphan
			*orphans = append(*orphans, x)
		}
		x = g.head[a]
	}
	for x := g.head[mid]; ; {
		a := g.parent[x]
		if a == parentTerminal {
			g.trcap[x] += bottleneck
			if g.trcap[x] >= 0 {
				g.trcap[x] = 0
				g.parent[x] = parentOrphan
				*orphans = append(*orphans, x)
			}
			break
		}
		g.rcap[g.sister[a]] += bottleneck
		g.rcap[a] -= bottleneck
		if g.rcap[a] <= 0 {
			g.parent[x] = parentOrphan
			*orphans = append(*orphans, x)
		}
		x = g.head[a]
	}
	return bottleneck
}

// adopt finds orphan x a new parent in its own tree whose chain reaches the
// terminal, preferring the shortest chain; without one x becomes free, its
// children orphans, and its tree neighbours active again.
func (g *flowGraph) adopt(x int32, time int32, push func(int32), orphans *[]int32) {
	inSource := g.tree[x] == treeSource
	best, bestDist := parentNone, int32(math.MaxInt32)
	for a := g.first[x]; a < g.first[x+1]; a++ {
		j := g.head[a]
		if g.tree[j] != g.tree[x] || !g.carries(a, inSource) {
			continue
		}
		d := g.originDist(j, time)
		if d == math.MaxInt32 {
			continue
		}
		if d < bestDist {
			best, bestDist = a, d
		}
		for y, dy := j, d; g.ts[y] != time; y = g.head[g.parent[y]] {
			g.ts[y], g.dist[y] = time, dy
			dy--
		}
	}
	if best != parentNone {
		g.parent[x] = best
		g.ts[x], g.dist[x] = time, bestDist+1
		return
	}
	for a := g.first[x]; a < g.first[x+1]; a++ {
		j := g.head[a]
		if g.tree[j] != g.tree[x] {
			continue
		}
		if g.carries(a, inSource) {
			push(j)
		}
		if p := g.parent[j]; p >= 0 && g.head[p] == x {
			g.parent[j] = parentOrphan
			*orphans = append(*orphans, j)
		}
	}
	g.tree[x], g.parent[x] = treeFree, parentNone
}

// carries reports whether arc a (from a node to its neighbour j in the same
// tree) can carry that tree's flow: j → node in the source tree, node → j in
// the sink tree.
func (g *flowGraph) carries(a int32, inSource bool) bool {
	if inSource {
		return g.rcap[g.sister[a]] > 0
	}
	return g.rcap[a] > 0
}

// originDist is j's distance to its tree's terminal, or MaxInt32 when its
// chain of parents ends in an orphan.
func (g *flowGraph) originDist(j, time int32) int32 {
	d := int32(0)
	for y := j; ; {
		if g.ts[y] == time {
			return d + g.dist[y]
		}
		p := g.parent[y]
		if p == parentTerminal {
			g.ts[y], g.dist[y] = time, 1
			return d + 1
		}
		if p < 0 {
			return math.MaxInt32
		}
		d++
		y = g.head[p]
	}
}
