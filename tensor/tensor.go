// Package tensor holds the value types that cross between the inference
// backends (trt, ort) and the pipeline that drives them: host tensors, the
// description of an engine's inputs and outputs, the typed errors every
// backend returns for the same misuse, and the raw layout tensors are stored
// in files. It has no dependencies so that both
// sides of the backend interface can share it.
package tensor

import (
	"errors"
	"fmt"
	"math"
)

// DType is an element type as a backend reports it. Every graph input and
// output is Float32 at the boundary (docs/engine-contract.md); the others exist so that a
// model violating the contract can be named in an error.
type DType int

// Element types.
const (
	Float32 DType = iota
	Float16
	Int32
	Int64
	Int8
	Bool
	Other
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float16:
		return "float16"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Int8:
		return "int8"
	case Bool:
		return "bool"
	default:
		return "other"
	}
}

// Tensor is a dense, row-major float32 host tensor.
type Tensor struct {
	Name  string
	Shape []int64
	Data  []float32
}

// Elements is the number of elements the shape describes.
func (t Tensor) Elements() int64 { return Elements(t.Shape) }

// Elements is the product of dims (1 for a scalar).
func Elements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// Info describes one input or output of an engine. Dims use -1 for dynamic
// axes; Min/Opt/Max give the optimization profile where the backend has one
// (TensorRT), and are nil otherwise.
type Info struct {
	Name          string
	DType         DType
	Dims          []int64
	Min, Opt, Max []int64
}

// Errors shared by every backend; wrap them with context and test with errors.Is.
var (
	ErrUnavailable  = errors.New("backend unavailable")
	ErrModelFile    = errors.New("model file missing or corrupt")
	ErrMissingInput = errors.New("missing input")
	ErrUnknownInput = errors.New("unknown input")
	ErrDType        = errors.New("wrong dtype")
	ErrShape        = errors.New("shape outside the engine's profile")
	ErrBatch        = errors.New("batch above the engine's maximum")
	ErrIncompatible = errors.New("engine built for another runtime or GPU")
	ErrClosed       = errors.New("engine closed")
)

// Check validates one input against its engine description: the rank, every
// static dim, the profile's Min/Max where the backend has one, dims of at
// least 1, and a data length equal to the shape's element count. Whether the
// first dim (the batch) agrees across inputs and stays under the engine's
// maximum is left to the caller, who sees every input.
func (t Tensor) Check(info Info) error {
	if len(t.Shape) != len(info.Dims) {
		return fmt.Errorf("input %q: rank %d (shape %v), engine expects %v: %w", t.Name, len(t.Shape), t.Shape, info.Dims, ErrShape)
	}
	n := int64(1)
	for i, d := range t.Shape {
		if d < 1 {
			return fmt.Errorf("input %q: shape %v has dim %d = %d: %w", t.Name, t.Shape, i, d, ErrShape)
		}
		if want := info.Dims[i]; want >= 0 && d != want {
			return fmt.Errorf("input %q: shape %v, engine expects %v: %w", t.Name, t.Shape, info.Dims, ErrShape)
		}
		if len(info.Min) == len(t.Shape) && len(info.Max) == len(t.Shape) && (d < info.Min[i] || d > info.Max[i]) {
			return fmt.Errorf("input %q: shape %v outside the profile %v..%v: %w", t.Name, t.Shape, info.Min, info.Max, ErrShape)
		}
		if n > math.MaxInt64/d {
			return fmt.Errorf("input %q: shape %v overflows: %w", t.Name, t.Shape, ErrShape)
		}
		n *= d
	}
	if int64(len(t.Data)) != n {
		return fmt.Errorf("input %q: %d values for shape %v (%d elements): %w", t.Name, len(t.Data), t.Shape, n, ErrShape)
	}
	return nil
}

// Names lists the names of infos in order, for messages that say what an
// engine expects.
func Names(infos []Info) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}
