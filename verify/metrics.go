package verify

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Tolerance bounds the error of one output. An element fails only when its
// absolute error exceeds Abs and its relative error exceeds Rel (Polygraphy's
// "elemwise" check), so small values may differ by up to Abs whatever their
// relative error, and large ones by up to Rel of their size.
type Tolerance struct {
	Abs float64 `json:"abs"`
	Rel float64 `json:"rel"`
}

// FP16Abs and FP16Rel are the default bounds for a TensorRT FP16 engine
// against the float32 graph. FP16 keeps 11 significant bits (unit roundoff
// 2⁻¹¹ ≈ 4.9e-4) and every layer rounds its activations again, so a
// transformer of a few dozen layers drifts by a few 1e-3 relative; 1e-2
// leaves room for that while a wrong kernel, an overflowing attention or a
// mis-bound input (errors of order 1) still fails. Polygraphy's default,
// 1e-5 for both, is meant for FP32 against FP32.
const (
	FP16Abs = 1e-2
	FP16Rel = 1e-2
)

// Value is a float that survives JSON: NaN and ±Inf are written as the
// strings "NaN", "+Inf" and "-Inf", which encoding/json cannot do for floats.
type Value float64

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *Value) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "NaN":
			*v = Value(math.NaN())
		case "+Inf", "Inf":
			*v = Value(math.Inf(1))
		case "-Inf":
			*v = Value(math.Inf(-1))
		default:
			return fmt.Errorf("verify: %q is not a number", s)
		}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("verify: value: %w", err)
	}
	*v = Value(f)
	return nil
}

// Stats summarise one kind of error over the elements it is defined for.
type Stats struct {
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	N      int     `json:"n"` // elements the statistics cover
}

// Element is one element of a compared output.
type Element struct {
	Flat  int     `json:"flat"`  // row-major index
	Index []int64 `json:"index"` // the same, per dim
	Got   Value   `json:"got"`
	Want  Value   `json:"want"`
	Abs   Value   `json:"abs"`
	Rel   Value   `json:"rel"` // +Inf where Want is 0 and Got is not
}

// Comparison is the verdict on one output: Got (the side under test) against
// Want (the reference side).
//
// Conventions, which the tests pin:
//   - abs = |got − want| and rel = abs / |want|, computed in float64.
//   - NaN on either side fails, even NaN against NaN: a NaN in an engine's
//     output is a bug whatever the reference says.
//   - An infinity must be matched exactly (same sign on both sides); it then
//     has zero error. Any other element with an infinity fails.
//   - Where want is 0 the relative error is undefined (Polygraphy adds 2e-16
//     to the denominator, making it astronomically large): such an element is
//     judged on its absolute error alone and is left out of the relative
//     statistics; ZeroWant counts them.
//   - The statistics cover every element with a finite error (matched
//     infinities count with 0); the failures above are counted in NaN and
//     Inf instead, so the statistics stay finite. Median and P99 interpolate linearly between order
//     statistics, as numpy's median and quantile do.
//   - Worst is the element furthest beyond its tolerance: a NaN or infinity
//     failure first, else the largest min(abs/Abs, rel/Rel) (abs/Abs where
//     want is 0), which exceeds 1 exactly when the element fails; the first
//     such element in row-major order wins ties. It is nil when every element
//     is equal.
type Comparison struct {
	Output    string    `json:"output"`
	Shape     []int64   `json:"shape"`
	Elements  int       `json:"elements"`
	Tolerance Tolerance `json:"tolerance"`
	Abs       Stats     `json:"abs"`
	Rel       Stats     `json:"rel"`
	Failed    int       `json:"failed"`    // elements that fail, NaN and Inf included
	NaN       int       `json:"nan"`       // elements with a NaN on either side
	Inf       int       `json:"inf"`       // elements with an unmatched infinity
	ZeroWant  int       `json:"zero_want"` // elements whose reference is 0
	Worst     *Element  `json:"worst,omitempty"`
	Pass      bool      `json:"pass"`
}

// Compare compares got with want, both row-major with the given shape.
func Compare(output string, shape []int64, got, want []float32, tol Tolerance) (Comparison, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return Comparison{}, fmt.Errorf("verify: %s: shape %v has a negative dim", output, shape)
		}
		n *= int(d)
	}
	if len(got) != n || len(want) != n {
		return Comparison{}, fmt.Errorf("verify: %s: %d and %d values for shape %v (%d elements)", output, len(got), len(want), shape, n)
	}
	if tol.Abs < 0 || tol.Rel < 0 || math.IsNaN(tol.Abs) || math.IsNaN(tol.Rel) {
		return Comparison{}, fmt.Errorf("verify: %s: tolerance %+v must be non-negative", output, tol)
	}
	c := Comparison{Output: output, Shape: slices.Clone(shape), Elements: n, Tolerance: tol}
	absErr := make([]float64, 0, n)
	relErr := make([]float64, 0, n)
	worst, worstScore := -1, 0.0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		var a, score float64
		failed := false
		switch {
		case math.IsNaN(g) || math.IsNaN(w):
			c.NaN++
			a, score, failed = math.NaN(), math.Inf(1), true
		case math.IsInf(g, 0) || math.IsInf(w, 0):
			if g == w { // a matched infinity has no error
				relErr = append(relErr, 0)
				break
			}
			c.Inf++
			a, score, failed = math.Inf(1), math.Inf(1), true
		case w == 0:
			c.ZeroWant++
			a = math.Abs(g)
			score, failed = ratio(a, tol.Abs), a > tol.Abs
		default:
			a = math.Abs(g - w)
			r := a / math.Abs(w)
			relErr = append(relErr, r)
			score, failed = min(ratio(a, tol.Abs), ratio(r, tol.Rel)), a > tol.Abs && r > tol.Rel
		}
		if !math.IsNaN(a) && !math.IsInf(a, 0) {
			absErr = append(absErr, a)
		}
		if failed {
			c.Failed++
		}
		if (failed || a != 0) && (worst < 0 || score > worstScore) {
			worst, worstScore = i, score
		}
	}
	c.Abs = summarize(absErr)
	c.Rel = summarize(relErr)
	if worst >= 0 {
		c.Worst = element(shape, worst, got[worst], want[worst])
	}
	c.Pass = c.Failed == 0
	return c, nil
}

// ratio is x/tol with 0/0 = 0 and x/0 = +Inf, so that a zero tolerance
// demands exact equality.
func ratio(x, tol float64) float64 {
	switch {
	case x == 0:
		return 0
	case tol == 0:
		return math.Inf(1)
	}
	return x / tol
}

func element(shape []int64, flat int, got, want float32) *Element {
	idx := make([]int64, len(shape))
	rest := int64(flat)
	for k := len(shape) - 1; k >= 0; k-- {
		if shape[k] > 0 {
			idx[k] = rest % shape[k]
			rest /= shape[k]
		}
	}
	g, w := float64(got), float64(want)
	e := &Element{Flat: flat, Index: idx, Got: Value(g), Want: Value(w)}
	switch {
	case math.IsNaN(g) || math.IsNaN(w):
		e.Abs, e.Rel = Value(math.NaN()), Value(math.NaN())
	case g == w:
	case math.IsInf(g, 0) || math.IsInf(w, 0):
		e.Abs, e.Rel = Value(math.Inf(1)), Value(math.Inf(1))
	default:
		a := math.Abs(g - w)
		e.Abs = Value(a)
		if w == 0 {
			e.Rel = Value(math.Inf(1))
		} else {
			e.Rel = Value(a / math.Abs(w))
		}
	}
	return e
}

// summarize sorts xs in place and returns its statistics.
func summarize(xs []float64) Stats {
	s := Stats{N: len(xs)}
	if len(xs) == 0 {
		return s
	}
	slices.Sort(xs)
	var sum float64
	for _, x := range xs {
		sum += x
	}
	s.Max = xs[len(xs)-1]
	s.Mean = sum / float64(len(xs))
	s.Median = quantile(xs, 0.5)
	s.P99 = quantile(xs, 0.99)
	return s
}

// quantile of sorted xs with linear interpolation between the order
// statistics around q·(n−1) (numpy's default method).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	frac := pos - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}
