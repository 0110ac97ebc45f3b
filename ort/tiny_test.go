package ort

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/internal/graphtest"
	"github.com/hy3d/hy3d/tensor"
)

// referenceSets are the model sets every build must run on the CPU: the
// embedded tiny set and, once generated, its guidance-distilled sibling.
func referenceSets(t testing.TB) map[string]*engines.Set {
	t.Helper()
	tiny, err := engines.Tiny()
	if err != nil {
		t.Fatalf("engines.Tiny: %v", err)
	}
	silhouette, err := engines.Default()
	if err != nil {
		t.Fatalf("engines.Default: %v", err)
	}
	sets := map[string]*engines.Set{"tiny": tiny, "silhouette": silhouette}
	turbo := filepath.Join("..", "engines", "tiny-turbo")
	if _, err := os.Stat(filepath.Join(turbo, "manifest.json")); err == nil {
		set, err := engines.Open(turbo)
		if err != nil {
			t.Fatalf("engines.Open(%s): %v", turbo, err)
		}
		sets["tiny-turbo"] = set
	}
	return sets
}

func graphNames(set *engines.Set) []string {
	names := make([]string, 0, len(set.Graphs))
	for name := range set.Graphs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// rows returns row r of a batched tensor's data.
func rows(t tensor.Tensor, r int) []float32 {
	n := len(t.Data) / int(t.Shape[0])
	return t.Data[r*n : (r+1)*n]
}

// stack concatenates single-row inputs into one batch, tensor by tensor.
func stack(parts ...[]tensor.Tensor) []tensor.Tensor {
	out := make([]tensor.Tensor, len(parts[0]))
	for i := range out {
		shape := slices.Clone(parts[0][i].Shape)
		shape[0] = int64(len(parts))
		var data []float32
		for _, p := range parts {
			data = append(data, p[i].Data...)
		}
		out[i] = tensor.Tensor{Name: parts[0][i].Name, Shape: shape, Data: data}
	}
	return out
}

// TestReferenceEnginesRunAtEveryBatch runs every graph of every reference set
// at batch 1, 2 and 3 (up to the graph's maximum): output shapes must follow
// the manifest, values must be finite, and each row of a batch must equal
// what the same row gives alone, since the pipeline batches unrelated jobs
// into one call; different inputs must give different outputs.
func TestReferenceEnginesRunAtEveryBatch(t *testing.T) {
	rt := newRuntime(t)
	for setName, set := range referenceSets(t) {
		for _, graph := range graphNames(set) {
			t.Run(setName+"/"+graph, func(t *testing.T) {
				g := set.Graphs[graph]
				s, err := rt.Load(context.Background(), set, graph)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if s.MaxBatch() != g.MaxBatch {
					t.Fatalf("MaxBatch %d, manifest %d", s.MaxBatch(), g.MaxBatch)
				}
				rng := rand.New(rand.NewPCG(1, uint64(len(graph))))
				single := [3][]tensor.Tensor{}
				alone := [3][]tensor.Tensor{}
				for r := range single {
					single[r] = graphtest.Inputs(g, 1, 7, rng)
					alone[r], err = s.Run(context.Background(), single[r])
					if err != nil {
						t.Fatalf("batch 1: %v", err)
					}
				}
				for o := range alone[0] {
					if _, diff := worst(alone[0][o].Data, alone[1][o].Data); diff == 0 {
						t.Errorf("output %s is the same for two different inputs", alone[0][o].Name)
					}
				}
				for batch := 1; batch <= min(3, g.MaxBatch); batch++ {
					out, err := s.Run(context.Background(), stack(single[:batch]...))
					if err != nil {
						t.Fatalf("batch %d: %v", batch, err)
					}
					checkOutputs(t, g, batch, out)
					for r := range batch {
						for o := range out {
							if i, diff := worst(rows(out[o], r), alone[r][o].Data); diff > 1e-4 {
								t.Errorf("batch %d row %d output %s[%d]: %v batched, %v alone",
									batch, r, out[o].Name, i, rows(out[o], r)[i], alone[r][o].Data[i])
							}
						}
					}
				}
				over := graphtest.Inputs(g, g.MaxBatch+1, 7, rng)
				if _, err := s.Run(context.Background(), over); !errors.Is(err, tensor.ErrBatch) {
					t.Errorf("batch %d above max %d: %v, want ErrBatch", g.MaxBatch+1, g.MaxBatch, err)
				}
			})
		}
	}
}

func checkOutputs(t *testing.T, g engines.Graph, batch int, out []tensor.Tensor) {
	t.Helper()
	if len(out) != len(g.Outputs) {
		t.Fatalf("batch %d: %d outputs, manifest lists %d", batch, len(out), len(g.Outputs))
	}
	for i, spec := range g.Outputs {
		o := out[i]
		if o.Name != spec.Name || len(o.Shape) != len(spec.Shape) || o.Shape[0] != int64(batch) {
			t.Fatalf("batch %d: output %s %v, manifest %s %v", batch, o.Name, o.Shape, spec.Name, spec.Shape)
		}
		for k, d := range spec.Shape[1:] {
			if d >= 0 && o.Shape[k+1] != d {
				t.Fatalf("batch %d: output %s %v, manifest %v", batch, o.Name, o.Shape, spec.Shape)
			}
		}
		if int64(len(o.Data)) != o.Elements() {
			t.Fatalf("batch %d: output %s has %d values for %v", batch, o.Name, len(o.Data), o.Shape)
		}
		for j, v := range o.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("batch %d: output %s[%d] = %v", batch, o.Name, j, v)
			}
		}
	}
}

// worst is the index and size of the largest difference between a and b,
// relative to max(1, |b|).
func worst(a, b []float32) (int, float64) {
	at, most := 0, 0.0
	if len(a) != len(b) {
		return 0, math.Inf(1)
	}
	for i := range a {
		d := math.Abs(float64(a[i]-b[i])) / math.Max(1, math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return i, math.Inf(1)
		}
		if d > most {
			at, most = i, d
		}
	}
	return at, most
}
