package verify

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report as a table, one row per output, then the
// sampler's verdict and the overall result.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s vs %s: model set %s, seed %d, tolerance abs %s rel %s (an element fails only beyond both)\n",
		r.Got, r.Want, r.Set, r.Seed, num(r.Tolerance.Abs), num(r.Tolerance.Rel))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRAPH\tOUTPUT\tSHAPE\tABS max / mean / median / p99\tREL max / mean / median / p99\tFAILED\tWORST [index] got vs want\tRESULT")
	for _, g := range r.Graphs {
		for _, c := range g.Outputs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Graph, c.Output, dims(c.Shape),
				stats(c.Abs), stats(c.Rel), failed(c), worst(c.Worst), verdict(c.Pass))
		}
		if g.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s\n", g.Graph, verdict(false))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range r.Graphs {
		if g.Error != "" {
			fmt.Fprintf(&b, "  %s: %s\n", g.Graph, g.Error)
		}
	}
	if s := r.Sampler; s != nil {
		fmt.Fprintf(&b, "sampler: %d steps, guidance %s, seed %d, dense grid R=%d: ", s.Case.Steps, num(s.Case.Guidance), s.Case.Seed, s.Case.Resolution)
		switch {
		case s.Error != "":
			fmt.Fprintf(&b, "%s  %s\n", s.Error, verdict(false))
		case s.Signs != nil:
			g := s.Signs
			fmt.Fprintf(&b, "occupancy signs agree on %d of %d points with |logit| < %s (%.2f %%, threshold %.2f %%)",
				g.Agree, g.Near, num(g.Band), 100*g.Fraction, 100*g.Threshold)
			if g.NaN > 0 {
				fmt.Fprintf(&b, ", %d NaN", g.NaN)
			}
			fmt.Fprintf(&b, "; IoU %.4f over %d points", g.IoU, g.Points)
			if s.Logits != nil {
				fmt.Fprintf(&b, "; |Δlogit| max %s mean %s", num(s.Logits.Max), num(s.Logits.Mean))
			}
			fmt.Fprintf(&b, "  %s\n", verdict(s.Pass))
		}
	}
	fmt.Fprintf(&b, "result: %s\n", verdict(r.Pass))
	_, err := io.WriteString(w, b.String())
	return err
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 3, 64) }

func dims(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return strings.Join(parts, "×")
}

func stats(s Stats) string {
	if s.N == 0 {
		return "-"
	}
	return num(s.Max) + " / " + num(s.Mean) + " / " + num(s.Median) + " / " + num(s.P99)
}

func failed(c Comparison) string {
	s := fmt.Sprintf("%d/%d", c.Failed, c.Elements)
	var notes []string
	if c.NaN > 0 {
		notes = append(notes, fmt.Sprintf("%d NaN", c.NaN))
	}
	if c.Inf > 0 {
		notes = append(notes, fmt.Sprintf("%d Inf", c.Inf))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

func worst(e *Element) string {
	if e == nil {
		return "identical"
	}
	idx := make([]string, len(e.Index))
	for i, d := range e.Index {
		idx[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(idx, ",") + "] " + num(float64(e.Got)) + " vs " + num(float64(e.Want))
}
