package mesh

// The native shim is built by CMake into build/libhy3d.a (make native).

/*
#cgo CFLAGS: -I${SRCDIR}/../native/include
#cgo LDFLAGS: -L${SRCDIR}/../build -lhy3d -lmeshoptimizer -lstdc++ -lm -lpthread
#include "hy3d.h"
*/
import "C"
