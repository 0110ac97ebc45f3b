// Package tinypipeline opens, for tests, the pipeline over the embedded tiny
// reference models and the painter over the embedded oracle paint set, on
// ONNX Runtime (the CPU path hy3d takes without a GPU).
// The server's end-to-end tests and the studio's browser tests both serve it;
// it stops below package server so that server's own tests can use it too.
package tinypipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/paint"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
)

// Open builds the tiny models' pipeline on ONNX Runtime with two threads,
// closed when the test ends. When ONNX Runtime is not installed it calls
// unavailable (t.Skipf or t.Fatalf, as the caller decides) and answers nils.
func Open(t testing.TB, unavailable func(format string, args ...any)) (*pipeline.Pipeline, *engines.Set) {
	t.Helper()
	set, err := engines.Tiny()
	if err != nil {
		t.Fatal(err)
	}
	loader := ortLoader(t, set, unavailable)
	if loader == nil {
		return nil, nil
	}
	p, err := pipeline.New(context.Background(), pipeline.Config{Set: set, Loader: loader, Logger: zerolog.Nop(), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, set
}

// OpenPaint builds a painter over the embedded oracle paint set on ONNX
// Runtime, closed when the test ends; cacheBytes bounds its condition
// caches. Without ONNX Runtime it calls unavailable and answers nils.
func OpenPaint(t testing.TB, unavailable func(format string, args ...any), cacheBytes int64) (*paint.Painter, *engines.Set) {
	t.Helper()
	set, err := engines.DefaultPaint()
	if err != nil {
		t.Fatal(err)
	}
	return OpenPaintSet(t, set, unavailable, cacheBytes)
}

// OpenPaintSet is OpenPaint over another paint set.
func OpenPaintSet(t testing.TB, set *engines.Set, unavailable func(format string, args ...any), cacheBytes int64) (*paint.Painter, *engines.Set) {
	t.Helper()
	loader := ortLoader(t, set, unavailable)
	if loader == nil {
		return nil, nil
	}
	p, err := paint.New(context.Background(), paint.Config{Set: set, Loader: loader, Logger: zerolog.Nop(), Threads: 2, CacheBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, set
}

// ortLoader opens set's ONNX Runtime loader, closed when the test ends; nil
// (after calling unavailable) when ONNX Runtime is not installed.
func ortLoader(t testing.TB, set *engines.Set, unavailable func(format string, args ...any)) pipeline.Loader {
	t.Helper()
	loader, err := pipeline.OpenBackend(context.Background(), set, pipeline.BackendOptions{Kind: pipeline.BackendORT, Logger: zerolog.Nop()})
	if errors.Is(err, tensor.ErrUnavailable) {
		unavailable("ONNX Runtime not installed (make deps): %v", err)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loader.Close() })
	return loader
}
