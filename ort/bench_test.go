package ort

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/internal/graphtest"
	"github.com/hy3d/hy3d/tensor"
)

// BenchmarkRunOverhead measures what one call costs beyond the model itself:
// validation, wrapping the inputs, copying the output.
func BenchmarkRunOverhead(b *testing.B) {
	rt := newRuntime(b)
	s := load(b, rt, "affine", 1)
	in := []tensor.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: ramp(4, 0)}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGraph runs one graph of the embedded tiny set at batch 1 and at its
// maximum, with ONNX Runtime's default thread pools (one thread per core);
// open dims get the manifest's chunk size (the query points of one
// vae_geometry call).
func benchGraph(b *testing.B, graph string) {
	rt, err := NewRuntime(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close() })
	set, err := engines.Tiny()
	if err != nil {
		b.Fatal(err)
	}
	s, err := rt.Load(context.Background(), set, graph)
	if err != nil {
		b.Fatal(err)
	}
	g := set.Graphs[graph]
	batches := []int{1}
	if g.MaxBatch > 1 {
		batches = append(batches, g.MaxBatch)
	}
	for _, batch := range batches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			in := graphtest.Inputs(g, batch, max(1, set.Volume.ChunkPoints), rand.New(rand.NewPCG(1, 2)))
			ctx := context.Background()
			for b.Loop() {
				if _, err := s.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkConditioner(b *testing.B) { benchGraph(b, engines.Conditioner) }
func BenchmarkDiT(b *testing.B)         { benchGraph(b, engines.DiT) }
func BenchmarkVAELatents(b *testing.B)  { benchGraph(b, engines.VAELatents) }
func BenchmarkVAEGeometry(b *testing.B) { benchGraph(b, engines.VAEGeometry) }
