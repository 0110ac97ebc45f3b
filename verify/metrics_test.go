package verify

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

var (
	nan  = float32(math.NaN())
	pinf = float32(math.Inf(1))
	ninf = float32(math.Inf(-1))
)

func TestCompareAppliesPolygraphysRulesElementByElement(t *testing.T) {
	tol := Tolerance{Abs: 0.1, Rel: 0.01}
	tests := []struct {
		name      string
		got, want []float32
		failed    int
		nan, inf  int
		zeroWant  int
		worst     int // flat index; -1 for none
		pass      bool
	}{
		{name: "identical arrays pass with no worst element",
			got: []float32{1, -2, 0, 3.5}, want: []float32{1, -2, 0, 3.5}, worst: -1, zeroWant: 1, pass: true},
		{name: "large relative error within the absolute bound passes",
			got: []float32{0.05}, want: []float32{0.01}, worst: 0, pass: true},
		{name: "large absolute error within the relative bound passes",
			got: []float32{1005}, want: []float32{1000}, worst: 0, pass: true},
		{name: "an element beyond both bounds fails",
			got: []float32{1, 2, 3.5}, want: []float32{1, 2, 3}, failed: 1, worst: 2},
		{name: "one outlier among small errors is the worst and the only failure",
			got: []float32{1.001, 2.001, 9, 4.001}, want: []float32{1, 2, 3, 4}, failed: 1, worst: 2},
		{name: "NaN on the tested side fails",
			got: []float32{1, nan}, want: []float32{1, 2}, failed: 1, nan: 1, worst: 1},
		{name: "NaN on the reference side fails",
			got: []float32{1, 2}, want: []float32{nan, 2}, failed: 1, nan: 1, worst: 0},
		{name: "NaN against NaN still fails",
			got: []float32{nan}, want: []float32{nan}, failed: 1, nan: 1, worst: 0},
		{name: "NaN outranks a larger finite failure as the worst",
			got: []float32{100, nan}, want: []float32{1, 1}, failed: 2, nan: 1, worst: 1},
		{name: "matching infinities pass with zero error",
			got: []float32{pinf, ninf, 1}, want: []float32{pinf, ninf, 1}, worst: -1, pass: true},
		{name: "infinity against a finite value fails",
			got: []float32{pinf, 1}, want: []float32{3e38, 1}, failed: 1, inf: 1, worst: 0},
		{name: "finite value against infinity fails",
			got: []float32{1, 3e38}, want: []float32{1, pinf}, failed: 1, inf: 1, worst: 1},
		{name: "infinities of opposite sign fail",
			got: []float32{ninf}, want: []float32{pinf}, failed: 1, inf: 1, worst: 0},
		{name: "zero reference judged on the absolute bound: within passes",
			got: []float32{0.05, 0}, want: []float32{0, 0}, zeroWant: 2, worst: 0, pass: true},
		{name: "zero reference judged on the absolute bound: beyond fails",
			got: []float32{0.5}, want: []float32{0}, zeroWant: 1, failed: 1, worst: 0},
		{name: "empty outputs pass",
			got: []float32{}, want: []float32{}, worst: -1, pass: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compare("y", []int64{int64(len(tc.got))}, tc.got, tc.want, tol)
			if err != nil {
				t.Fatal(err)
			}
			if c.Failed != tc.failed || c.NaN != tc.nan || c.Inf != tc.inf || c.ZeroWant != tc.zeroWant || c.Pass != tc.pass {
				t.Errorf("failed %d nan %d inf %d zero %d pass %v; want %d %d %d %d %v",
					c.Failed, c.NaN, c.Inf, c.ZeroWant, c.Pass, tc.failed, tc.nan, tc.inf, tc.zeroWant, tc.pass)
			}
			switch {
			case tc.worst < 0 && c.Worst != nil:
				t.Errorf("worst = %+v, want none", *c.Worst)
			case tc.worst >= 0 && (c.Worst == nil || c.Worst.Flat != tc.worst):
				t.Errorf("worst = %+v, want element %d", c.Worst, tc.worst)
			}
			if c.Abs.N+c.NaN+c.Inf != len(tc.got) {
				t.Errorf("abs stats cover %d elements + %d NaN + %d Inf, want all %d", c.Abs.N, c.NaN, c.Inf, len(tc.got))
			}
			if c.Rel.N+c.NaN+c.Inf+c.ZeroWant != len(tc.got) {
				t.Errorf("rel stats cover %d elements, want the %d with a finite non-zero reference", c.Rel.N, len(tc.got)-c.NaN-c.Inf-c.ZeroWant)
			}
			// The statistics never carry a non-finite value: those
			// elements are counted instead.
			for _, v := range []float64{c.Abs.Max, c.Abs.Mean, c.Abs.Median, c.Abs.P99, c.Rel.Max, c.Rel.Mean, c.Rel.Median, c.Rel.P99} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("statistic %v is not finite: %+v %+v", v, c.Abs, c.Rel)
				}
			}
		})
	}
}

func TestCompareStatisticsMatchHandComputedValues(t *testing.T) {
	// Errors 0, 1, 2, ..., 100 against a reference of 100 everywhere:
	// abs max 100, mean 50, median 50, p99 at position 99 → 99; rel is abs/100.
	want := make([]float32, 101)
	got := make([]float32, 101)
	for i := range got {
		want[i] = 100
		got[i] = 100 + float32(i)
	}
	c, err := Compare("y", []int64{101}, got, want, Tolerance{Abs: 1000, Rel: 1000})
	if err != nil {
		t.Fatal(err)
	}
	wantAbs := Stats{Max: 100, Mean: 50, Median: 50, P99: 99, N: 101}
	wantRel := Stats{Max: 1, Mean: 0.5, Median: 0.5, P99: 0.99, N: 101}
	if !close(c.Abs, wantAbs) || !close(c.Rel, wantRel) {
		t.Errorf("abs %+v rel %+v; want %+v %+v", c.Abs, c.Rel, wantAbs, wantRel)
	}
	if c.Worst == nil || c.Worst.Flat != 100 || c.Worst.Got != 200 || c.Worst.Want != 100 || c.Worst.Abs != 100 || c.Worst.Rel != 1 {
		t.Errorf("worst = %+v, want element 100: 200 vs 100", c.Worst)
	}
}

func close(a, b Stats) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) <= 1e-12*max(1, math.Abs(y)) }
	return a.N == b.N && eq(a.Max, b.Max) && eq(a.Mean, b.Mean) && eq(a.Median, b.Median) && eq(a.P99, b.P99)
}

func TestCompareMedianAndQuantileInterpolateLikeNumpy(t *testing.T) {
	// np.median([1, 2, 3, 4]) = 2.5; np.quantile([1, 2, 3, 4], 0.99) = 3.97.
	c, err := Compare("y", []int64{4}, []float32{1, 2, 3, 4}, []float32{0, 0, 0, 0}, Tolerance{Abs: 10})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(c.Abs.Median-2.5) > 1e-12 || math.Abs(c.Abs.P99-3.97) > 1e-12 {
		t.Errorf("median %v p99 %v, want 2.5 and 3.97", c.Abs.Median, c.Abs.P99)
	}
}

func TestCompareNamesTheWorstElementByItsIndexPerDim(t *testing.T) {
	got := make([]float32, 2*3*4)
	want := make([]float32, len(got))
	for i := range want {
		want[i], got[i] = 1, 1
	}
	got[1*12+2*4+3] = 5 // [1, 2, 3]
	c, err := Compare("velocity", []int64{2, 3, 4}, got, want, Tolerance{Abs: FP16Abs, Rel: FP16Rel})
	if err != nil {
		t.Fatal(err)
	}
	if c.Worst == nil || !slices.Equal(c.Worst.Index, []int64{1, 2, 3}) || c.Worst.Flat != 23 {
		t.Errorf("worst = %+v, want index [1 2 3] (flat 23)", c.Worst)
	}
}

func TestCompareZeroToleranceDemandsEquality(t *testing.T) {
	c, err := Compare("y", []int64{2}, []float32{1, 2}, []float32{1, 2.0000002}, Tolerance{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Pass || c.Failed != 1 {
		t.Errorf("one ulp off at zero tolerance: failed %d pass %v, want 1 false", c.Failed, c.Pass)
	}
}

func TestCompareRejectsMismatchedLengthsAndBadTolerances(t *testing.T) {
	tests := []struct {
		name      string
		shape     []int64
		got, want []float32
		tol       Tolerance
	}{
		{"got shorter than the shape", []int64{3}, []float32{1, 2}, []float32{1, 2, 3}, Tolerance{}},
		{"want longer than the shape", []int64{1}, []float32{1}, []float32{1, 2}, Tolerance{}},
		{"negative dim", []int64{-1}, nil, nil, Tolerance{}},
		{"negative tolerance", []int64{1}, []float32{1}, []float32{1}, Tolerance{Abs: -1}},
		{"NaN tolerance", []int64{1}, []float32{1}, []float32{1}, Tolerance{Rel: math.NaN()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compare("y", tc.shape, tc.got, tc.want, tc.tol); err == nil {
				t.Error("Compare accepted it")
			}
		})
	}
}

func TestComparisonWithNonFiniteValuesEncodesAsJSON(t *testing.T) {
	c, err := Compare("y", []int64{2}, []float32{nan, pinf}, []float32{1, 2}, Tolerance{Abs: 1, Rel: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var back Comparison
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	if back.Worst == nil || !math.IsNaN(float64(back.Worst.Got)) || back.Worst.Want != 1 || back.NaN != 1 || back.Inf != 1 {
		t.Errorf("round trip gave %+v from %s", back, b)
	}
	for _, v := range []Value{Value(math.Inf(1)), Value(math.Inf(-1)), 0.25} {
		b, _ := json.Marshal(v)
		var w Value
		if err := json.Unmarshal(b, &w); err != nil || w != v {
			t.Errorf("%v → %s → %v, %v", v, b, w, err)
		}
	}
}
