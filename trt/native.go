package trt

// The cgo bridge: every C call of the package is in this file, and nothing
// of C leaves it. hy3d_last_error is per OS thread, so each call and the
// read of its message run with the goroutine locked to its thread.

/*
#include <stdint.h>
#include "hy3d.h"

#ifdef HY3D_GO_WANTS_TENSORRT
enum { hy3d_go_wants_tensorrt = 1 };
#else
enum { hy3d_go_wants_tensorrt = 0 };
#endif

// Defined in logbridge.go.
extern void hy3dTRTLog(int level, char *message, uintptr_t handle);

static void hy3d_trt_log_trampoline(int level, const char *message, void *user) {
	hy3dTRTLog(level, (char *)message, (uintptr_t)user);
}

// The handle travels as the callback's user pointer; converting it here
// keeps integer-to-pointer conversions out of Go.
static void hy3d_trt_install_log(uintptr_t handle) {
	hy3d_set_log_callback(handle ? hy3d_trt_log_trampoline : NULL, (void *)handle);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/hy3d/hy3d/tensor"
)

// headerABIVersion is HY3D_ABI_VERSION of the header this package was
// compiled against.
const headerABIVersion = uint32(C.HY3D_ABI_VERSION)

// wantsTensorRT says whether the package was built with -tags hy3d_tensorrt,
// that is, meant to link a library with the TensorRT backend.
const wantsTensorRT = C.hy3d_go_wants_tensorrt == 1

func libraryABIVersion() uint32 { return uint32(C.hy3d_abi_version()) }

func libraryHasTensorRT() bool { return C.hy3d_tensorrt_available() == 1 }

// status is a native hy3d_status, kept out of C's type system.
type status int

const (
	statusOK              = status(C.HY3D_OK)
	statusInvalidArgument = status(C.HY3D_ERR_INVALID_ARGUMENT)
	statusOutOfMemory     = status(C.HY3D_ERR_OUT_OF_MEMORY)
	statusUnavailable     = status(C.HY3D_ERR_UNAVAILABLE)
	statusIO              = status(C.HY3D_ERR_IO)
	statusIncompatible    = status(C.HY3D_ERR_INCOMPATIBLE)
	statusShape           = status(C.HY3D_ERR_SHAPE)
	statusRuntime         = status(C.HY3D_ERR_RUNTIME)
	statusInternal        = status(C.HY3D_ERR_INTERNAL)
)

// call runs one native call and returns its status and, on failure, the
// library's message for it.
func call(f func() C.hy3d_status) (status, string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := status(f())
	if st == statusOK {
		return st, ""
	}
	return st, C.GoString(C.hy3d_last_error())
}

// nativeRuntimeInfo is hy3d_runtime_info in Go types.
type nativeRuntimeInfo struct {
	tensorRT, cudaRuntime, cudaDriver, devices int
}

func runtimeInfo() (nativeRuntimeInfo, status, string) {
	var info C.hy3d_runtime_info
	st, msg := call(func() C.hy3d_status { return C.hy3d_runtime_info_get(&info) })
	return nativeRuntimeInfo{
		tensorRT:    int(info.tensorrt_version),
		cudaRuntime: int(info.cuda_runtime_version),
		cudaDriver:  int(info.cuda_driver_version),
		devices:     int(info.device_count),
	}, st, msg
}

func deviceInfo(index int) (Device, status, string) {
	var info C.hy3d_device_info
	st, msg := call(func() C.hy3d_status { return C.hy3d_device_info_get(C.int32_t(index), &info) })
	if st != statusOK {
		return Device{}, st, msg
	}
	return Device{
		Index:             index,
		Name:              C.GoString(&info.name[0]),
		ComputeCapability: fmt.Sprintf("%d.%d", int(info.compute_major), int(info.compute_minor)),
		TotalMemory:       uint64(info.total_memory),
	}, st, msg
}

// installLog points the native log callback at a cgo handle (0 removes it).
func installLog(handle uintptr) { C.hy3d_trt_install_log(C.uintptr_t(handle)) }

// nativeEngine owns one hy3d_engine. It implements backend.
type nativeEngine struct {
	handle *C.hy3d_engine
	names  map[string]*C.char // tensor names, owned by the engine
	once   sync.Once
}

type loadOptions struct {
	device  int
	buckets []int
	graphs  bool
	// breakCaptures makes every capture fail (tests of the fallback; see
	// hy3d_engine_options.break_captures).
	breakCaptures bool
}

func loadNative(plan []byte, opts loadOptions) (*nativeEngine, status, string) {
	if len(plan) == 0 {
		return nil, statusInvalidArgument, "plan is empty"
	}
	buckets := make([]C.int32_t, len(opts.buckets))
	for i, b := range opts.buckets {
		buckets[i] = C.int32_t(b)
	}
	var bucketPtr *C.int32_t
	var p runtime.Pinner
	defer p.Unpin()
	if len(buckets) > 0 {
		// Pinned because it travels inside the options struct.
		p.Pin(&buckets[0])
		bucketPtr = &buckets[0]
	}
	copts := C.hy3d_engine_options{
		device:          C.int32_t(opts.device),
		batch_buckets:   bucketPtr,
		bucket_count:    C.size_t(len(opts.buckets)),
		use_cuda_graphs: 0,
	}
	if opts.graphs {
		copts.use_cuda_graphs = 1
	}
	if opts.breakCaptures {
		copts.break_captures = 1
	}
	var handle *C.hy3d_engine
	st, msg := call(func() C.hy3d_status {
		return C.hy3d_engine_load(unsafe.Pointer(&plan[0]), C.size_t(len(plan)), &copts, &handle)
	})
	if st != statusOK {
		return nil, st, msg
	}
	return &nativeEngine{handle: handle, names: map[string]*C.char{}}, st, ""
}

func dtypeOf(d C.hy3d_dtype) tensor.DType {
	switch d {
	case C.HY3D_DTYPE_FLOAT32:
		return tensor.Float32
	case C.HY3D_DTYPE_FLOAT16:
		return tensor.Float16
	case C.HY3D_DTYPE_INT32:
		return tensor.Int32
	case C.HY3D_DTYPE_INT64:
		return tensor.Int64
	case C.HY3D_DTYPE_INT8:
		return tensor.Int8
	case C.HY3D_DTYPE_BOOL:
		return tensor.Bool
	default:
		return tensor.Other
	}
}

func dimsOf(d *[C.HY3D_MAX_DIMS]C.int64_t, rank int) []int64 {
	out := make([]int64, rank)
	for i := range out {
		out[i] = int64(d[i])
	}
	return out
}

// describe lists the engine's inputs and outputs in the engine's order.
func (n *nativeEngine) describe() (inputs, outputs []tensor.Info, st status, msg string) {
	var count C.int32_t
	if st, msg = call(func() C.hy3d_status { return C.hy3d_engine_tensor_count(n.handle, &count) }); st != statusOK {
		return nil, nil, st, msg
	}
	for i := 0; i < int(count); i++ {
		var d C.hy3d_tensor_desc
		if st, msg = call(func() C.hy3d_status { return C.hy3d_engine_tensor_desc(n.handle, C.int32_t(i), &d) }); st != statusOK {
			return nil, nil, st, msg
		}
		rank := int(d.rank)
		if rank < 0 || rank > C.HY3D_MAX_DIMS {
			return nil, nil, statusInternal, fmt.Sprintf("tensor %d has rank %d", i, rank)
		}
		info := tensor.Info{Name: C.GoString(d.name), DType: dtypeOf(d.dtype), Dims: dimsOf(&d.dims, rank)}
		n.names[info.Name] = d.name
		if d.is_input != 0 {
			info.Min, info.Opt, info.Max = dimsOf(&d.min_dims, rank), dimsOf(&d.opt_dims, rank), dimsOf(&d.max_dims, rank)
			inputs = append(inputs, info)
		} else {
			outputs = append(outputs, info)
		}
	}
	return inputs, outputs, statusOK, ""
}

// hostTensors describes ts to C. Data pointers are pinned by p until the
// caller unpins it; withData false leaves them NULL (shape queries).
func (n *nativeEngine) hostTensors(ts []tensor.Tensor, p *runtime.Pinner, withData bool) ([]C.hy3d_host_tensor, error) {
	out := make([]C.hy3d_host_tensor, len(ts))
	for i, t := range ts {
		name, ok := n.names[t.Name]
		if !ok {
			return nil, fmt.Errorf("no tensor %q in the engine: %w", t.Name, tensor.ErrUnknownInput)
		}
		if len(t.Shape) > C.HY3D_MAX_DIMS {
			return nil, fmt.Errorf("tensor %q has rank %d: %w", t.Name, len(t.Shape), tensor.ErrShape)
		}
		out[i].name = name
		out[i].rank = C.int32_t(len(t.Shape))
		for k, d := range t.Shape {
			out[i].dims[k] = C.int64_t(d)
		}
		if withData && len(t.Data) > 0 {
			p.Pin(&t.Data[0])
			out[i].data = (*C.float)(unsafe.Pointer(&t.Data[0]))
		}
	}
	return out, nil
}

func hostPointer(ts []C.hy3d_host_tensor) *C.hy3d_host_tensor {
	if len(ts) == 0 {
		return nil
	}
	return &ts[0]
}

// outputShapes asks the engine for the shapes of the named outputs.
func (n *nativeEngine) outputShapes(inputs []tensor.Tensor, outputs []string) ([][]int64, error) {
	var p runtime.Pinner
	defer p.Unpin()
	in, err := n.hostTensors(inputs, &p, false)
	if err != nil {
		return nil, err
	}
	outs := make([]tensor.Tensor, len(outputs))
	for i, name := range outputs {
		outs[i].Name = name
	}
	out, err := n.hostTensors(outs, &p, false)
	if err != nil {
		return nil, err
	}
	st, msg := call(func() C.hy3d_status {
		return C.hy3d_engine_output_shapes(n.handle, hostPointer(in), C.size_t(len(in)), hostPointer(out), C.size_t(len(out)))
	})
	if st != statusOK {
		return nil, nativeError("output shapes", st, msg)
	}
	shapes := make([][]int64, len(out))
	for i := range out {
		rank := int(out[i].rank)
		if rank < 0 || rank > C.HY3D_MAX_DIMS {
			return nil, fmt.Errorf("output %q: native rank %d", outputs[i], rank)
		}
		shapes[i] = dimsOf(&out[i].dims, rank)
	}
	return shapes, nil
}

// run executes the engine; outputs carry their names, shapes and buffers.
func (n *nativeEngine) run(inputs, outputs []tensor.Tensor) error {
	var p runtime.Pinner
	defer p.Unpin()
	in, err := n.hostTensors(inputs, &p, true)
	if err != nil {
		return err
	}
	out, err := n.hostTensors(outputs, &p, true)
	if err != nil {
		return err
	}
	st, msg := call(func() C.hy3d_status {
		return C.hy3d_engine_run(n.handle, hostPointer(in), C.size_t(len(in)), hostPointer(out), C.size_t(len(out)))
	})
	if st != statusOK {
		return nativeError("run", st, msg)
	}
	return nil
}

// engineStats mirrors hy3d_engine_stats.
type engineStats struct {
	runs, graphLaunches, plainEnqueues, graphCaptures, captureFailures uint64
	buckets                                                            []int
	graphReady                                                         []bool
	deviceMemory                                                       uint64
}

func (n *nativeEngine) stats() (engineStats, error) {
	var s C.hy3d_engine_stats
	st, msg := call(func() C.hy3d_status { return C.hy3d_engine_stats_get(n.handle, &s) })
	if st != statusOK {
		return engineStats{}, nativeError("stats", st, msg)
	}
	out := engineStats{
		runs:            uint64(s.runs),
		graphLaunches:   uint64(s.graph_launches),
		plainEnqueues:   uint64(s.plain_enqueues),
		graphCaptures:   uint64(s.graph_captures),
		captureFailures: uint64(s.capture_failures),
		deviceMemory:    uint64(s.device_memory),
	}
	for i := 0; i < int(s.bucket_count) && i < C.HY3D_MAX_BUCKETS; i++ {
		out.buckets = append(out.buckets, int(s.buckets[i]))
		out.graphReady = append(out.graphReady, s.graph_ready[i] != 0)
	}
	return out, nil
}

func (n *nativeEngine) close() {
	n.once.Do(func() {
		C.hy3d_engine_destroy(n.handle)
		n.handle = nil
	})
}

// nativeError turns a failed status into an error wrapping the matching
// sentinel of package tensor, carrying the library's message.
func nativeError(op string, st status, msg string) error {
	var sentinel error
	switch st {
	case statusUnavailable:
		sentinel = tensor.ErrUnavailable
	case statusIncompatible:
		sentinel = tensor.ErrIncompatible
	case statusShape:
		sentinel = tensor.ErrShape
	case statusIO:
		sentinel = tensor.ErrModelFile
	}
	if sentinel == nil {
		return fmt.Errorf("%s: %s (%s)", op, msg, st)
	}
	return fmt.Errorf("%s: %s: %w", op, msg, sentinel)
}

func (s status) String() string {
	switch s {
	case statusOK:
		return "ok"
	case statusInvalidArgument:
		return "invalid argument"
	case statusOutOfMemory:
		return "out of memory"
	case statusUnavailable:
		return "unavailable"
	case statusIO:
		return "i/o error"
	case statusIncompatible:
		return "incompatible"
	case statusShape:
		return "shape"
	case statusRuntime:
		return "runtime error"
	case statusInternal:
		return "internal error"
	default:
		return fmt.Sprintf("status %d", int(s))
	}
}
