package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hy3d/hy3d/engines"
)

// inputProfile is one input's optimization profile, in the graph's input
// order (trtexec takes them as one comma-separated list per selector).
type inputProfile struct {
	name          string
	min, opt, max []int64
}

// graphProfile is what a plan of one graph is built for.
type graphProfile struct {
	inputs  []inputProfile
	buckets []int
	// layerInfo asks trtexec for the engine's layers in its log, for the
	// paint graphs whose attention must be fused (docs/paint-contract.md).
	layerInfo bool
}

// profileFor derives the single optimization profile of a graph from its
// manifest entry:
//   - the batch (first dim) runs from 1 to max_batch; its optimum is the
//     batch the pipeline uses most: 1 for conditioner, vae_latents,
//     vae_geometry and matting (one job at a time), max_batch for dit, which
//     step-level batching fills;
//   - static dims are fixed;
//   - vae_geometry's query count, the only dim the contract leaves open, is
//     optimized for volume.chunk_points (Q) and capped there, down to 1 for
//     a last, shorter chunk.
//
// Any other open dim is an error: building for it would need a range nobody
// chose. Batch buckets (one execution context and CUDA graph each) are the
// powers of two below max_batch plus max_batch itself; dit under
// classifier-free guidance always runs two rows per job, so its buckets are
// the even ones (2, 4, 8, ...). custom replaces the buckets when non-empty.
func profileFor(m *engines.Manifest, graph string, custom []int) (graphProfile, error) {
	g, ok := m.Graphs[graph]
	if !ok {
		return graphProfile{}, fmt.Errorf("model set %q has no graph %q", m.Name, graph)
	}
	maxBatch := int64(g.MaxBatch)
	if maxBatch < 1 {
		return graphProfile{}, fmt.Errorf("graph %s: max_batch %d < 1", graph, g.MaxBatch)
	}
	optBatch := int64(1)
	if graph == engines.DiT || (m.IsPaint() && graph == engines.PaintUNet) {
		optBatch = maxBatch
	}
	var p graphProfile
	for _, in := range g.Inputs {
		if len(in.Shape) == 0 || in.Shape[0] != -1 {
			return graphProfile{}, fmt.Errorf("graph %s input %s shape %v: the first dim must be the dynamic batch (-1)",
				graph, in.Name, in.Shape)
		}
		ip := inputProfile{name: in.Name}
		ip.min, ip.opt, ip.max = slices.Clone(in.Shape), slices.Clone(in.Shape), slices.Clone(in.Shape)
		ip.min[0], ip.opt[0], ip.max[0] = 1, optBatch, maxBatch
		for k := 1; k < len(in.Shape); k++ {
			switch {
			case in.Shape[k] >= 1:
			case graph == engines.VAEGeometry && in.Name == "queries" && k == 1:
				q := int64(m.Volume.ChunkPoints)
				if q < 1 {
					return graphProfile{}, fmt.Errorf("graph %s: volume.chunk_points %d < 1 cannot size the query count", graph, q)
				}
				ip.min[k], ip.opt[k], ip.max[k] = 1, q, q
			default:
				return graphProfile{}, fmt.Errorf("graph %s input %s shape %v: dim %d is open, and only vae_geometry's query "+
					"count (volume.chunk_points) has a rule; fix the dim in the manifest and the ONNX export", graph, in.Name, in.Shape, k)
			}
		}
		p.inputs = append(p.inputs, ip)
	}
	if len(p.inputs) == 0 {
		return graphProfile{}, fmt.Errorf("graph %s has no inputs", graph)
	}
	if len(custom) > 0 {
		for i, b := range custom {
			if b < 1 || int64(b) > maxBatch || (i > 0 && b <= custom[i-1]) {
				return graphProfile{}, fmt.Errorf("graph %s: buckets %v must ascend strictly within 1..%d", graph, custom, maxBatch)
			}
		}
		p.buckets = slices.Clone(custom)
	} else {
		p.buckets = defaultBuckets(int(maxBatch), rowsPerJob(m, graph))
	}
	p.layerInfo = m.IsPaint() && slices.Contains([]string{engines.PaintUNet, engines.PaintRef, engines.Delight}, graph)
	return p, nil
}

// rowsPerJob is how many rows of a graph one job always takes: two for a
// CFG DiT, the guidance branches for paint_unet, else one.
func rowsPerJob(m *engines.Manifest, graph string) int {
	switch {
	case m.IsPaint() && graph == engines.PaintUNet && m.Paint != nil:
		return m.Paint.Sampler.RowsPerJob()
	case !m.IsPaint() && graph == engines.DiT && m.Sampler.Guidance == "cfg":
		return 2
	}
	return 1
}

// defaultBuckets are unit·2^k below maxBatch, then maxBatch itself.
func defaultBuckets(maxBatch, unit int) []int {
	if unit > maxBatch {
		unit = 1
	}
	var buckets []int
	for b := unit; b < maxBatch; b *= 2 {
		buckets = append(buckets, b)
	}
	return append(buckets, maxBatch)
}

// shapes formats one selector of a profile as trtexec wants it:
// name:AxBxC,name2:D.
func (p graphProfile) shapes(pick func(inputProfile) []int64) string {
	parts := make([]string, len(p.inputs))
	for i, in := range p.inputs {
		dims := pick(in)
		ds := make([]string, len(dims))
		for k, d := range dims {
			ds[k] = strconv.FormatInt(d, 10)
		}
		parts[i] = in.name + ":" + strings.Join(ds, "x")
	}
	return strings.Join(parts, ",")
}

// record is the profile as the manifest stores it.
func (p graphProfile) record() map[string]engines.Profile {
	out := make(map[string]engines.Profile, len(p.inputs))
	for _, in := range p.inputs {
		out[in.name] = engines.Profile{Min: in.min, Opt: in.opt, Max: in.max}
	}
	return out
}
