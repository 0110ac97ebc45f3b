package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/trt"
)

// Backend names accepted by OpenBackend.
const (
	BackendAuto = "auto"
	BackendTRT  = "trt"
	BackendORT  = "ort"
)

// BackendOptions choose and configure the backend.
type BackendOptions struct {
	// Kind is "auto", "trt" or "ort"; empty means "auto": TensorRT when the
	// native library has it, a CUDA device is visible, the set records a plan
	// for every graph and the first plan loads (right TensorRT release and
	// compute capability), else ONNX Runtime over the same set's ONNX files.
	Kind   string
	ORT    ort.Options
	TRT    trt.Options
	Logger zerolog.Logger
}

// OpenBackend returns the Loader for set's graphs on the chosen backend. It
// is meant for that one set; the caller closes it after the Pipeline.
func OpenBackend(ctx context.Context, set *engines.Set, opts BackendOptions) (Loader, error) {
	switch opts.Kind {
	case "", BackendAuto:
		l, err := openTRT(set, opts.TRT)
		if err != nil {
			opts.Logger.Info().Err(err).Msg("TensorRT not used; running on ONNX Runtime")
			return openORT(opts.ORT)
		}
		return &autoLoader{trt: l, fallback: func() (Loader, error) { return openORT(opts.ORT) }, log: opts.Logger}, nil
	case BackendTRT:
		return openTRT(set, opts.TRT)
	case BackendORT:
		return openORT(opts.ORT)
	default:
		return nil, fmt.Errorf("backend %q: want auto, trt or ort", opts.Kind)
	}
}

func openORT(o ort.Options) (Loader, error) {
	rt, err := ort.NewRuntime(o)
	if err != nil {
		return nil, err
	}
	return ortLoader{rt}, nil
}

// openTRT fails with tensor.ErrUnavailable without TensorRT or a device, and
// with tensor.ErrModelFile when a required graph of the set's kind (shape or
// paint) has no plan.
func openTRT(set *engines.Set, o trt.Options) (Loader, error) {
	rt, err := trt.NewRuntime(o)
	if err != nil {
		return nil, err
	}
	required := engines.RequiredGraphs
	if set.IsPaint() && set.Paint != nil {
		required = engines.RequiredPaintGraphs[set.Paint.Version]
	}
	for _, g := range required {
		if set.Graphs[g].Plan == nil {
			return nil, fmt.Errorf("model set %q has no TensorRT plan for %s: %w", set.Name, g, tensor.ErrModelFile)
		}
	}
	return trtLoader{rt}, nil
}

// ortLoader adapts ort.Runtime, whose sessions are Engines.
type ortLoader struct{ rt *ort.Runtime }

func (l ortLoader) Name() string { return BackendORT }
func (l ortLoader) Close() error { return l.rt.Close() }

func (l ortLoader) Load(ctx context.Context, set *engines.Set, graph string) (Engine, error) {
	s, err := l.rt.Load(ctx, set, graph)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// trtLoader adapts trt.Runtime, whose engines are Engines. The runtime holds
// no native resources itself (each engine owns its plan's), so Close has
// nothing to release.
type trtLoader struct{ rt *trt.Runtime }

func (l trtLoader) Name() string { return BackendTRT }
func (l trtLoader) Close() error { return nil }

func (l trtLoader) Load(ctx context.Context, set *engines.Set, graph string) (Engine, error) {
	e, err := l.rt.Load(ctx, set, graph)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// autoLoader settles on a backend at the first Load: TensorRT if that plan
// loads, else — when the plan is for another TensorRT release or GPU, or
// missing or corrupt — ONNX Runtime for every graph, so a set never runs
// half on each backend. Only the trt runtime knows the full compatibility
// rules, so the first load is the test.
type autoLoader struct {
	trt      Loader
	fallback func() (Loader, error)
	log      zerolog.Logger

	mu     sync.Mutex
	chosen Loader
}

func (a *autoLoader) Name() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chosen == nil {
		return BackendAuto
	}
	return a.chosen.Name()
}

func (a *autoLoader) Load(ctx context.Context, set *engines.Set, graph string) (Engine, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chosen != nil {
		return a.chosen.Load(ctx, set, graph)
	}
	e, err := a.trt.Load(ctx, set, graph)
	if err == nil {
		a.chosen = a.trt
		return e, nil
	}
	if !errors.Is(err, tensor.ErrIncompatible) && !errors.Is(err, tensor.ErrModelFile) && !errors.Is(err, tensor.ErrUnavailable) {
		return nil, err
	}
	a.log.Warn().Err(err).Msg("TensorRT plans unusable here; running on ONNX Runtime")
	l, oerr := a.fallback()
	if oerr != nil {
		return nil, errors.Join(err, oerr)
	}
	a.chosen = l
	return l.Load(ctx, set, graph)
}

func (a *autoLoader) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chosen != nil && a.chosen != a.trt {
		return a.chosen.Close()
	}
	return nil
}
