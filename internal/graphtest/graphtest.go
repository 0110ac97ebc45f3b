// Package graphtest draws random inputs for a model set's graphs, for the
// backend tests (ort, trt) that run the same graphs on both sides and need
// inputs of any batch and open size. verify.Inputs is the seeded,
// reproducible counterpart for references; it sits above the pipeline and
// so above the backends, which cannot import it.
package graphtest

import (
	"math/rand/v2"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// Inputs draws one batch for graph g: batch rows, every other open dim (the
// number of query points) of size open, values in the ranges the pipeline
// feeds each tensor: σ in [0, 1], guidance scales in [1, 10], query points
// inside the decoding box, unit normal elsewhere.
func Inputs(g engines.Graph, batch, open int, rng *rand.Rand) []tensor.Tensor {
	out := make([]tensor.Tensor, len(g.Inputs))
	for i, spec := range g.Inputs {
		shape := make([]int64, len(spec.Shape))
		for k, d := range spec.Shape {
			switch {
			case k == 0:
				shape[k] = int64(batch)
			case d < 0:
				shape[k] = int64(open)
			default:
				shape[k] = d
			}
		}
		data := make([]float32, tensor.Elements(shape))
		for j := range data {
			switch spec.Name {
			case "timestep":
				data[j] = rng.Float32()
			case "guidance":
				data[j] = 1 + 9*rng.Float32()
			case "queries":
				data[j] = 2.02*rng.Float32() - 1.01
			default:
				data[j] = float32(rng.NormFloat64())
			}
		}
		out[i] = tensor.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return out
}
