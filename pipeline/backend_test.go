package pipeline

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// scriptedLoader fails every Load with err (or hands out a fake engine).
type scriptedLoader struct {
	name   string
	err    error
	loads  int
	closed bool
}

func (l *scriptedLoader) Name() string { return l.name }
func (l *scriptedLoader) Close() error { l.closed = true; return nil }
func (l *scriptedLoader) Load(ctx context.Context, set *engines.Set, graph string) (Engine, error) {
	l.loads++
	if l.err != nil {
		return nil, l.err
	}
	return &fakeEngine{name: graph, maxBatch: 1}, nil
}

func TestAutoBackendFallsBackToORTWhenThePlansCannotLoad(t *testing.T) {
	tests := []struct {
		name     string
		trtErr   error
		want     string
		wantFail bool
	}{
		{"plans load", nil, BackendTRT, false},
		{"plan for another GPU", fmt.Errorf("built for 8.6: %w", tensor.ErrIncompatible), BackendORT, false},
		{"plan file corrupt", fmt.Errorf("checksum: %w", tensor.ErrModelFile), BackendORT, false},
		{"device gone", fmt.Errorf("no device: %w", tensor.ErrUnavailable), BackendORT, false},
		{"other failure is reported", errors.New("out of memory"), BackendAuto, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trtL := &scriptedLoader{name: BackendTRT, err: tt.trtErr}
			ortL := &scriptedLoader{name: BackendORT}
			a := &autoLoader{trt: trtL, fallback: func() (Loader, error) { return ortL, nil }, log: zerolog.Nop()}
			if a.Name() != BackendAuto {
				t.Errorf("name before loading %q", a.Name())
			}
			for _, g := range engines.RequiredGraphs {
				_, err := a.Load(context.Background(), &engines.Set{}, g)
				if (err != nil) != tt.wantFail {
					t.Fatalf("load %s: %v", g, err)
				}
				if err != nil {
					break
				}
			}
			if a.Name() != tt.want {
				t.Errorf("backend %q, want %q", a.Name(), tt.want)
			}
			if tt.want == BackendORT && (trtL.loads != 1 || ortL.loads != len(engines.RequiredGraphs)) {
				t.Errorf("trt tried %d times, ort loaded %d graphs: the set runs half on each", trtL.loads, ortL.loads)
			}
			if err := a.Close(); err != nil || ortL.closed != (tt.want == BackendORT) {
				t.Errorf("close: %v, ort closed %v", err, ortL.closed)
			}
		})
	}
}

func TestOpenBackendOnAMachineWithoutTensorRT(t *testing.T) {
	set, err := engines.Tiny()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := OpenBackend(ctx, set, BackendOptions{Kind: BackendTRT}); err == nil {
		t.Skip("TensorRT is available here")
	} else if !errors.Is(err, tensor.ErrUnavailable) && !errors.Is(err, tensor.ErrModelFile) {
		t.Fatalf("trt without TensorRT or plans: %v", err)
	}
	l, err := OpenBackend(ctx, set, BackendOptions{Kind: BackendAuto, Logger: zerolog.Nop()})
	if errors.Is(err, tensor.ErrUnavailable) {
		t.Skipf("ONNX Runtime not installed: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Name() != BackendORT {
		t.Errorf("auto chose %q without TensorRT", l.Name())
	}
	if _, err := OpenBackend(ctx, set, BackendOptions{Kind: "cuda"}); err == nil {
		t.Error("unknown backend accepted")
	}
}
