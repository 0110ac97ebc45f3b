package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/hy3d/hy3d/jobs"
)

// policyStyle is how a policy is named and drawn.
type policyStyle struct {
	policy jobs.Policy
	label  string
	color  string
}

// policies are the engine's batching policies, in the order the report
// lists them.
var policies = []policyStyle{
	{jobs.PolicyDispatch, "dispatch batching", "#d62728"},
	{jobs.PolicyContinuous, "continuous batching + pipelining", "#1f77b4"},
	{jobs.PolicyAdaptive, "adaptive batching + pipelining", "#2ca02c"},
}

// writeSVG draws two panels over the offered load: p99 latency (with the
// latency of a job alone and the first-come-first-served reference) and
// throughput, one line per policy.
func writeSVG(w io.Writer, rows []outcome, aloneMS float64, capacity float64) error {
	const (
		width, height  = 860, 380
		panelW, panelH = 340, 250
		left, top      = 70, 50
		gap            = 90
	)
	maxLoad, maxP99, minP99, maxRate := 0.0, aloneMS, aloneMS, capacity
	for _, r := range rows {
		maxLoad = math.Max(maxLoad, r.Load)
		maxP99 = math.Max(maxP99, r.P99MS)
		minP99 = math.Min(minP99, r.P99MS)
		maxRate = math.Max(maxRate, r.PerSecond)
	}
	maxRate *= 1.1
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	// An axis maps values to the panel's height and names its ticks.
	type axis struct {
		y     func(v float64) float64 // 0 at the bottom, 1 at the top
		ticks []float64
	}
	linearAxis := func(yMax float64) axis {
		a := axis{y: func(v float64) float64 { return v / yMax }}
		for i := 0; i <= 4; i++ {
			a.ticks = append(a.ticks, yMax*float64(i)/4)
		}
		return a
	}
	// The latencies span two orders of magnitude between the policies: a
	// log axis keeps all of them readable.
	logAxis := func(lo, hi float64) axis {
		lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
		a := axis{y: func(v float64) float64 { return math.Log(v/lo) / math.Log(hi/lo) }}
		for d := lo; d <= hi; d *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if d*m <= hi {
					a.ticks = append(a.ticks, d*m)
				}
			}
		}
		return a
	}
	panel := func(x0 int, title, yLabel string, ax axis, value, reference func(outcome) float64, ref float64, refLabel string) {
		px := func(load float64) float64 { return float64(x0) + load/maxLoad*panelW }
		py := func(v float64) float64 { return float64(top+panelH) - ax.y(v)*panelH }
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", x0, top-20, title)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, top+panelH, x0+panelW, top+panelH)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, top, x0, top+panelH)
		for _, v := range ax.ticks {
			label := fmt.Sprintf("%.3g", v)
			if v >= 1000 {
				label = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-5, py(v)+4, label)
		}
		for i := 0; i <= 4; i++ {
			l := maxLoad * float64(i) / 4
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f%%</text>`+"\n", px(l), top+panelH+16, l*100)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">offered load (share of capacity)</text>`+"\n", x0+panelW/2, top+panelH+34)
		fmt.Fprintf(&b, `<text transform="translate(%d,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", x0-55, top+panelH/2, yLabel)
		if ref > 0 {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="gray" stroke-dasharray="4 3"/>`+"\n", x0, py(ref), x0+panelW, py(ref))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="gray">%s</text>`+"\n", x0+4, py(ref)-4, refLabel)
		}
		if reference != nil {
			var pts []string
			for _, r := range rows {
				if r.Policy == policies[0].policy && reference(r) > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(r.Load), py(reference(r))))
				}
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="gray" stroke-width="1.5" stroke-dasharray="2 3" points="%s"/>`+"\n", strings.Join(pts, " "))
		}
		for _, ps := range policies {
			var pts []string
			for _, r := range rows {
				if r.Policy == ps.policy {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(r.Load), py(value(r))))
				}
			}
			if len(pts) == 0 {
				continue
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", ps.color, strings.Join(pts, " "))
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], ps.color)
			}
		}
	}
	seconds := func(ms float64) float64 { return ms / 1000 }
	panel(left, "p99 latency, arrival to result", "seconds (log scale)", logAxis(seconds(minP99), seconds(maxP99)),
		func(r outcome) float64 { return seconds(r.P99MS) }, func(r outcome) float64 { return seconds(r.ReferenceP99MS) },
		seconds(aloneMS), "one job alone")
	panel(left+panelW+gap, "throughput", "jobs per second", linearAxis(maxRate), func(r outcome) float64 { return r.PerSecond },
		nil, capacity, "capacity")
	legend := []policyStyle{{label: "first come first served, one GPU (reference)", color: "gray"}}
	for i, ps := range append(slices.Clone(policies), legend...) {
		y := height - 30 + 16*(i/2)
		x := left + (i%2)*400
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", x, y-4, x+24, y-4, ps.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+30, y, ps.label)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
