// Command compare-outputs runs an exported model set's graphs through ONNX
// Runtime on stored inputs and compares the results with stored outputs of
// the PyTorch modules the set was exported from: the second half of
// tools/check-hunyuan3d-export, which writes such a folder from the
// operator's checkout of Tencent's code. Its check.json lists, per graph,
// the input and expected output files (raw little-endian float32, row-major)
// and their shapes; the set itself is in the folder it names.
//
// Usage:
//
//	compare-outputs [--abs 1e-4] [--rel 1e-3] [--json] DIR
//
// An element fails only when both its absolute and its relative error exceed
// their bounds (Polygraphy's rule, as in hy3d engines verify); NaN always
// fails. Exit status 1 when an output fails. The default bounds are
// Polygraphy's for float32 against float32, 1e-5 each: the exported graphs
// are exact up to float32 rounding (errors near 1e-6), and the check must see
// a drift of 2e-5, which is what ONNX Runtime's RMSNorm fusion with a
// substituted epsilon once caused (tools/hy3d_export/hunyuan.py, SafeRMSNorm).
// A graph of check.json may carry its own bounds ("tolerance", with the
// measurement that justifies them in "why"), used unless --abs or --rel is
// given: a graph deep enough that float32 rounding alone reaches 1e-5.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"text/tabwriter"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, errFailed):
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "compare-outputs:", err)
		os.Exit(2)
	}
}

var errFailed = errors.New("an output is outside its tolerance")

// checkFormat names the layout of check.json this command reads.
const checkFormat = "hy3d-torch-check/1"

// check is check.json.
type check struct {
	Format string                `json:"format"`
	Source string                `json:"source"` // what produced the expected outputs, for the report
	Set    string                `json:"set"`    // the model set's folder, absolute or relative to check.json
	Graphs map[string]graphCheck `json:"graphs"`
}

type graphCheck struct {
	Inputs  []storedTensor `json:"inputs"`
	Outputs []storedTensor `json:"outputs"`
	// Tolerance replaces the default bounds for this graph; Why says what
	// measurement justifies them, and is printed with the result.
	Tolerance *verify.Tolerance `json:"tolerance,omitempty"`
	Why       string            `json:"why,omitempty"`
}

type storedTensor struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
	File  string  `json:"file"` // relative to check.json
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("compare-outputs", flag.ContinueOnError)
	fs.SetOutput(stdout)
	tol := verify.Tolerance{}
	fs.Float64Var(&tol.Abs, "abs", 1e-5, "absolute error bound")
	fs.Float64Var(&tol.Rel, "rel", 1e-5, "relative error bound")
	asJSON := fs.Bool("json", false, "print the comparisons as JSON")
	threads := fs.Int("threads", 0, "ONNX Runtime threads (0: all cores)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: compare-outputs [flags] DIR   (DIR holds check.json)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want one folder")
	}
	dir := fs.Arg(0)
	c, err := readCheck(dir)
	if err != nil {
		return err
	}
	setDir := c.Set
	if !filepath.IsAbs(setDir) {
		setDir = filepath.Join(dir, setDir)
	}
	set, err := engines.Open(setDir)
	if err != nil {
		return err
	}
	rt, err := ort.NewRuntime(ort.Options{IntraOpThreads: *threads})
	if err != nil {
		return err
	}
	defer rt.Close()

	var results []verify.Comparison
	var graphsOf []string
	var order []string // the check's graphs in the pipeline's order
	for _, g := range verify.GraphOrder(&set.Manifest, nil) {
		if _, ok := c.Graphs[g]; ok {
			order = append(order, g)
		}
	}
	if len(order) != len(c.Graphs) {
		return fmt.Errorf("check.json names graphs the set lacks (the set has %v)", verify.GraphOrder(&set.Manifest, nil))
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "abs" || f.Name == "rel" })
	var notes []string
	for _, graph := range order {
		gtol := tol
		if g := c.Graphs[graph]; g.Tolerance != nil && !explicit {
			gtol = *g.Tolerance
			notes = append(notes, fmt.Sprintf("%s: bounds %g absolute, %g relative (check.json: %s)", graph, gtol.Abs, gtol.Rel, g.Why))
		}
		cmp, err := compareGraph(ctx, rt, set, dir, graph, c.Graphs[graph], gtol)
		if err != nil {
			return fmt.Errorf("%s: %w", graph, err)
		}
		for range cmp {
			graphsOf = append(graphsOf, graph)
		}
		results = append(results, cmp...)
	}
	pass := true
	for _, r := range results {
		pass = pass && r.Pass
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"source": c.Source, "set": set.Dir, "pass": pass, "outputs": results}); err != nil {
			return err
		}
	} else {
		if err := writeTable(stdout, c.Source, graphsOf, results); err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintln(stdout, n)
		}
	}
	if !pass {
		return errFailed
	}
	return nil
}

func readCheck(dir string) (*check, error) {
	b, err := os.ReadFile(filepath.Join(dir, "check.json"))
	if err != nil {
		return nil, err
	}
	var c check
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("check.json: %w", err)
	}
	if c.Format != checkFormat {
		return nil, fmt.Errorf("check.json: format %q, want %q", c.Format, checkFormat)
	}
	if len(c.Graphs) == 0 {
		return nil, errors.New("check.json lists no graph")
	}
	return &c, nil
}

func compareGraph(ctx context.Context, rt *ort.Runtime, set *engines.Set, dir, graph string, g graphCheck, tol verify.Tolerance) ([]verify.Comparison, error) {
	sess, err := rt.Load(ctx, set, graph)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	inputs := make([]tensor.Tensor, len(g.Inputs))
	for i, in := range g.Inputs {
		data, err := readFloats(filepath.Join(dir, in.File), in.Shape)
		if err != nil {
			return nil, err
		}
		inputs[i] = tensor.Tensor{Name: in.Name, Shape: in.Shape, Data: data}
	}
	outs, err := sess.Run(ctx, inputs)
	if err != nil {
		return nil, err
	}
	got := map[string]tensor.Tensor{}
	for _, o := range outs {
		got[o.Name] = o
	}
	var cmps []verify.Comparison
	for _, want := range g.Outputs {
		o, ok := got[want.Name]
		if !ok {
			return nil, fmt.Errorf("the graph has no output %q", want.Name)
		}
		if fmt.Sprint(o.Shape) != fmt.Sprint(want.Shape) {
			return nil, fmt.Errorf("output %s: shape %v, PyTorch's %v", want.Name, o.Shape, want.Shape)
		}
		data, err := readFloats(filepath.Join(dir, want.File), want.Shape)
		if err != nil {
			return nil, err
		}
		cmp, err := verify.Compare(want.Name, want.Shape, o.Data, data, tol)
		if err != nil {
			return nil, err
		}
		cmps = append(cmps, cmp)
	}
	return cmps, nil
}

// readFloats reads a raw little-endian float32 file holding exactly shape.
func readFloats(path string, shape []int64) ([]float32, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%s: negative dimension in %v", path, shape)
		}
		n *= d
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d for shape %v", path, len(b), 4*n, shape)
	}
	return tensor.DecodeRaw(b)
}

func writeTable(w io.Writer, source string, graphs []string, results []verify.Comparison) error {
	if source != "" {
		fmt.Fprintf(w, "ONNX Runtime against %s\n", source)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "graph\toutput\tshape\tmax abs\tp99 abs\tmax rel\tfailed\t\t")
	for i, r := range results {
		verdict := "pass"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%.3g\t%.3g\t%.3g\t%d/%d\t%s\t\n", graphs[i], r.Output, r.Shape,
			float64(r.Abs.Max), float64(r.Abs.P99), float64(r.Rel.Max), r.Failed, r.Elements, verdict)
	}
	return tw.Flush()
}
