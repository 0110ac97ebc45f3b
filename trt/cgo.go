package trt

// The native shim is built by CMake: build/libhy3d.a (make native) has the
// CPU-only TensorRT entry points, which report "unavailable"; with the build
// tag hy3d_tensorrt the package links build-gpu/libhy3d.a (make test-gpu,
// configured with -DHY3D_WITH_TENSORRT=ON) and TensorRT's and CUDA's
// libraries, found through CGO_LDFLAGS (-L$TENSORRT_ROOT/lib ...) as the
// Makefile sets them. See docs/tensorrt.md.

/*
#cgo CFLAGS: -I${SRCDIR}/../native/include
#cgo !hy3d_tensorrt LDFLAGS: -L${SRCDIR}/../build -lhy3d -lstdc++ -lm -lpthread
#cgo hy3d_tensorrt CFLAGS: -DHY3D_GO_WANTS_TENSORRT=1
#cgo hy3d_tensorrt LDFLAGS: -L${SRCDIR}/../build-gpu -lhy3d -lnvinfer -lnvinfer_plugin -lcudart -lstdc++ -lm -lpthread -ldl -lrt
#include "hy3d.h"
*/
import "C"
