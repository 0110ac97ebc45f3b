package trt

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Output-level bounds next to the per-element ones: FP16 engines match
// their float32 reference to about three significant digits, so the mean
// error stays near 1e-3 of the mean magnitude, and the direction of the
// whole output barely moves.
const (
	maxMeanError = 1e-2   // mean |got - want| / mean |want|
	minCosine    = 0.9995 // cos(got, want)
)

// closeEnough compares an engine output with the ONNX Runtime reference.
// Element by element as Polygraphy does: an element fails only when it
// misses both the absolute tolerance (scaled to the output's magnitude,
// since FP16 keeps about three significant digits of it) and the relative
// one; NaN always fails. Then over the whole output: the mean absolute error
// relative to the mean magnitude, and the cosine similarity, which catch
// what the absolute tolerance lets through where one large value sets the
// scale for many small ones. It describes the first failure found.
func closeEnough(got, want []float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	var scale, sumDiff, sumRef, dot, normGot, normWant float64
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	atol, rtol := 2e-2*math.Max(scale, 1e-3), 2e-2
	worst, worstAt, bad := 0.0, -1, 0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		d := math.Abs(g - w)
		if math.IsNaN(g) || math.IsNaN(w) || (d > atol && d > rtol*math.Abs(w)) {
			bad++
			if math.IsNaN(d) || d > worst {
				worst, worstAt = d, i
			}
		}
		sumDiff += d
		sumRef += math.Abs(w)
		dot += g * w
		normGot += g * g
		normWant += w * w
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d values off (atol %.3g, rtol %.3g); worst [%d] = %g, want %g",
			bad, len(got), atol, rtol, worstAt, got[worstAt], want[worstAt])
	}
	if sumRef == 0 {
		return nil // an all-zero reference: the element check's atol (2e-5) has said it all
	}
	if meanErr := sumDiff / sumRef; meanErr > maxMeanError {
		return fmt.Errorf("mean |error| is %.3g of the mean |reference| (at most %.3g)", meanErr, maxMeanError)
	}
	if cos := dot / math.Sqrt(normGot*normWant); !(cos >= minCosine) {
		return fmt.Errorf("cosine similarity %.6f (at least %.4f)", cos, minCosine)
	}
	return nil
}

func TestCloseEnough(t *testing.T) {
	ramp := func(n int, f func(i int) float32) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	ref := ramp(1000, func(i int) float32 { return float32(math.Sin(float64(i))) })
	// One large value and many small ones, each small one 4× too big: every
	// element is within 2e-2 × max|ref| = 20, so only the output-level
	// checks see it.
	spiked := ramp(1000, func(i int) float32 {
		if i == 0 {
			return 1000
		}
		return 0.5
	})
	spikedWrong := ramp(1000, func(i int) float32 {
		if i == 0 {
			return 1000
		}
		return 2
	})
	cases := []struct {
		name      string
		got, want []float32
		fails     string // "" when it must pass
	}{
		{"equal", ref, ref, ""},
		{"FP16-like rounding", ramp(1000, func(i int) float32 { return ref[i] * (1 + 1e-3*float32(i%3-1)) }), ref, ""},
		{"one element far off", ramp(1000, func(i int) float32 {
			if i == 7 {
				return ref[i] + 0.5
			}
			return ref[i]
		}), ref, "1 of 1000 values off"},
		{"NaN", ramp(1000, func(i int) float32 {
			if i == 3 {
				return float32(math.NaN())
			}
			return ref[i]
		}), ref, "worst [3]"},
		{"small values wrong under a large one", spikedWrong, spiked, "mean |error|"},
		{"sign of many small values flipped", ramp(1000, func(i int) float32 {
			if i == 0 {
				return 1000
			}
			return -spiked[i]
		}), spiked, "mean |error|"},
		{"length", ref[:10], ref, "10 values"},
		{"zero reference, FP16 noise", ramp(4, func(int) float32 { return 1e-6 }), make([]float32, 4), ""},
		{"zero reference, wrong", ramp(4, func(int) float32 { return 1e-3 }), make([]float32, 4), "4 of 4 values off"},
	}
	for _, tc := range cases {
		err := closeEnough(tc.got, tc.want)
		switch {
		case tc.fails == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
			t.Errorf("%s: closeEnough = %v, want an error about %q", tc.name, err, tc.fails)
		}
	}
}
