// Package trt runs the model graphs as TensorRT 10 engines on an NVIDIA GPU.
// It owns the cgo bridge to the native shim's engine entry points (loading a
// plan, one execution context and CUDA graph per batch bucket, running on
// host tensors), the checks that a plan recorded in a model set's manifest
// fits this machine (checksum, TensorRT version, compute capability), and
// validating every call against the engine's inputs before native code sees
// it, so misuse yields the typed errors of package tensor. Without a GPU
// build (-tags hy3d_tensorrt, docs/tensorrt.md) NewRuntime returns
// tensor.ErrUnavailable and callers use package ort instead.
package trt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/tensor"
)

// LogLevel is the severity of a native log message.
type LogLevel int

// Native log levels (hy3d_log_fn).
const (
	LogDebug LogLevel = iota
	LogInfo
	LogWarn
	LogError
)

// Options configures a Runtime.
type Options struct {
	// Device is the CUDA device ordinal engines are loaded on.
	Device int
	// BatchBuckets are the batch sizes that get their own execution context
	// and CUDA graph, ascending. Empty means the buckets the plan was built
	// for (manifest). The engine's maximum batch is always added.
	BatchBuckets []int
	// CUDAGraphs captures one CUDA graph per bucket at load and replays it;
	// false runs plain enqueueV3.
	CUDAGraphs bool
	// Log receives the native library's messages (TensorRT's warnings and
	// errors, CUDA graph fallbacks, engine loads). The native library has a
	// single sink per process: the Runtime created last with a non-nil Log
	// receives everything. Nil leaves the sink as it is.
	Log func(level LogLevel, message string)
}

// Device is one CUDA device as the runtime sees it.
type Device struct {
	Index             int
	Name              string
	ComputeCapability string // "8.9"
	TotalMemory       uint64 // bytes
}

// Info describes the TensorRT and CUDA installation the runtime uses.
type Info struct {
	TensorRT    string // "10.3.0", of the loaded libnvinfer
	CUDARuntime string // "12.4"
	CUDADriver  string // highest CUDA version the driver supports; "" without a driver
	Devices     []Device
}

// Runtime loads engines onto one device. It holds no native resources of
// its own; each Engine owns its plan's.
type Runtime struct {
	opts Options
	info Info
}

// NewRuntime checks that the native library is the one this package was
// built for and has TensorRT, and reads the installation. Without TensorRT
// or without a usable device it returns an error wrapping
// tensor.ErrUnavailable with the library's own explanation.
func NewRuntime(opts Options) (*Runtime, error) {
	if err := checkABI(libraryABIVersion(), headerABIVersion); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(opts.BatchBuckets, func(b int) bool { return b < 1 }) ||
		!slices.IsSorted(opts.BatchBuckets) || len(slices.Compact(slices.Clone(opts.BatchBuckets))) != len(opts.BatchBuckets) {
		return nil, fmt.Errorf("trt: batch buckets %v: want strictly ascending sizes >= 1", opts.BatchBuckets)
	}
	if !libraryHasTensorRT() && wantsTensorRT {
		return nil, fmt.Errorf("trt: built with -tags hy3d_tensorrt but linked a libhy3d.a without TensorRT "+
			"(put -L<repo>/build-gpu first in CGO_LDFLAGS, as make test-gpu does): %w", tensor.ErrUnavailable)
	}
	raw, st, msg := runtimeInfo()
	if st != statusOK {
		return nil, fmt.Errorf("trt: %w", nativeError("runtime info", st, msg))
	}
	info := Info{
		TensorRT:    tensorRTVersion(raw.tensorRT),
		CUDARuntime: cudaVersion(raw.cudaRuntime),
		CUDADriver:  cudaVersion(raw.cudaDriver),
	}
	for i := 0; i < raw.devices; i++ {
		dev, st, msg := deviceInfo(i)
		if st != statusOK {
			return nil, fmt.Errorf("trt: %w", nativeError(fmt.Sprintf("device %d", i), st, msg))
		}
		info.Devices = append(info.Devices, dev)
	}
	if opts.Device < 0 || opts.Device >= len(info.Devices) {
		driver := info.CUDADriver
		if driver == "" {
			driver = "none"
		}
		return nil, fmt.Errorf("trt: CUDA device %d requested, %d visible (driver CUDA %s): %w",
			opts.Device, len(info.Devices), driver, tensor.ErrUnavailable)
	}
	if opts.Log != nil {
		setLog(opts.Log)
	}
	opts.BatchBuckets = slices.Clone(opts.BatchBuckets)
	return &Runtime{opts: opts, info: info}, nil
}

// checkABI refuses a native library built from another version of hy3d.h:
// its structs may not be laid out as this package assumes.
func checkABI(library, header uint32) error {
	if library != header {
		return fmt.Errorf("trt: native library has ABI version %d, the Go bindings were built for %d "+
			"(rebuild libhy3d.a: make native): %w", library, header, tensor.ErrUnavailable)
	}
	return nil
}

func tensorRTVersion(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// cudaVersion formats cudaRuntimeGetVersion's 1000*major + 10*minor.
func cudaVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// Info returns the TensorRT and CUDA versions and the visible devices.
func (r *Runtime) Info() Info {
	info := r.info
	info.Devices = slices.Clone(r.info.Devices)
	return info
}

// Load loads the TensorRT plan the manifest records for graph: it checks
// the plan's TensorRT version and compute capability against this runtime
// (tensor.ErrIncompatible naming both) and its SHA-256 (tensor.ErrModelFile),
// then deserializes it, creates the bucket contexts and captures their CUDA
// graphs. Loading a large plan takes seconds and is not interrupted by ctx,
// which is checked before the native load starts.
func (r *Runtime) Load(ctx context.Context, set *engines.Set, graph string) (*Engine, error) {
	if set == nil {
		return nil, fmt.Errorf("trt: %s: no model set: %w", graph, tensor.ErrModelFile)
	}
	g, ok := set.Graphs[graph]
	if !ok {
		return nil, fmt.Errorf("trt: model set %q has no graph %q: %w", set.Name, graph, tensor.ErrModelFile)
	}
	if g.Plan == nil {
		return nil, fmt.Errorf("trt: %s: model set %q records no TensorRT plan (build one with tools/build-engines): %w",
			graph, set.Name, tensor.ErrModelFile)
	}
	if err := checkCompatible(graph, *g.Plan, r.info, r.opts.Device); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trt: %s: %w", graph, err)
	}
	plan, err := readPlan(set, graph, *g.Plan)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trt: %s: %w", graph, err)
	}
	buckets := r.opts.BatchBuckets
	if len(buckets) == 0 {
		buckets = g.Plan.BatchBuckets
	}
	native, st, msg := loadNative(plan, loadOptions{device: r.opts.Device, buckets: buckets, graphs: r.opts.CUDAGraphs})
	if st != statusOK {
		if st == statusInvalidArgument {
			return nil, fmt.Errorf("trt: %s: load %s: %s: %w", graph, g.Plan.File, msg, tensor.ErrModelFile)
		}
		return nil, fmt.Errorf("trt: %s: %w", graph, nativeError("load "+g.Plan.File, st, msg))
	}
	inputs, outputs, st, msg := native.describe()
	if st != statusOK {
		native.close()
		return nil, fmt.Errorf("trt: %s: %w", graph, nativeError("describe", st, msg))
	}
	if err := checkContract(graph, g, inputs, outputs); err != nil {
		native.close()
		return nil, err
	}
	return newEngine(graph, inputs, outputs, native), nil
}

// readPlan reads a plan and verifies it against the manifest's checksum.
func readPlan(set *engines.Set, graph string, p engines.Plan) ([]byte, error) {
	if p.File == "" {
		return nil, fmt.Errorf("trt: %s: the manifest's plan record has no file: %w", graph, tensor.ErrModelFile)
	}
	plan, err := fs.ReadFile(set.FS, p.File)
	if err != nil {
		return nil, fmt.Errorf("trt: %s: read plan: %w: %w", graph, err, tensor.ErrModelFile)
	}
	want, err := hex.DecodeString(strings.TrimSpace(p.SHA256))
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("trt: %s: plan %s: manifest sha256 %q is not a SHA-256: %w", graph, p.File, p.SHA256, tensor.ErrModelFile)
	}
	if got := sha256.Sum256(plan); !bytes.Equal(got[:], want) {
		return nil, fmt.Errorf("trt: %s: plan %s has sha256 %x, the manifest records %s: %w",
			graph, p.File, got, p.SHA256, tensor.ErrModelFile)
	}
	return plan, nil
}

// checkContract checks an engine's tensors against the manifest's graph:
// the same input and output names, ranks and static dims, all float32
// (docs/engine-contract.md).
func checkContract(graph string, g engines.Graph, inputs, outputs []tensor.Info) error {
	var errs []error
	for _, side := range []struct {
		what  string
		infos []tensor.Info
		specs []engines.TensorSpec
	}{{"inputs", inputs, g.Inputs}, {"outputs", outputs, g.Outputs}} {
		if len(side.infos) != len(side.specs) {
			errs = append(errs, fmt.Errorf("engine has %s %v, manifest %v: %w",
				side.what, tensor.Names(side.infos), specNames(side.specs), tensor.ErrModelFile))
			continue
		}
		for _, info := range side.infos {
			j := slices.IndexFunc(side.specs, func(s engines.TensorSpec) bool { return s.Name == info.Name })
			if j < 0 {
				errs = append(errs, fmt.Errorf("engine has %s %v, manifest %v: %w",
					side.what, tensor.Names(side.infos), specNames(side.specs), tensor.ErrModelFile))
				break
			}
			if info.DType != tensor.Float32 {
				errs = append(errs, fmt.Errorf("%q is %s, the contract is float32: %w", info.Name, info.DType, tensor.ErrDType))
			}
			want := side.specs[j].Shape
			if len(want) != len(info.Dims) {
				errs = append(errs, fmt.Errorf("%q has dims %v in the engine, %v in the manifest: %w",
					info.Name, info.Dims, want, tensor.ErrModelFile))
				continue
			}
			for k, d := range want {
				if d >= 0 && info.Dims[k] >= 0 && info.Dims[k] != d {
					errs = append(errs, fmt.Errorf("%q has dims %v in the engine, %v in the manifest: %w",
						info.Name, info.Dims, want, tensor.ErrModelFile))
					break
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trt: %s: %w", graph, err)
	}
	return nil
}

func specNames(specs []engines.TensorSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}
