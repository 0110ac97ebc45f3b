package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/hy3d/hy3d/engines"
)

// linear is one graph's cost per call: A once, plus B per batch row.
type linear struct {
	A float64 `json:"a_ms"`
	B float64 `json:"b_ms"`
}

func (l linear) cost(rows int) time.Duration {
	return time.Duration((l.A + l.B*float64(rows)) * float64(time.Millisecond))
}

// costModel prices every call the engine makes. The GPU runs one call at a
// time (conditioner, DiT, VAE); the CPU stages after decoding (surface,
// cleanup, export) run beside it.
type costModel struct {
	Name       string  `json:"name"`
	Steps      int     `json:"steps"`
	RowsPerJob int     `json:"rows_per_job"` // 2 under classifier-free guidance
	Condition  linear  `json:"condition"`
	DiT        linear  `json:"dit"`
	Decode     linear  `json:"decode"`  // vae_latents + vae_geometry, per job
	MeshMS     float64 `json:"mesh_ms"` // CPU: surface, cleanup, export, per job
}

// presets are cost models derived from arithmetic, to be replaced by
// measured per-bucket timings (-costs) when a card is at hand.
//
// hy3d-2mini-turbo-3090: Hunyuan3D-2mini-turbo (guidance-distilled: one DiT
// row per job, 5 steps), R = 256 coarse-to-fine, on an RTX 3090: 71 TFLOP/s
// FP16 tensor throughput with FP32 accumulation, taken at 50 % efficiency
// (35.5 TFLOP/s), 936 GB/s. A call's fixed cost a is reading the graph's
// FP16 weights once (parameters × 2 bytes ÷ 936 GB/s) plus 0.2 ms of launch;
// its per-row cost b is the row's FLOPs ÷ 35.5 TFLOP/s.
//
//   - conditioner, DINOv2-giant (1.1 B parameters, 40 layers of width 1536)
//     over 1,370 tokens (37² patches of 14 px at 518², and the class token):
//     2 × 1.1e9 × 1,370 ≈ 3.0 TFLOP in the weights, 40 × 4 × 1,370² × 1,536
//     ≈ 0.46 TFLOP in attention; ≈ 3.5 TFLOP → b ≈ 98.6 ms; a ≈ 2.5 ms.
//   - DiT (0.6 B parameters, width 1024) over 512 latent tokens with 1,370
//     condition tokens: 2 × 0.6e9 × 512 ≈ 0.61 TFLOP for the latent tokens
//     through every weight; the condition tokens' own stream and the joint
//     attention over 1,882 tokens add about as much again and a half:
//     ≈ 1.5 TFLOP a row → b ≈ 42.3 ms; a ≈ 1.5 ms.
//   - decode: vae_latents (≈ 0.2 TFLOP: ≈ 0.2 B parameters over 512
//     tokens) and the geometry decoder over the points coarse-to-fine
//     evaluates at R = 256 (6 % of the 257³ grid in bench/pipeline, ≈ 1.0 M
//     points) at ≈ 3.3 MFLOP a point (Fourier features, one cross-attention
//     of width 1024 to the 512 latents, the MLP): ≈ 3.6 TFLOP → b ≈ 101 ms;
//     a ≈ 0.3 ms.
//   - CPU stages: marching cubes on a 256³ field (11.8 ms) and decimating
//     its 1.1 M faces to 40,000 (0.92 s) took ≈ 0.94 s on this project's
//     2-core machine (README); a GPU server's 8 cores for them: ≈ 235 ms.
var presets = map[string]costModel{
	"hy3d-2mini-turbo-3090": {
		Name: "hy3d-2mini-turbo-3090", Steps: 5, RowsPerJob: 1,
		Condition: linear{A: 2.5, B: 98.6},
		DiT:       linear{A: 1.5, B: 42.3},
		Decode:    linear{A: 0.3, B: 101},
		MeshMS:    235,
	},
}

// loadCosts reads a cost model from a JSON file (the fields of costModel),
// e.g. per-call timings measured with trtexec or hy3d engines verify.
func loadCosts(path string) (costModel, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return costModel{}, err
	}
	var m costModel
	if err := json.Unmarshal(b, &m); err != nil {
		return costModel{}, fmt.Errorf("%s: %w", path, err)
	}
	if m.Steps < 1 || m.RowsPerJob < 1 {
		return costModel{}, fmt.Errorf("%s: steps and rows_per_job must be at least 1", path)
	}
	return m, nil
}

// alone is the time of one job on an idle machine.
func (m costModel) alone() time.Duration {
	return m.Condition.cost(1) + time.Duration(m.Steps)*m.DiT.cost(m.RowsPerJob) + m.Decode.cost(1) +
		time.Duration(m.MeshMS*float64(time.Millisecond))
}

// capacity is the jobs per second the machine can finish when every DiT
// step runs a full batch of batch jobs and the CPU stages overlap the GPU:
// the busier of the GPU and the CPU sets the pace.
func (m costModel) capacity(batch int) float64 {
	b := float64(batch)
	gpuMS := m.Condition.A/b + m.Condition.B +
		float64(m.Steps)*(m.DiT.A/b+m.DiT.B*float64(m.RowsPerJob)) +
		m.Decode.A + m.Decode.B
	return 1000 / max(gpuMS, m.MeshMS)
}

// measuredModel is the cost model of a model set whose plans
// tools/build-engines --time timed on a card: each graph's a + b·batch
// fitted to its buckets; decode is vae_latents for one job plus
// vae_geometry for as many chunks of volume.chunk_points queries as
// pointsPerJob needs; the CPU stages take meshMS.
func measuredModel(dir string, pointsPerJob int, meshMS float64) (costModel, error) {
	set, err := engines.Open(dir)
	if err != nil {
		return costModel{}, err
	}
	planned := set.Graphs[engines.DiT].Plan
	if planned == nil {
		return costModel{}, fmt.Errorf("%s: no plans recorded; build them with tools/build-engines --time", dir)
	}
	path := filepath.Join(set.Dir, filepath.Dir(filepath.FromSlash(planned.File)), engines.TimingsFile)
	t, err := engines.ReadTimings(path)
	if err != nil {
		return costModel{}, fmt.Errorf("%w (tools/build-engines --time writes it)", err)
	}
	fits := map[string]linear{}
	var errs []error
	for _, g := range []string{engines.Conditioner, engines.DiT, engines.VAELatents, engines.VAEGeometry} {
		if len(t.Graphs[g]) == 0 {
			errs = append(errs, fmt.Errorf("%s: %s was not timed", path, g))
			continue
		}
		fits[g] = fitLinear(t.Graphs[g])
	}
	if err := errors.Join(errs...); err != nil {
		return costModel{}, err
	}
	m := set.Manifest
	rows := 1
	if m.Sampler.Guidance == "cfg" {
		rows = 2
	}
	chunks := math.Ceil(float64(pointsPerJob) / float64(max(m.Volume.ChunkPoints, 1)))
	return costModel{
		Name: fmt.Sprintf("%s on %s (TensorRT %s)", t.ModelSet, t.GPU, t.TensorRT), Steps: m.Sampler.Steps, RowsPerJob: rows,
		Condition: fits[engines.Conditioner],
		DiT:       fits[engines.DiT],
		Decode:    linear{B: fits[engines.VAELatents].ms(1) + chunks*fits[engines.VAEGeometry].ms(1)},
		MeshMS:    meshMS,
	}, nil
}

func (l linear) ms(rows int) float64 { return l.A + l.B*float64(rows) }

// fitLinear fits a + b·batch to a graph's bucket timings by least squares,
// keeping both parts non-negative; one bucket alone is all per-row cost.
func fitLinear(buckets []engines.BucketTiming) linear {
	var n, sx, sy, sxx, sxy float64
	for _, bt := range buckets {
		x, y := float64(bt.Batch), bt.MedianMS
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	if den := n*sxx - sx*sx; den > 0 {
		b := (n*sxy - sx*sy) / den
		a := (sy - b*sx) / n
		switch {
		case a >= 0 && b >= 0:
			return linear{A: a, B: b}
		case b < 0: // larger batches no slower: a fixed cost only
			return linear{A: sy / n}
		}
	}
	return linear{B: sxy / sxx} // through the origin
}
