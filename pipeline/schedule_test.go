package pipeline

import (
	"math"
	"strconv"
	"testing"
)

func hexf(t *testing.T, s string) float32 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return float32(v)
}

// The expected values were computed with numpy and torch the way
// FlowMatchEulerDiscreteScheduler and ConsistencyFlowMatchEulerDiscreteScheduler
// do (float64 linspace, float32 cast, 1.0 appended).
func TestScheduleMatchesHunyuanSchedulers(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		steps int
		pcm   int
		want  []string
	}{
		{"flow 5 steps", KindFlowEuler, 5, 0, []string{"0", "0.25", "0.5", "0.75", "1", "1"}},
		{"flow 7 steps, inexact thirds", KindFlowEuler, 7, 0, []string{"0", "0x1.555556p-3", "0x1.555556p-2", "0.5",
			"0x1.555556p-1", "0x1.aaaaaap-1", "1", "1"}},
		{"flow 1 step", KindFlowEuler, 1, 0, []string{"0", "1"}},
		{"consistency 5 steps pcm 100", KindConsistency, 5, 100, []string{"0", "0x1.97f5cp-3", "0x1.98fc28p-2",
			"0x1.32feb8p-1", "0x1.997f5cp-1", "1"}},
		{"consistency 4 steps pcm 100", KindConsistency, 4, 100, []string{"0", "0x1.fe7664p-3", "0x1.ff7cccp-2",
			"0x1.7fdf32p-1", "1"}},
		{"consistency 8 steps floors half indices", KindConsistency, 8, 100, []string{"0", "0x1.e7e974p-4",
			"0x1.fe7664p-3", "0x1.7a3bf6p-2", "0x1.ff7cccp-2", "0x1.3d3ec8p-1", "0x1.7fdf32p-1", "0x1.bd5f96p-1", "1"}},
		{"consistency 1 step", KindConsistency, 1, 100, []string{"0", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Schedule(tt.kind, tt.steps, tt.pcm)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d sigmas %v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				if wv := hexf(t, w); got[i] != wv {
					t.Errorf("σ[%d] = %v (%x), want %v (%x)", i, got[i], math.Float32bits(got[i]), wv, math.Float32bits(wv))
				}
			}
		})
	}
}

func TestScheduleRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name       string
		kind       string
		steps, pcm int
	}{
		{"zero steps", KindFlowEuler, 0, 0},
		{"unknown kind", "ddim", 10, 0},
		{"consistency without pcm", KindConsistency, 5, 0},
		{"more steps than pcm timesteps", KindConsistency, 101, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Schedule(tt.kind, tt.steps, tt.pcm); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestEulerStepMovesByDeltaSigmaTimesVelocity(t *testing.T) {
	x := []float32{1, 2, -3}
	eulerStep(x, []float32{0.5, -1, 4}, 0.25, 0.5)
	want := []float32{1.125, 1.75, -2}
	for i := range x {
		if x[i] != want[i] {
			t.Errorf("x[%d] = %v, want %v", i, x[i], want[i])
		}
	}
}

func TestEulerStepRoundsEachOperationToFloat32(t *testing.T) {
	// Hand-checked with numpy float32: dt·v rounds to 0x1.333334p-2 before
	// the add; a fused multiply-add would give the second value.
	tests := []struct{ x, separate, fused string }{
		{"0x1.000002p+0", "0x1.4cccdp+0", "0x1.4ccccep+0"},
		{"-0x1.333332p-2", "0x1p-25", "0x1.8p-26"},
	}
	for _, tt := range tests {
		x := []float32{hexf(t, tt.x)}
		eulerStep(x, []float32{3}, 0, 0.1)
		if want := hexf(t, tt.separate); x[0] != want {
			t.Errorf("x=%s: got %x, want %x (fused would be %s)", tt.x, math.Float32bits(x[0]), math.Float32bits(want), tt.fused)
		}
	}
}

func TestCFGCombineIsUncondPlusScaleTimesDifference(t *testing.T) {
	dst := make([]float32, 3)
	cfgCombine(dst, []float32{3, 1, -2}, []float32{1, 1, 2}, 5)
	want := []float32{11, 1, -18}
	for i := range dst {
		if dst[i] != want[i] {
			t.Errorf("v[%d] = %v, want %v", i, dst[i], want[i])
		}
	}
	cfgCombine(dst, []float32{3, 1, -2}, []float32{1, 1, 2}, 1)
	for i, w := range []float32{3, 1, -2} {
		if dst[i] != w {
			t.Errorf("scale 1: v[%d] = %v, want the conditional %v", i, dst[i], w)
		}
	}
}
