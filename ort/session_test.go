package ort

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

func TestRunComputesAffineAtEveryBatch(t *testing.T) {
	rt := newRuntime(t)
	for _, model := range []string{"affine", "affine_legacy"} {
		s := load(t, rt, model, 3)
		if got := s.Inputs(); len(got) != 1 || got[0].Name != "x" || !slices.Equal(got[0].Dims, []int64{-1, 4}) || got[0].DType != tensor.Float32 {
			t.Fatalf("%s: Inputs = %+v, want x [-1 4] float32 only", model, got)
		}
		for batch := 1; batch <= 3; batch++ {
			x := ramp(4*batch, -3)
			out, err := s.Run(context.Background(), []tensor.Tensor{{Name: "x", Shape: []int64{int64(batch), 4}, Data: x}})
			if err != nil {
				t.Fatalf("%s batch %d: %v", model, batch, err)
			}
			if len(out) != 1 || out[0].Name != "y" || !slices.Equal(out[0].Shape, []int64{int64(batch), 4}) {
				t.Fatalf("%s batch %d: outputs %v", model, batch, out)
			}
			for i, v := range out[0].Data {
				if want := 2*x[i] + 1; v != want {
					t.Fatalf("%s batch %d: y[%d] = %v, want %v", model, batch, i, v, want)
				}
			}
		}
	}
}

func TestRunFeedsInputsByNameWhateverTheirOrder(t *testing.T) {
	rt := newRuntime(t)
	s := load(t, rt, "scale", 4)
	a := tensor.Tensor{Name: "a", Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	ts := tensor.Tensor{Name: "t", Shape: []int64{2}, Data: []float32{10, -1}}
	want := []float32{10, 20, 30, -4, -5, -6}
	for _, order := range [][]tensor.Tensor{{a, ts}, {ts, a}} {
		out, err := s.Run(context.Background(), order)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].Data, want) || !slices.Equal(out[0].Shape, []int64{2, 3}) {
			t.Fatalf("y = %v %v, want [2 3] %v", out[0].Shape, out[0].Data, want)
		}
	}
}

func TestRunRejectsMisuseBeforeRunning(t *testing.T) {
	rt := newRuntime(t)
	affine := load(t, rt, "affine", 2)
	scale := load(t, rt, "scale", 2)
	x := func(shape []int64, n int) tensor.Tensor {
		return tensor.Tensor{Name: "x", Shape: shape, Data: make([]float32, n)}
	}
	tests := []struct {
		name   string
		s      *Session
		inputs []tensor.Tensor
		want   error
	}{
		{"no inputs", affine, nil, tensor.ErrMissingInput},
		{"one input of two", scale, []tensor.Tensor{{Name: "a", Shape: []int64{1, 3}, Data: make([]float32, 3)}}, tensor.ErrMissingInput},
		{"unknown name", affine, []tensor.Tensor{x([]int64{1, 4}, 4), {Name: "z", Shape: []int64{1, 4}, Data: make([]float32, 4)}}, tensor.ErrUnknownInput},
		{"same input twice", affine, []tensor.Tensor{x([]int64{1, 4}, 4), x([]int64{1, 4}, 4)}, tensor.ErrUnknownInput},
		{"static dim mismatch", affine, []tensor.Tensor{x([]int64{1, 5}, 5)}, tensor.ErrShape},
		{"rank too low", affine, []tensor.Tensor{x([]int64{4}, 4)}, tensor.ErrShape},
		{"rank too high", affine, []tensor.Tensor{x([]int64{1, 4, 1}, 4)}, tensor.ErrShape},
		{"data shorter than shape", affine, []tensor.Tensor{x([]int64{2, 4}, 7)}, tensor.ErrShape},
		{"data longer than shape", affine, []tensor.Tensor{x([]int64{1, 4}, 8)}, tensor.ErrShape},
		{"zero batch", affine, []tensor.Tensor{x([]int64{0, 4}, 0)}, tensor.ErrShape},
		{"batch above maximum", affine, []tensor.Tensor{x([]int64{3, 4}, 12)}, tensor.ErrBatch},
		{"inconsistent batch", scale, []tensor.Tensor{
			{Name: "a", Shape: []int64{2, 3}, Data: make([]float32, 6)},
			{Name: "t", Shape: []int64{1}, Data: make([]float32, 1)},
		}, tensor.ErrShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.s.Run(context.Background(), tc.inputs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, %v; want %v", out, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.s.Name()) {
				t.Errorf("error %q does not name the graph %q", err, tc.s.Name())
			}
		})
	}
}

func TestLoadRejectsBadModels(t *testing.T) {
	rt := newRuntime(t)
	affine := testdata(t, "affine")
	tests := []struct {
		name     string
		onnx     []byte
		want     error
		contains []string
	}{
		{"empty file", nil, tensor.ErrModelFile, nil},
		{"not a model", []byte("this is not an onnx model\n"), tensor.ErrModelFile, []string{"protobuf parsing failed"}},
		{"truncated model", affine[:len(affine)-9], tensor.ErrModelFile, []string{"protobuf parsing failed"}},
		{"operator ONNX Runtime does not know", testdata(t, "unknown_op"), tensor.ErrModelFile, []string{"NoSuchOp"}},
		{"int64 input", testdata(t, "int64_input"), tensor.ErrDType, []string{`"x"`, "int64", "float32"}},
		{"int64 output", testdata(t, "int64_output"), tensor.ErrDType, []string{`"y"`, "int64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := rt.LoadBytes(context.Background(), "bad", tc.onnx, 1)
			if !errors.Is(err, tc.want) {
				t.Fatalf("LoadBytes = %v, %v; want %v", s, err, tc.want)
			}
			for _, c := range tc.contains {
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c)) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
		})
	}
	if _, err := rt.LoadBytes(context.Background(), "affine", affine, 0); err == nil {
		t.Error("LoadBytes accepted max batch 0")
	}
}

func affineSet(files fstest.MapFS, x, y []int64) *engines.Set {
	return &engines.Set{
		Manifest: engines.Manifest{Name: "test", Graphs: map[string]engines.Graph{
			"affine": {
				ONNX:     "affine.onnx",
				Inputs:   []engines.TensorSpec{{Name: "x", Shape: x}},
				Outputs:  []engines.TensorSpec{{Name: "y", Shape: y}},
				MaxBatch: 2,
			},
		}},
		FS: files,
	}
}

func TestLoadReadsTheGraphNamedInTheManifest(t *testing.T) {
	rt := newRuntime(t)
	files := fstest.MapFS{"affine.onnx": {Data: testdata(t, "affine")}}
	s, err := rt.Load(context.Background(), affineSet(files, []int64{-1, 4}, []int64{-1, 4}), "affine")
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxBatch() != 2 {
		t.Errorf("MaxBatch = %d, want the manifest's 2", s.MaxBatch())
	}
	if _, err := s.Run(context.Background(), []tensor.Tensor{{Name: "x", Shape: []int64{3, 4}, Data: make([]float32, 12)}}); !errors.Is(err, tensor.ErrBatch) {
		t.Errorf("batch 3 of max 2: %v, want ErrBatch", err)
	}
}

func TestLoadRejectsMissingFilesAndManifestMismatch(t *testing.T) {
	rt := newRuntime(t)
	files := fstest.MapFS{"affine.onnx": {Data: testdata(t, "affine")}}
	tests := []struct {
		name  string
		set   *engines.Set
		graph string
		also  error
	}{
		{"file missing", affineSet(fstest.MapFS{}, []int64{-1, 4}, []int64{-1, 4}), "affine", fs.ErrNotExist},
		{"graph not in manifest", affineSet(files, []int64{-1, 4}, []int64{-1, 4}), "dit", nil},
		{"static dim differs", affineSet(files, []int64{-1, 5}, []int64{-1, 4}), "affine", nil},
		{"rank differs", affineSet(files, []int64{-1, 4}, []int64{-1, 4, 1}), "affine", nil},
		{"input named differently", &engines.Set{Manifest: engines.Manifest{Name: "test", Graphs: map[string]engines.Graph{"affine": {
			ONNX: "affine.onnx", Inputs: []engines.TensorSpec{{Name: "image", Shape: []int64{-1, 4}}},
			Outputs: []engines.TensorSpec{{Name: "y", Shape: []int64{-1, 4}}}, MaxBatch: 1,
		}}}, FS: files}, "affine", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := rt.Load(context.Background(), tc.set, tc.graph)
			if !errors.Is(err, tensor.ErrModelFile) {
				t.Fatalf("Load = %v, %v; want ErrModelFile", s, err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("Load = %v; want it to wrap %v too", err, tc.also)
			}
		})
	}
}

func TestLoadPinsDimsTheManifestFixes(t *testing.T) {
	rt := newRuntime(t)
	set := &engines.Set{Manifest: engines.Manifest{Name: "test", Graphs: map[string]engines.Graph{"identity": {
		ONNX: "identity.onnx", MaxBatch: 4,
		Inputs:  []engines.TensorSpec{{Name: "x", Shape: []int64{-1, 5}}},
		Outputs: []engines.TensorSpec{{Name: "y", Shape: []int64{-1, 5}}},
	}}}, FS: fstest.MapFS{"identity.onnx": {Data: testdata(t, "identity")}}}
	s, err := rt.Load(context.Background(), set, "identity")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Inputs()[0].Dims; !slices.Equal(got, []int64{-1, 5}) {
		t.Fatalf("input dims %v, want [-1 5]", got)
	}
	if _, err := s.Run(context.Background(), []tensor.Tensor{{Name: "x", Shape: []int64{1, 6}, Data: make([]float32, 6)}}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("dim 6 where the manifest says 5: %v, want ErrShape", err)
	}
	out, err := s.Run(context.Background(), []tensor.Tensor{{Name: "x", Shape: []int64{2, 5}, Data: ramp(10, 0)}})
	if err != nil || !slices.Equal(out[0].Data, ramp(10, 0)) {
		t.Errorf("Run = %v, %v; want the input back", out, err)
	}
}

func TestInfoIsACopy(t *testing.T) {
	rt := newRuntime(t)
	s := load(t, rt, "affine", 1)
	s.Inputs()[0].Dims[1] = 99
	s.Outputs()[0].Dims[1] = 99
	if s.Inputs()[0].Dims[1] != 4 || s.Outputs()[0].Dims[1] != 4 {
		t.Fatal("changing the returned Info changed the session")
	}
}

func TestRunReturnsContextErrorWhenCancelledBeforehand(t *testing.T) {
	rt := newRuntime(t)
	s := load(t, rt, "affine", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Run(ctx, []tensor.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: make([]float32, 4)}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if _, err := rt.LoadBytes(ctx, "affine", testdata(t, "affine"), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("LoadBytes = %v, want context.Canceled", err)
	}
}

// The spin model loops 2^62 times, so these runs can only end through the
// terminate flag the context raises.
func TestRunStopsInFlightWhenContextEnds(t *testing.T) {
	rt := newRuntime(t)
	s := load(t, rt, "spin", 1)
	in := []tensor.Tensor{{Name: "x", Shape: []int64{1, 1}, Data: []float32{0}}}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := s.Run(ctx, in); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Run(ctx, in); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run past its deadline: %v, want context.DeadlineExceeded", err)
	}

	// The session is still usable afterwards.
	affine := load(t, rt, "affine", 1)
	if _, err := affine.Run(context.Background(), []tensor.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: make([]float32, 4)}}); err != nil {
		t.Fatal(err)
	}
}

func TestClosedSessionsAndRuntimesFailWithErrClosed(t *testing.T) {
	rt, err := NewRuntime(Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []tensor.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: make([]float32, 4)}}
	a := load(t, rt, "affine", 1)
	b := load(t, rt, "affine", 1)
	for range 2 {
		if err := a.Close(); err != nil {
			t.Fatalf("Session.Close: %v", err)
		}
	}
	if _, err := a.Run(context.Background(), in); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Run after Session.Close: %v, want ErrClosed", err)
	}
	if _, err := b.Run(context.Background(), in); err != nil {
		t.Fatalf("closing one session broke another: %v", err)
	}
	for range 2 {
		if err := rt.Close(); err != nil {
			t.Fatalf("Runtime.Close: %v", err)
		}
	}
	if _, err := b.Run(context.Background(), in); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Run after Runtime.Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Session.Close after Runtime.Close: %v", err)
	}
	if _, err := rt.LoadBytes(context.Background(), "affine", testdata(t, "affine"), 1); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("LoadBytes after Runtime.Close: %v, want ErrClosed", err)
	}
}

func TestRuntimesShareTheLibraryAndReloadIt(t *testing.T) {
	in := []tensor.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}
	for round := range 2 {
		first, err := NewRuntime(Options{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		second, err := NewRuntime(Options{LibraryPath: first.Library()})
		if err != nil {
			t.Fatalf("round %d: second runtime: %v", round, err)
		}
		s := load(t, second, "affine", 1)
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		out, err := s.Run(context.Background(), in)
		if err != nil || out[0].Data[3] != 9 {
			t.Fatalf("round %d: run after closing the other runtime: %v, %v", round, out, err)
		}
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConcurrentRunsGetTheirOwnResults(t *testing.T) {
	rt := newRuntime(t)
	s := load(t, rt, "scale", 3)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				batch := 1 + (g+i)%3
				a := ramp(3*batch, float32(g*100+i))
				ts := make([]float32, batch)
				for j := range ts {
					ts[j] = float32(g + j + 1)
				}
				out, err := s.Run(context.Background(), []tensor.Tensor{
					{Name: "a", Shape: []int64{int64(batch), 3}, Data: a},
					{Name: "t", Shape: []int64{int64(batch)}, Data: ts},
				})
				if err != nil {
					errs <- err
					return
				}
				for k, v := range out[0].Data {
					if want := a[k] * ts[k/3]; v != want {
						errs <- fmt.Errorf("goroutine %d call %d: y[%d] = %v, want %v", g, i, k, v, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseWaitsForInFlightRuns(t *testing.T) {
	rt := newRuntime(t)
	s := load(t, rt, "affine", 2)
	in := []tensor.Tensor{{Name: "x", Shape: []int64{2, 4}, Data: ramp(8, 0)}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				out, err := s.Run(context.Background(), in)
				if errors.Is(err, tensor.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if out[0].Data[7] != 15 {
					errs <- fmt.Errorf("y[7] = %v, want 15", out[0].Data[7])
					return
				}
			}
		})
	}
	wg.Go(func() {
		if err := s.Close(); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestForgottenSessionIsClosedByTheCollector(t *testing.T) {
	rt := newRuntime(t)
	func() { load(t, rt, "affine", 1) }()
	open := func() int {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return len(rt.sessions)
	}
	for i := 0; i < 200 && open() > 0; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if n := open(); n != 0 {
		t.Fatalf("%d sessions still open after the Session became unreachable", n)
	}
}
