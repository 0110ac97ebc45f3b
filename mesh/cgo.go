package mesh

// The native shim is built by CMake into build/libhy3d.a (make native).

/*
#cgo CFLAGS: -I${SRCDIR}/../native/include
#cgo LDFLAGS: -L${SRCDIR}/../build -lhy3d -lmeshoptimizer -lstdc++ -lm -lpthread
#include "hy3d.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"unsafe"
)

// ErrNativeOutOfMemory is wrapped when a native kernel could not allocate.
var ErrNativeOutOfMemory = errors.New("native allocation failed")

// runNative calls a native mesh producer, copies its result into Go memory
// and destroys the native mesh. The OS thread stays locked from the call to
// reading hy3d_last_error, which is thread-local. A rejected argument is
// reported wrapping invalid, the caller's sentinel for bad input.
func runNative(op string, invalid error, call func(out **C.hy3d_mesh) C.hy3d_status) (*Mesh, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var handle *C.hy3d_mesh
	if status := call(&handle); status != C.HY3D_OK {
		return nil, nativeMeshError(op, invalid, status)
	}
	defer C.hy3d_mesh_destroy(handle)
	var (
		vertices *C.float
		indices  *C.uint32_t
		nv, nt   C.size_t
	)
	if status := C.hy3d_mesh_view(handle, &vertices, &nv, &indices, &nt); status != C.HY3D_OK {
		return nil, nativeMeshError(op, invalid, status)
	}
	// slices.Clone allocates without zeroing what it then overwrites.
	return &Mesh{
		Vertices: slices.Clone(unsafe.Slice((*float32)(unsafe.Pointer(vertices)), 3*int(nv))),
		Indices:  slices.Clone(unsafe.Slice((*uint32)(unsafe.Pointer(indices)), 3*int(nt))),
	}, nil
}

// nativeMeshError turns a failed status and the calling thread's last native
// message into an error wrapping the matching sentinel.
func nativeMeshError(op string, invalid error, status C.hy3d_status) error {
	msg := C.GoString(C.hy3d_last_error())
	switch status {
	case C.HY3D_ERR_INVALID_ARGUMENT:
		return fmt.Errorf("%s: %w: %s", op, invalid, msg)
	case C.HY3D_ERR_OUT_OF_MEMORY:
		return fmt.Errorf("%s: %w: %s", op, ErrNativeOutOfMemory, msg)
	default:
		return fmt.Errorf("%s: native status %d: %s", op, int(status), msg)
	}
}
