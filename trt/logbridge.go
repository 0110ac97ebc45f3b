package trt

// The exported callback that native log messages (TensorRT's own, CUDA
// graph fallbacks, engine loads) arrive through. cgo forbids C definitions
// in a file with //export, so the trampoline lives in native.go.

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"sync"
)

//export hy3dTRTLog
func hy3dTRTLog(level C.int, message *C.char, handle C.uintptr_t) {
	if fn, ok := cgo.Handle(handle).Value().(func(LogLevel, string)); ok {
		fn(LogLevel(level), C.GoString(message))
	}
}

// logSink mirrors the native library's single, process-wide log callback:
// it holds the handle installed last, so that replacing it can free the
// previous one. The native side takes its own lock around every callback
// and around the replacement, so once installLog returns no callback can
// still be using the old handle.
var logSink struct {
	mu     sync.Mutex
	handle cgo.Handle
}

// setLog routes native messages to fn (nil drops them).
func setLog(fn func(LogLevel, string)) {
	logSink.mu.Lock()
	defer logSink.mu.Unlock()
	var next cgo.Handle
	if fn != nil {
		next = cgo.NewHandle(fn)
	}
	installLog(uintptr(next))
	if logSink.handle != 0 {
		logSink.handle.Delete()
	}
	logSink.handle = next
}
