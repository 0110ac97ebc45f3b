package ort

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// newRuntime loads the library the way the server does (Options empty but
// for threads, so HY3D_ORT_LIB or the build/ search decides) and closes it
// when the test ends.
func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	rt, err := NewRuntime(Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Runtime.Close: %v", err)
		}
	})
	return rt
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// load opens a testdata model; the Runtime's Close closes it.
func load(t testing.TB, rt *Runtime, name string, maxBatch int) *Session {
	t.Helper()
	s, err := rt.LoadBytes(context.Background(), name, testdata(t, name), maxBatch)
	if err != nil {
		t.Fatalf("LoadBytes(%s): %v", name, err)
	}
	return s
}

// ramp is n values start, start+1, ...
func ramp(n int, start float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = start + float32(i)
	}
	return out
}
