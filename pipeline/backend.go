package pipeline

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/ort"
)

// Backend names accepted by OpenBackend.
const (
	BackendAuto = "auto"
	BackendTRT  = "trt"
	BackendORT  = "ort"
)

// BackendOptions choose and configure the backend.
type BackendOptions struct {
	// Kind is "auto" (TensorRT when the library was built with it, a GPU is
	// present and the set has plans for it; else ONNX Runtime), "trt" or
	// "ort". Empty means "auto".
	Kind   string
	ORT    ort.Options
	Logger zerolog.Logger
}

// OpenBackend returns the Loader for the set's graphs on the chosen backend.
// The caller closes it after the Pipelines built on it.
func OpenBackend(ctx context.Context, set *engines.Set, opts BackendOptions) (Loader, error) {
	switch opts.Kind {
	case "", BackendAuto:
		l, err := openTRT(ctx, set)
		if err == nil {
			return l, nil
		}
		opts.Logger.Info().Err(err).Msg("TensorRT not used; running on ONNX Runtime")
		return openORT(opts.ORT)
	case BackendTRT:
		return openTRT(ctx, set)
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
