package ort

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// externalSet is testdata/external as a model set on disk: one graph whose
// weights live in affine.onnx.data beside it (testdata/gen.py).
func externalSet(t *testing.T) *engines.Set {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "external"))
	if err != nil {
		t.Fatal(err)
	}
	return &engines.Set{Manifest: engines.Manifest{Name: "external", Graphs: map[string]engines.Graph{"affine": {
		ONNX: "affine.onnx", MaxBatch: 2,
		Inputs:  []engines.TensorSpec{{Name: "x", Shape: []int64{-1, 3}}},
		Outputs: []engines.TensorSpec{{Name: "y", Shape: []int64{-1, 2}}},
	}}}, FS: os.DirFS(dir), Dir: dir}
}

func TestLoadFindsExternalDataBesideTheGraph(t *testing.T) {
	rt := newRuntime(t)
	set := externalSet(t)
	// Run from elsewhere, so that only the graph's own folder can supply
	// the weights.
	t.Chdir(t.TempDir())
	s, err := rt.Load(context.Background(), set, "affine")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	out, err := s.Run(context.Background(), []tensor.Tensor{{Name: "x", Shape: []int64{2, 3}, Data: []float32{1, 0, 0, 1, 1, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	// Rows of W = [[1 2] [3 4] [5 6]] plus b = [0.5 -0.5].
	if want := []float32{1.5, 1.5, 9.5, 11.5}; !slices.Equal(out[0].Data, want) {
		t.Errorf("y = %v, want %v", out[0].Data, want)
	}
}

func TestLoadBytesCannotSeeExternalData(t *testing.T) {
	rt := newRuntime(t)
	onnx, err := os.ReadFile(filepath.Join("testdata", "external", "affine.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if s, err := rt.LoadBytes(context.Background(), "affine", onnx, 2); err == nil {
		s.Close()
		t.Fatal("LoadBytes of a graph with external weights succeeded without their file; Load's path-based loading would be pointless")
	}
}
