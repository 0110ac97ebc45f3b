package tensor

import (
	"math"
	"testing"
)

func TestRawRoundTripKeepsEveryBit(t *testing.T) {
	in := []float32{0, float32(math.Copysign(0, -1)), 1.5, -2.25e-30, float32(math.Inf(1)), float32(math.NaN()),
		math.Float32frombits(0x7fc00001), math.SmallestNonzeroFloat32, math.MaxFloat32}
	raw := EncodeRaw(in)
	if len(raw) != 4*len(in) || raw[8] != 0 || raw[11] != 0x3f { // 1.5 = 0x3fc00000, little-endian
		t.Fatalf("layout % x", raw)
	}
	out, err := DecodeRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if math.Float32bits(out[i]) != math.Float32bits(in[i]) {
			t.Errorf("value %d: %08x, want %08x", i, math.Float32bits(out[i]), math.Float32bits(in[i]))
		}
	}
}

func TestDecodeRawRefusesPartialValues(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		if _, err := DecodeRaw(make([]byte, n)); err == nil {
			t.Errorf("%d bytes decoded", n)
		}
	}
	if out, err := DecodeRaw(nil); err != nil || len(out) != 0 {
		t.Errorf("empty: %v %v", out, err)
	}
}
