package ort

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hy3d/hy3d/tensor"
)

// This file reads the names, element types and dims of a model's graph inputs
// and outputs straight from the ONNX protobuf. onnxruntime_go needs the names
// before it creates a session and offers no way to ask a session afterwards;
// its own GetInputOutputInfo builds a throw-away session, which for the real
// Hunyuan3D graphs would double load time and peak memory. The subset of the
// wire format read here has been stable since ONNX IR version 3.

// valueInfo is one graph input or output as the model declares it.
type valueInfo struct {
	name     string
	elemType int32 // ONNX TensorProto.DataType; 0 when not a tensor
	kind     string
	dims     []int64 // -1 for a symbolic or unknown dim
	hasShape bool
}

// modelIO is what parseModelIO extracts from a ModelProto.
type modelIO struct {
	inputs  []valueInfo // graph inputs that are not initializers
	outputs []valueInfo
}

// Field numbers of onnx.proto3 messages.
const (
	fieldModelGraph             = 7
	fieldGraphInitializer       = 5
	fieldGraphInput             = 11
	fieldGraphOutput            = 12
	fieldGraphSparseInitializer = 15
	fieldTensorName             = 8
	fieldSparseValues           = 1
	fieldValueInfoName          = 1
	fieldValueInfoType          = 2
	fieldTypeTensor             = 1
	fieldTypeSequence           = 4
	fieldTypeMap                = 5
	fieldTypeSparseTensor       = 8
	fieldTypeOptional           = 9
	fieldTensorTypeElem         = 1
	fieldTensorTypeShape        = 2
	fieldShapeDim               = 1
	fieldDimValue               = 1
)

const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

// onnxFloat is TensorProto.DataType FLOAT.
const onnxFloat = 1

var errTruncated = errors.New("truncated protobuf")

// protoField is one decoded field: for wireLen, data holds the payload.
type protoField struct {
	num   uint64
	wire  int
	value uint64
	data  []byte
}

// eachField calls fn for every top-level field of the message in b.
func eachField(b []byte, fn func(f protoField) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errTruncated
		}
		b = b[n:]
		f := protoField{num: key >> 3, wire: int(key & 7)}
		if f.num == 0 {
			return errors.New("protobuf field number 0")
		}
		switch f.wire {
		case wireVarint:
			f.value, n = binary.Uvarint(b)
			if n <= 0 {
				return errTruncated
			}
			b = b[n:]
		case wireI64:
			if len(b) < 8 {
				return errTruncated
			}
			f.value = binary.LittleEndian.Uint64(b)
			b = b[8:]
		case wireI32:
			if len(b) < 4 {
				return errTruncated
			}
			f.value = uint64(binary.LittleEndian.Uint32(b))
			b = b[4:]
		case wireLen:
			size, n := binary.Uvarint(b)
			if n <= 0 || size > uint64(len(b)-n) {
				return errTruncated
			}
			f.data = b[n : n+int(size)]
			b = b[n+int(size):]
		default:
			return fmt.Errorf("protobuf wire type %d not supported", f.wire)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// parseModelIO reads the graph inputs and outputs of a serialized ModelProto.
func parseModelIO(model []byte) (*modelIO, error) {
	var graphs [][]byte
	err := eachField(model, func(f protoField) error {
		if f.num == fieldModelGraph {
			if f.wire != wireLen {
				return errors.New("model.graph is not a message")
			}
			graphs = append(graphs, f.data)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if len(graphs) == 0 {
		return nil, errors.New("model has no graph")
	}
	var (
		inputs, outputs []valueInfo
		initializers    = map[string]bool{}
	)
	// Protobuf merges repeated occurrences of a message field, so a graph
	// split across several fields is read as one.
	for _, g := range graphs {
		err := eachField(g, func(f protoField) error {
			if f.wire != wireLen {
				return nil
			}
			switch f.num {
			case fieldGraphInput, fieldGraphOutput:
				vi, err := parseValueInfo(f.data)
				if err != nil {
					return err
				}
				if f.num == fieldGraphInput {
					inputs = append(inputs, vi)
				} else {
					outputs = append(outputs, vi)
				}
			case fieldGraphInitializer:
				name, err := stringField(f.data, fieldTensorName)
				if err != nil {
					return fmt.Errorf("initializer: %w", err)
				}
				initializers[name] = true
			case fieldGraphSparseInitializer:
				values, err := messageField(f.data, fieldSparseValues)
				if err != nil {
					return fmt.Errorf("sparse initializer: %w", err)
				}
				name, err := stringField(values, fieldTensorName)
				if err != nil {
					return fmt.Errorf("sparse initializer: %w", err)
				}
				initializers[name] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	}
	// Initializers listed as graph inputs (IR < 4 style) have defaults and are
	// not fed by callers.
	io := &modelIO{outputs: outputs}
	for _, in := range inputs {
		if !initializers[in.name] {
			io.inputs = append(io.inputs, in)
		}
	}
	return io, nil
}

func parseValueInfo(b []byte) (valueInfo, error) {
	vi := valueInfo{kind: "unknown"}
	err := eachField(b, func(f protoField) error {
		if f.wire != wireLen {
			return nil
		}
		switch f.num {
		case fieldValueInfoName:
			vi.name = string(f.data)
		case fieldValueInfoType:
			return parseType(f.data, &vi)
		}
		return nil
	})
	if err != nil {
		return vi, fmt.Errorf("value info %q: %w", vi.name, err)
	}
	if vi.name == "" {
		return vi, errors.New("value info without a name")
	}
	return vi, nil
}

func parseType(b []byte, vi *valueInfo) error {
	return eachField(b, func(f protoField) error {
		if f.wire != wireLen {
			return nil
		}
		switch f.num {
		case fieldTypeTensor:
			vi.kind = "tensor"
			return parseTensorType(f.data, vi)
		case fieldTypeSequence:
			vi.kind = "sequence"
		case fieldTypeMap:
			vi.kind = "map"
		case fieldTypeSparseTensor:
			vi.kind = "sparse tensor"
		case fieldTypeOptional:
			vi.kind = "optional"
		}
		return nil
	})
}

func parseTensorType(b []byte, vi *valueInfo) error {
	return eachField(b, func(f protoField) error {
		switch {
		case f.num == fieldTensorTypeElem && f.wire == wireVarint:
			vi.elemType = int32(f.value)
		case f.num == fieldTensorTypeShape && f.wire == wireLen:
			vi.hasShape = true
			return eachField(f.data, func(d protoField) error {
				if d.num != fieldShapeDim || d.wire != wireLen {
					return nil
				}
				dim := int64(-1)
				err := eachField(d.data, func(v protoField) error {
					if v.num == fieldDimValue && v.wire == wireVarint && int64(v.value) >= 0 {
						dim = int64(v.value)
					}
					return nil
				})
				vi.dims = append(vi.dims, dim)
				return err
			})
		}
		return nil
	})
}

// stringField returns the last occurrence of a string field, as protobuf does.
func stringField(b []byte, num uint64) (string, error) {
	data, err := messageField(b, num)
	return string(data), err
}

// messageField returns the payload of the last occurrence of a
// length-delimited field.
func messageField(b []byte, num uint64) ([]byte, error) {
	var out []byte
	err := eachField(b, func(f protoField) error {
		if f.num == num && f.wire == wireLen {
			out = f.data
		}
		return nil
	})
	return out, err
}

// dtype maps an ONNX element type onto the types tensor names.
func (vi valueInfo) dtype() tensor.DType {
	switch vi.elemType {
	case onnxFloat:
		return tensor.Float32
	case 10:
		return tensor.Float16
	case 6:
		return tensor.Int32
	case 7:
		return tensor.Int64
	case 3:
		return tensor.Int8
	case 9:
		return tensor.Bool
	default:
		return tensor.Other
	}
}

// typeName names the declared type for error messages.
func (vi valueInfo) typeName() string {
	if vi.kind != "tensor" {
		return vi.kind
	}
	names := map[int32]string{
		0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16",
		6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
		12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
	}
	if n, ok := names[vi.elemType]; ok {
		return n
	}
	return fmt.Sprintf("element type %d", vi.elemType)
}
