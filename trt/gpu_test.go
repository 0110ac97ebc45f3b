//go:build hy3d_tensorrt

package trt

// GPU tests: the TensorRT engines of the tiny model sets against ONNX
// Runtime running the very ONNX files they were built from. They need a GPU,
// CUDA, TensorRT 10 with trtexec on PATH, and the native library built with
// TensorRT; `make test-gpu` provides all of it (docs/tensorrt.md). Plans are
// built once per run by tools/build-engines into a temporary copy of each
// set (BuildTestPlans).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/internal/graphtest"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/tensor"
)

var builtSets struct {
	once sync.Once
	sets map[string]*engines.Set
	err  error
}

// tinySets builds the plans of engines/tiny and engines/tiny-turbo once.
func tinySets(t *testing.T) map[string]*engines.Set {
	t.Helper()
	builtSets.once.Do(func() {
		root, err := os.MkdirTemp("", "hy3d-trt-gpu-")
		if err != nil {
			builtSets.err = err
			return
		}
		builtSets.sets, builtSets.err = BuildTestPlans(context.Background(), root, tinySetNames)
	})
	if builtSets.err != nil {
		t.Fatal(builtSets.err)
	}
	return builtSets.sets
}

func gpuRuntime(t *testing.T, graphs bool) *Runtime {
	t.Helper()
	r, err := NewRuntime(Options{Device: 0, CUDAGraphs: graphs})
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	return r
}

// runner is a loaded graph of either backend.
type runner interface {
	Run(context.Context, []tensor.Tensor) ([]tensor.Tensor, error)
}

// runBoth runs the same inputs through a and b.
func runBoth(t *testing.T, what string, a, b runner, in []tensor.Tensor) (got, want []tensor.Tensor) {
	t.Helper()
	got, err := a.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want, err = b.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("%s (reference): %v", what, err)
	}
	return got, want
}

func loadGPU(t *testing.T, r *Runtime, set *engines.Set, graph string) *Engine {
	t.Helper()
	e, err := r.Load(context.Background(), set, graph)
	if err != nil {
		t.Fatalf("Load %s: %v", graph, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestGPURuntimeInfo(t *testing.T) {
	info := gpuRuntime(t, true).Info()
	if !strings.HasPrefix(info.TensorRT, "10.") || info.CUDARuntime == "" || info.CUDADriver == "" {
		t.Errorf("Info = %+v", info)
	}
	if len(info.Devices) == 0 || info.Devices[0].Name == "" || info.Devices[0].TotalMemory == 0 ||
		!strings.Contains(info.Devices[0].ComputeCapability, ".") {
		t.Errorf("devices = %+v", info.Devices)
	}
	if _, err := NewRuntime(Options{Device: len(info.Devices)}); !errors.Is(err, tensor.ErrUnavailable) {
		t.Errorf("NewRuntime on a missing device = %v", err)
	}
}

func TestGPUEnginesMatchONNXRuntime(t *testing.T) {
	sets := tinySets(t)
	r := gpuRuntime(t, true)
	ref, err := ort.NewRuntime(ort.Options{})
	if err != nil {
		t.Fatalf("ort.NewRuntime: %v", err)
	}
	t.Cleanup(func() { _ = ref.Close() })
	for name, set := range sets {
		for _, graph := range engines.RequiredGraphs {
			t.Run(name+"/"+graph, func(t *testing.T) {
				e := loadGPU(t, r, set, graph)
				s, err := ref.Load(context.Background(), set, graph)
				if err != nil {
					t.Fatalf("ort Load: %v", err)
				}
				defer s.Close()
				rng := rand.New(rand.NewPCG(1, uint64(len(graph))))
				for _, batch := range []int{1, 3, e.MaxBatch()} {
					in := graphtest.Inputs(set.Graphs[graph], batch, set.Volume.ChunkPoints, rng)
					got, want := runBoth(t, fmt.Sprintf("batch %d: trt against ort", batch), e, s, in)
					for i := range want {
						if !slices.Equal(got[i].Shape, want[i].Shape) {
							t.Errorf("batch %d: %s shape %v, ort %v", batch, got[i].Name, got[i].Shape, want[i].Shape)
							continue
						}
						if err := closeEnough(got[i].Data, want[i].Data); err != nil {
							t.Errorf("batch %d: %s: %v", batch, got[i].Name, err)
						}
					}
				}
			})
		}
	}
}

func TestGPUGraphReplayEqualsPlainEnqueue(t *testing.T) {
	set := tinySets(t)["tiny"]
	withGraphs := loadGPU(t, gpuRuntime(t, true), set, engines.DiT)
	plain := loadGPU(t, gpuRuntime(t, false), set, engines.DiT)
	// Without graphs every bucket ran once at load (the warm-up).
	atLoad, _ := plain.be.(*nativeEngine).stats()
	if atLoad.plainEnqueues != uint64(len(atLoad.buckets)) {
		t.Errorf("plain engine after load: %+v, want one warm-up enqueue per bucket", atLoad)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, batch := range []int{2, 5, 16} {
		in := graphtest.Inputs(set.Graphs[engines.DiT], batch, 0, rng)
		a, b := runBoth(t, fmt.Sprintf("batch %d: graphs against enqueue", batch), withGraphs, plain, in)
		// The same kernels on the same data: bit for bit.
		if !slices.Equal(a[0].Data, b[0].Data) {
			t.Errorf("batch %d: graph replay and enqueueV3 differ", batch)
		}
	}
	gs, _ := withGraphs.be.(*nativeEngine).stats()
	ps, _ := plain.be.(*nativeEngine).stats()
	if gs.graphLaunches != 3 || gs.captureFailures != 0 || ps.graphLaunches != 0 || ps.plainEnqueues-atLoad.plainEnqueues != 3 {
		t.Errorf("stats: graphs %+v, plain %+v", gs, ps)
	}
}

// vae_geometry's query count alternates between a decode's full chunks and
// its last, shorter one: each count keeps its own graph.
func TestGPUQueryCountsKeepTheirGraphs(t *testing.T) {
	set := tinySets(t)["tiny"]
	e := loadGPU(t, gpuRuntime(t, true), set, engines.VAEGeometry)
	plain := loadGPU(t, gpuRuntime(t, false), set, engines.VAEGeometry)
	ne := e.be.(*nativeEngine)
	before, _ := ne.stats()
	rng := rand.New(rand.NewPCG(3, 3))
	chunk := set.Volume.ChunkPoints
	for _, q := range []int{chunk, 1000, 1000, chunk, 1000, chunk} {
		in := graphtest.Inputs(set.Graphs[engines.VAEGeometry], 1, q, rng)
		a, b := runBoth(t, fmt.Sprintf("Q %d: graphs against enqueue", q), e, plain, in)
		if !slices.Equal(a[0].Data, b[0].Data) {
			t.Errorf("Q %d: graph and enqueueV3 differ", q)
		}
	}
	after, _ := ne.stats()
	// Captured at load for Q = chunk, once more for 1000 (after its warm-up
	// run); every other run replays one of the two.
	if got := after.graphCaptures - before.graphCaptures; got != 1 {
		t.Errorf("%d captures after load, want 1 (stats %+v)", got, after)
	}
	if got := after.graphLaunches - before.graphLaunches; got != 5 {
		t.Errorf("%d graph launches, want 5", got)
	}
}

// A capture that fails (forced by breakCaptures, which makes CUDA invalidate
// it) leaves the engine on plain enqueueV3 with the same answers.
func TestGPUCaptureFailureFallsBack(t *testing.T) {
	set := tinySets(t)["tiny"]
	g := set.Graphs[engines.VAELatents]
	plan, err := readPlan(set, engines.VAELatents, *g.Plan)
	if err != nil {
		t.Fatal(err)
	}
	native, st, msg := loadNative(plan, loadOptions{buckets: g.Plan.BatchBuckets, graphs: true, breakCaptures: true})
	if st != statusOK {
		t.Fatalf("load with broken captures: %s", msg)
	}
	inputs, outputs, st, msg := native.describe()
	if st != statusOK {
		native.close()
		t.Fatalf("describe: %s", msg)
	}
	broken := newEngine(engines.VAELatents, inputs, outputs, native)
	t.Cleanup(func() { _ = broken.Close() })
	plain := loadGPU(t, gpuRuntime(t, false), set, engines.VAELatents)

	s, _ := native.stats()
	if s.graphCaptures != 0 || s.captureFailures != uint64(len(s.buckets)) {
		t.Fatalf("after load: %+v, want every bucket's capture failed", s)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, batch := range []int{1, 3, broken.MaxBatch()} {
		in := graphtest.Inputs(g, batch, 0, rng)
		a, b := runBoth(t, fmt.Sprintf("batch %d: broken captures against enqueue", batch), broken, plain, in)
		if !slices.Equal(a[0].Data, b[0].Data) {
			t.Errorf("batch %d: the fallback and plain enqueueV3 differ", batch)
		}
	}
	if s, _ := native.stats(); s.graphLaunches != 0 || s.captureFailures != uint64(len(s.buckets)) {
		t.Errorf("after runs: %+v, want no graph and no further capture attempt", s)
	}
}

func TestGPURefusesIncompatiblePlans(t *testing.T) {
	set := tinySets(t)["tiny"]
	r := gpuRuntime(t, true)
	g := set.Graphs[engines.VAELatents]
	other := *g.Plan
	other.TensorRT = "9.9.9"
	alt := *set
	alt.Graphs = maps.Clone(set.Graphs)
	g.Plan = &other
	alt.Graphs[engines.VAELatents] = g
	_, err := r.Load(context.Background(), &alt, engines.VAELatents)
	if !errors.Is(err, tensor.ErrIncompatible) || !strings.Contains(err.Error(), "9.9.9") || !strings.Contains(err.Error(), r.Info().TensorRT) {
		t.Errorf("Load of a plan recorded for 9.9.9 = %v", err)
	}
}

func TestGPUConcurrentRunsMatchSerialOnes(t *testing.T) {
	set := tinySets(t)["tiny"]
	e := loadGPU(t, gpuRuntime(t, true), set, engines.DiT)
	rng := rand.New(rand.NewPCG(5, 5))
	type job struct {
		in   []tensor.Tensor
		want []float32
	}
	jobs := make([]job, 12)
	for i := range jobs {
		jobs[i].in = graphtest.Inputs(set.Graphs[engines.DiT], 1+i%e.MaxBatch(), 0, rng)
		out, err := e.Run(context.Background(), jobs[i].in)
		if err != nil {
			t.Fatal(err)
		}
		jobs[i].want = out[0].Data
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(jobs)*3; i += 4 {
				j := jobs[i%len(jobs)]
				out, err := e.Run(context.Background(), j.in)
				if err != nil {
					t.Errorf("Run: %v", err)
					return
				}
				if !slices.Equal(out[0].Data, j.want) {
					t.Errorf("job %d: a concurrent run differs from the serial one", i%len(jobs))
				}
			}
		})
	}
	wg.Wait()
}

func TestGPULogsReachOptionsLog(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	r, err := NewRuntime(Options{CUDAGraphs: true, Log: func(level LogLevel, msg string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, msg)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer setLog(nil)
	e := loadGPU(t, r, tinySets(t)["tiny"], engines.VAELatents)
	_ = e.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "TensorRT engine loaded") }) {
		t.Errorf("no load message among %q", lines)
	}
}
