//go:build hy3d_tensorrt

package trt_test

// GPU tests of the paint engines: the tiny paint sets' graphs as TensorRT
// plans against ONNX Runtime on the ONNX files they were built from, with
// the inputs and FP16 bounds of `hy3d engines verify`, and one whole paint of
// the oracle set on TensorRT against the same paint on ONNX Runtime. Like
// gpu_test.go they need a GPU, CUDA, TensorRT 10 with trtexec on PATH and
// the native library built with TensorRT (`make test-gpu`). An external test
// package: it drives package paint and verify, which import trt.

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/paint"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/trt"
	"github.com/hy3d/hy3d/verify"
)

// paintSetNames are the paint sets whose plans these tests build: both
// layouts, turbo's single-row profile, and the oracle for the whole paint.
var paintSetNames = []string{"tiny-paint-2.0", "tiny-paint-2.0-turbo", "tiny-paint-2.1", "tiny-paint-2.0-oracle"}

var builtPaint struct {
	once sync.Once
	sets map[string]*engines.Set
	err  error
}

// paintSets copies the tiny paint sets to a temporary folder and builds
// their plans once per run with tools/build-engines (one timing cache).
// A machine whose TensorRT build finds no usable GPU skips them.
func paintSets(t *testing.T) map[string]*engines.Set {
	t.Helper()
	if _, err := trt.NewRuntime(trt.Options{}); errors.Is(err, tensor.ErrUnavailable) {
		t.Skipf("no usable GPU for TensorRT: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	builtPaint.once.Do(func() {
		root, err := os.MkdirTemp("", "hy3d-trt-paint-")
		if err != nil {
			builtPaint.err = err
			return
		}
		builtPaint.sets, builtPaint.err = trt.BuildTestPlans(context.Background(), root, paintSetNames)
	})
	if builtPaint.err != nil {
		t.Fatal(builtPaint.err)
	}
	return builtPaint.sets
}

func openLoader(t *testing.T, set *engines.Set, kind string) pipeline.Loader {
	t.Helper()
	l, err := pipeline.OpenBackend(context.Background(), set, pipeline.BackendOptions{Kind: kind,
		TRT: trt.Options{CUDAGraphs: true}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// Every graph of every tiny paint set, at one row and at the graph's
// max_batch, within verify's FP16 bounds of ONNX Runtime.
func TestGPUPaintEnginesMatchONNXRuntime(t *testing.T) {
	for name, set := range paintSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, g := range set.Graphs {
				if g.Plan == nil {
					t.Fatalf("%s: no plan built", g.ONNX)
				}
			}
			got := verify.LoaderBackend("trt", set, openLoader(t, set, pipeline.BackendTRT))
			want := verify.LoaderBackend("ort", set, openLoader(t, set, pipeline.BackendORT))
			for _, batch := range []int{1, 64} { // 64: capped at each graph's max_batch
				o := verify.DefaultOptions(&set.Manifest)
				o.Batch = batch
				r, err := verify.Run(context.Background(), set, got, want, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Graphs) != len(set.Graphs) {
					t.Errorf("batch %d: %d graphs compared, the set has %d", batch, len(r.Graphs), len(set.Graphs))
				}
				for _, gr := range r.Graphs {
					for _, c := range gr.Outputs {
						t.Logf("%s batch %d: %s abs max %.3g, median %.3g", gr.Graph, gr.Batch, c.Output, c.Abs.Max, c.Abs.Median)
					}
					if !gr.Pass {
						t.Errorf("%s at batch %d: %+v", gr.Graph, gr.Batch, gr)
					}
				}
			}
		})
	}
}

// cube is the unit cube, two triangles per face, counter-clockwise outside.
func cube() *mesh.Mesh {
	m := &mesh.Mesh{}
	for i := 0; i < 8; i++ {
		m.Vertices = append(m.Vertices, float32(i&1)-0.5, float32(i>>1&1)-0.5, float32(i>>2&1)-0.5)
	}
	for _, q := range [][4]uint32{{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4}, {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}} {
		m.Indices = append(m.Indices, q[0], q[1], q[2], q[0], q[2], q[3])
	}
	return m
}

// halves is a picture whose left half is red and right half blue.
func halves(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			c := color.NRGBA{220, 40, 30, 255}
			if x >= size/2 {
				c = color.NRGBA{30, 60, 220, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// The oracle set painted on TensorRT gives the texture it gives on ONNX
// Runtime: the same seeded paint, base colours within 0.02 on average
// (FP16 engines through the whole diffusion, decode and bake).
func TestGPUPaintOracleOnTensorRT(t *testing.T) {
	set := paintSets(t)["tiny-paint-2.0-oracle"]
	paintOn := func(kind string) *paint.Result {
		p, err := paint.New(context.Background(), paint.Config{Set: set, Loader: openLoader(t, set, kind), Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if p.Backend() != kind {
			t.Fatalf("painter runs on %s, want %s", p.Backend(), kind)
		}
		res, err := p.Paint(context.Background(), cube(), halves(set.Paint.ViewSize), paint.Options{TextureSize: 128, Seed: 3, Steps: 3})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		return res
	}
	got, want := paintOn(pipeline.BackendTRT), paintOn(pipeline.BackendORT)
	a, b := got.Material.BaseColor.Pix, want.Material.BaseColor.Pix
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("textures of %d and %d values", len(a), len(b))
	}
	var sum, worst float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		sum += d
		worst = math.Max(worst, d)
	}
	mean := sum / float64(len(a))
	t.Logf("base colour, TensorRT against ONNX Runtime: mean abs difference %.4g, worst %.4g", mean, worst)
	if mean > 0.02 || math.IsNaN(mean) {
		t.Errorf("mean abs difference %.4g > 0.02", mean)
	}
	if len(got.GLB) == 0 {
		t.Error("no GLB")
	}
}
