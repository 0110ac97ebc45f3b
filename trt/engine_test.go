package trt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hy3d/hy3d/tensor"
)

// fakeBackend stands in for a loaded plan: a geometry-decoder-like engine
// whose single output has the inputs' batch and query count.
type fakeBackend struct {
	shapeCalls atomic.Int64
	runs       atomic.Int64
	closes     atomic.Int64
	runErr     error

	// With gate set, run reports on entered and waits for a value on gate.
	gate, entered     chan struct{}
	inside, maxInside atomic.Int64
}

func (f *fakeBackend) outputShapes(inputs []tensor.Tensor, outputs []string) ([][]int64, error) {
	f.shapeCalls.Add(1)
	q := inputs[0].Shape
	return [][]int64{{q[0], q[1]}}, nil
}

func (f *fakeBackend) run(inputs, outputs []tensor.Tensor) error {
	f.runs.Add(1)
	n := f.inside.Add(1)
	defer f.inside.Add(-1)
	for m := f.maxInside.Load(); n > m && !f.maxInside.CompareAndSwap(m, n); m = f.maxInside.Load() {
	}
	if f.gate != nil {
		f.entered <- struct{}{}
		<-f.gate
	}
	if f.runErr != nil {
		return f.runErr
	}
	// logits = x + y + z of each query, plus the first feature.
	q, feats := inputs[0], inputs[1]
	batch, n := q.Shape[0], q.Shape[1]
	per := int(tensor.Elements(feats.Shape[1:]))
	for b := int64(0); b < batch; b++ {
		for i := int64(0); i < n; i++ {
			k := (b*n + i) * 3
			outputs[0].Data[b*n+i] = q.Data[k] + q.Data[k+1] + q.Data[k+2] + feats.Data[int(b)*per]
		}
	}
	return nil
}

func (f *fakeBackend) close() { f.closes.Add(1) }

// geometryInfos describes queries [B,Q,3] (Q 1..64) and features [B,4,2],
// with a profile batch of 2..8: batch 1 is below it and must still pass.
func geometryInfos() (inputs, outputs []tensor.Info) {
	inputs = []tensor.Info{
		{Name: "queries", DType: tensor.Float32, Dims: []int64{-1, -1, 3},
			Min: []int64{2, 1, 3}, Opt: []int64{4, 32, 3}, Max: []int64{8, 64, 3}},
		{Name: "features", DType: tensor.Float32, Dims: []int64{-1, 4, 2},
			Min: []int64{2, 4, 2}, Opt: []int64{4, 4, 2}, Max: []int64{8, 4, 2}},
	}
	outputs = []tensor.Info{{Name: "logits", DType: tensor.Float32, Dims: []int64{-1, -1}}}
	return inputs, outputs
}

func newFakeEngine(t *testing.T) (*Engine, *fakeBackend) {
	t.Helper()
	in, out := geometryInfos()
	be := &fakeBackend{}
	e := newEngine("vae_geometry", in, out, be)
	t.Cleanup(func() { _ = e.Close() })
	return e, be
}

func queries(batch, n int) tensor.Tensor {
	data := make([]float32, batch*n*3)
	for i := range data {
		data[i] = float32(i%7) * 0.25
	}
	return tensor.Tensor{Name: "queries", Shape: []int64{int64(batch), int64(n), 3}, Data: data}
}

func features(batch int) tensor.Tensor {
	data := make([]float32, batch*8)
	for i := range data {
		data[i] = float32(i)
	}
	return tensor.Tensor{Name: "features", Shape: []int64{int64(batch), 4, 2}, Data: data}
}

func TestRunValidatesInputsBeforeTheNativeCall(t *testing.T) {
	e, be := newFakeEngine(t)
	cases := []struct {
		name    string
		inputs  []tensor.Tensor
		wantErr error
		want    string
	}{
		{"missing input", []tensor.Tensor{queries(2, 8)}, tensor.ErrMissingInput, "features"},
		{"unknown input", []tensor.Tensor{queries(2, 8), features(2), {Name: "latents", Shape: []int64{2}, Data: make([]float32, 2)}},
			tensor.ErrUnknownInput, "latents"},
		{"input given twice", []tensor.Tensor{queries(2, 8), features(2), features(2)}, tensor.ErrUnknownInput, "twice"},
		{"wrong rank", []tensor.Tensor{{Name: "queries", Shape: []int64{2, 24}, Data: make([]float32, 48)}, features(2)},
			tensor.ErrShape, "rank"},
		{"wrong static dim", []tensor.Tensor{queries(2, 8), {Name: "features", Shape: []int64{2, 4, 3}, Data: make([]float32, 24)}},
			tensor.ErrShape, "features"},
		{"dim above the profile", []tensor.Tensor{queries(2, 65), features(2)}, tensor.ErrShape, "profile"},
		{"data shorter than the shape", []tensor.Tensor{{Name: "queries", Shape: []int64{2, 8, 3}, Data: make([]float32, 47)}, features(2)},
			tensor.ErrShape, "47"},
		{"zero dim", []tensor.Tensor{queries(2, 0), features(2)}, tensor.ErrShape, "queries"},
		{"batches disagree", []tensor.Tensor{queries(2, 8), features(3)}, tensor.ErrShape, "batch"},
		{"batch above the maximum", []tensor.Tensor{queries(9, 8), features(9)}, tensor.ErrBatch, "batch 9 above the engine's maximum 8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tc.inputs)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "vae_geometry") {
				t.Errorf("error %q should name the graph and %q", err, tc.want)
			}
		})
	}
	if n := be.shapeCalls.Load() + be.runs.Load(); n != 0 {
		t.Errorf("the backend was called %d times for invalid inputs", n)
	}
}

func TestRunPassesBatchesBelowTheProfileAndReturnsOutputsInOrder(t *testing.T) {
	e, be := newFakeEngine(t)
	for _, batch := range []int{1, 2, 8} {
		// Inputs in the opposite order of the engine's.
		out, err := e.Run(context.Background(), []tensor.Tensor{features(batch), queries(batch, 5)})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if len(out) != 1 || out[0].Name != "logits" {
			t.Fatalf("batch %d: outputs %+v", batch, out)
		}
		if got := out[0].Shape; len(got) != 2 || got[0] != int64(batch) || got[1] != 5 {
			t.Errorf("batch %d: logits shape %v", batch, got)
		}
		// Query 1 of the last item: (3,4,5)%7*0.25 summed, plus its first feature.
		b := batch - 1
		k := (b*5 + 1) * 3
		want := float32(k%7)*0.25 + float32((k+1)%7)*0.25 + float32((k+2)%7)*0.25 + float32(b*8)
		if got := out[0].Data[b*5+1]; got != want {
			t.Errorf("batch %d: logits[%d,1] = %v, want %v", batch, b, got, want)
		}
	}
	if be.runs.Load() != 3 {
		t.Errorf("%d runs, want 3", be.runs.Load())
	}
}

func TestOutputShapesAreAskedOncePerInputShape(t *testing.T) {
	e, be := newFakeEngine(t)
	for range 3 {
		for _, n := range []int{8, 16} {
			if _, err := e.Run(context.Background(), []tensor.Tensor{queries(2, n), features(2)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := be.shapeCalls.Load(); got != 2 {
		t.Errorf("outputShapes called %d times for 2 distinct input shapes", got)
	}
}

func TestRunStopsOnADoneContext(t *testing.T) {
	e, be := newFakeEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Run(ctx, []tensor.Tensor{queries(2, 8), features(2)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if be.runs.Load() != 0 {
		t.Error("the backend ran for a cancelled context")
	}
}

// Runs wait for their turn in Go, one in the backend at a time, and a
// waiting run's context ends its wait without reaching the backend.
func TestRunsTakeTurnsInGo(t *testing.T) {
	e, be := newFakeEngine(t)
	be.gate, be.entered = make(chan struct{}), make(chan struct{}, 8)
	in := []tensor.Tensor{queries(2, 8), features(2)}
	var wg sync.WaitGroup
	run := func() {
		if _, err := e.Run(context.Background(), in); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	wg.Go(run)
	<-be.entered // the first run holds the turn, blocked in the backend

	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, in)
		waiting <- err
	}()
	for range 3 {
		wg.Go(run)
	}
	// While the first run holds the turn, no other run may enter the backend.
	// The window only bounds how long a violation is looked for; passing
	// never depends on it.
	select {
	case <-be.entered:
		t.Error("a second run entered the backend while the first held the turn")
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled run returned %v, want context.Canceled", err)
	}
	close(be.gate)
	wg.Wait()
	if got := be.runs.Load(); got != 4 {
		t.Errorf("the backend ran %d times, want 4 (the cancelled run must not reach it)", got)
	}
	if got := be.maxInside.Load(); got != 1 {
		t.Errorf("%d runs were inside the backend at once, want 1", got)
	}
}

func TestRunWrapsBackendErrors(t *testing.T) {
	e, be := newFakeEngine(t)
	be.runErr = nativeError("run", statusRuntime, "enqueueV3 failed")
	_, err := e.Run(context.Background(), []tensor.Tensor{queries(2, 8), features(2)})
	if err == nil || !strings.Contains(err.Error(), "enqueueV3 failed") || !strings.Contains(err.Error(), "vae_geometry") {
		t.Fatalf("Run = %v, want the native message with the graph", err)
	}
}

func TestCloseIsIdempotentAndLaterRunsFail(t *testing.T) {
	e, be := newFakeEngine(t)
	for range 3 {
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if be.closes.Load() != 1 {
		t.Errorf("backend closed %d times, want 1", be.closes.Load())
	}
	if _, err := e.Run(context.Background(), []tensor.Tensor{queries(2, 8), features(2)}); !errors.Is(err, tensor.ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}

func TestConcurrentRunsAndClose(t *testing.T) {
	e, be := newFakeEngine(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				_, err := e.Run(context.Background(), []tensor.Tensor{queries(1+(g+i)%8, 4+i%3), features(1 + (g+i)%8)})
				if err != nil && !errors.Is(err, tensor.ErrClosed) {
					t.Errorf("Run: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() { _ = e.Close() })
	wg.Wait()
	if be.closes.Load() != 1 {
		t.Errorf("backend closed %d times, want 1", be.closes.Load())
	}
}

func TestInfosAreCopies(t *testing.T) {
	e, _ := newFakeEngine(t)
	in := e.Inputs()
	in[0].Dims[1] = 99
	in[0].Max[0] = 99
	if e.Inputs()[0].Dims[1] != -1 || e.MaxBatch() != 8 {
		t.Errorf("Inputs exposes the engine's own slices")
	}
	if got := e.Outputs(); len(got) != 1 || got[0].Name != "logits" {
		t.Errorf("Outputs = %+v", got)
	}
}

func TestMaxBatchIsTheSmallestProfileMaximum(t *testing.T) {
	cases := []struct {
		name   string
		inputs []tensor.Info
		want   int
	}{
		{"one input", []tensor.Info{{Max: []int64{16, 64, 64}}}, 16},
		{"smallest wins", []tensor.Info{{Max: []int64{16, 64}}, {Max: []int64{8}}}, 8},
		{"no profile", []tensor.Info{{Dims: []int64{-1, 3}}}, 1},
	}
	for _, tc := range cases {
		if got := maxBatchOf(tc.inputs); got != tc.want {
			t.Errorf("%s: maxBatchOf = %d, want %d", tc.name, got, tc.want)
		}
	}
}
