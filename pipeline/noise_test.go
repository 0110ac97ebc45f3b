package pipeline

import (
	"math"
	"testing"
)

func TestSplitMix64MatchesReferenceStream(t *testing.T) {
	// First output of the reference SplitMix64 for seed 0.
	g := splitMix64{}
	if got := g.next(); got != 0xe220a8397b1dcdaf {
		t.Fatalf("got %#x", got)
	}
}

func TestNoiseIsBoxMullerOverSplitMix64(t *testing.T) {
	// Computed independently in Python (integer SplitMix64, float64
	// Box–Muller, numpy float32) for seed 42.
	want := []string{"0x1.a8ac4cp-2", "0x1.4e2c3cp-1", "-0x1.c8a55p-1", "0x1.53ab5ep+0"}
	got := make([]float32, 4)
	Noise(got, 42)
	for i, w := range want {
		if wv := hexf(t, w); got[i] != wv {
			t.Errorf("noise[%d] = %v, want %v", i, got[i], wv)
		}
	}
}

func TestNoiseIsReproduciblePerSeed(t *testing.T) {
	a, b, c := make([]float32, 1001), make([]float32, 1001), make([]float32, 1001)
	Noise(a, 7)
	Noise(b, 7)
	Noise(c, 8)
	same := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 differs at %d: %v vs %v", i, a[i], b[i])
		}
		if a[i] == c[i] {
			same++
		}
	}
	if same > 2 {
		t.Fatalf("seeds 7 and 8 agree on %d of %d values", same, len(a))
	}
	// An odd length takes the cosine half of the last pair.
	short := make([]float32, 3)
	Noise(short, 7)
	for i := range short {
		if short[i] != a[i] {
			t.Fatalf("prefix differs at %d", i)
		}
	}
}

func TestNoiseIsStandardNormal(t *testing.T) {
	x := make([]float32, 200000)
	Noise(x, 1)
	var sum, sq float64
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("non-finite sample %v", v)
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(x))
	mean, variance := sum/n, sq/n-(sum/n)*(sum/n)
	// Five standard errors: 0.011 for the mean, 0.016 for the variance.
	if math.Abs(mean) > 0.011 || math.Abs(variance-1) > 0.016 {
		t.Fatalf("mean %v, variance %v", mean, variance)
	}
}
