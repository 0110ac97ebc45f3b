package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DecodeRaw reads raw little-endian float32 values, the layout of every
// tensor hy3d stores in a file (verify's references, the exporter checks,
// benchmark fields) whatever the machine's byte order.
func DecodeRaw(raw []byte) ([]float32, error) {
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("tensor: %d bytes is not a whole number of float32 values", len(raw))
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// EncodeRaw writes data as raw little-endian float32 values (DecodeRaw's layout).
func EncodeRaw(data []float32) []byte {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return raw
}
