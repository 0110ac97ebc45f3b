// Command build-engines builds the TensorRT plans of a model set on the
// machine they will run on, and records what each was built for in the
// set's manifest.json (engines.Plan: the TensorRT version in the plan's
// header, the name and compute capability of the GPU trtexec built on,
// precision, optimization profile, batch buckets, SHA-256).
//
// Usage:
//
//	build-engines [flags] MODEL_DIR
//
// Every graph is compiled by trtexec from its ONNX file with FP16 enabled,
// one optimization profile (see profileFor) and a timing cache shared by the
// graphs of the set. --dry-run prints the trtexec commands and touches
// nothing. --time then times every plan at each of its batch buckets
// (trtexec replaying a CUDA graph, other dims at their optimum) and writes
// PLAN_DIR/timings.json (engines.Timings), which bench/schedsim -engines
// fits its cost model to. Needs TensorRT 10's trtexec and an NVIDIA GPU (nvidia-smi -L);
// docs/tensorrt.md has the details.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hy3d/hy3d/engines"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "build-engines:", err)
		os.Exit(1)
	}
}

// bucketFlags collects repeated --buckets graph=1,2,4 flags.
type bucketFlags map[string][]int

func (b bucketFlags) String() string { return fmt.Sprint(map[string][]int(b)) }

func (b bucketFlags) Set(v string) error {
	graph, list, ok := strings.Cut(v, "=")
	if !ok || graph == "" || list == "" {
		return fmt.Errorf("want graph=1,2,4, got %q", v)
	}
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("bucket %q of %s: %w", s, graph, err)
		}
		sizes = append(sizes, n)
	}
	b[graph] = sizes
	return nil
}

type options struct {
	dir         string
	graphs      []string
	device      int
	trtexec     string
	nvidiaSMI   string
	planDir     string
	timingCache string
	buckets     bucketFlags
	dryRun      bool
	time        bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{buckets: bucketFlags{}}
	fs := flag.NewFlagSet("build-engines", flag.ContinueOnError)
	fs.SetOutput(stderr)
	graphs := fs.String("graphs", "", "comma-separated graphs to build (default: every graph of the manifest)")
	fs.IntVar(&o.device, "device", 0, "CUDA device to build on (trtexec --device; CUDA's numbering, which follows CUDA_VISIBLE_DEVICES)")
	fs.StringVar(&o.trtexec, "trtexec", "trtexec", "trtexec to run: a path, or a name looked up on PATH, then in $TENSORRT_ROOT/bin and "+packagedTrtexecDir)
	fs.StringVar(&o.nvidiaSMI, "nvidia-smi", "nvidia-smi", "nvidia-smi to check that a GPU and its driver are present")
	fs.StringVar(&o.planDir, "plan-dir", "plans", "where plans go, relative to MODEL_DIR")
	fs.StringVar(&o.timingCache, "timing-cache", "", "trtexec timing cache (default: PLAN_DIR/timing.cache)")
	fs.Var(o.buckets, "buckets", "batch buckets of one graph, e.g. dit=2,4,8,16 (repeatable; default: see docs/tensorrt.md)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the trtexec commands and change nothing")
	fs.BoolVar(&o.time, "time", false, "after building, time every plan at each batch bucket and write PLAN_DIR/"+engines.TimingsFile)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: build-engines [flags] MODEL_DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return o, errors.New("want exactly one MODEL_DIR")
	}
	o.dir = fs.Arg(0)
	if *graphs != "" {
		o.graphs = strings.Split(*graphs, ",")
	}
	if filepath.IsAbs(o.planDir) || !filepath.IsLocal(o.planDir) {
		return o, fmt.Errorf("--plan-dir %q must be a relative path inside MODEL_DIR (the manifest records it)", o.planDir)
	}
	return o, nil
}

// job is the build of one graph.
type job struct {
	graph   string
	planRel string // as the manifest records it, relative to the set
	plan    string // absolute
	profile graphProfile
	args    []string
}

// plan lists the builds for a model set, in a stable order (the required
// graphs first, as docs/engine-contract.md lists them, then the others by
// name).
func plan(set *engines.Set, o options, trtexec string) ([]job, error) {
	graphs := o.graphs
	if len(graphs) == 0 {
		for _, g := range engines.RequiredGraphs {
			if _, ok := set.Graphs[g]; ok {
				graphs = append(graphs, g)
			}
		}
		var extra []string
		for g := range set.Graphs {
			if !slices.Contains(engines.RequiredGraphs, g) {
				extra = append(extra, g)
			}
		}
		slices.Sort(extra)
		graphs = append(graphs, extra...)
	}
	for g := range o.buckets {
		if !slices.Contains(graphs, g) {
			return nil, fmt.Errorf("--buckets names graph %q, which is not being built", g)
		}
	}
	timingCache := o.timingCache
	if timingCache == "" {
		timingCache = filepath.Join(set.Dir, o.planDir, "timing.cache")
	} else if abs, err := filepath.Abs(timingCache); err == nil {
		timingCache = abs
	}
	var jobs []job
	var errs []error
	for _, name := range graphs {
		g, ok := set.Graphs[name]
		if !ok {
			errs = append(errs, fmt.Errorf("model set %q has no graph %q", set.Name, name))
			continue
		}
		p, err := profileFor(&set.Manifest, name, o.buckets[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		j := job{graph: name, planRel: filepath.ToSlash(filepath.Join(o.planDir, name+".plan")), profile: p}
		j.plan = filepath.Join(set.Dir, filepath.FromSlash(j.planRel))
		j.args = trtexecArgs(trtexec, filepath.Join(set.Dir, filepath.FromSlash(g.ONNX)), j.plan, timingCache, o.device, p)
		jobs = append(jobs, j)
	}
	return jobs, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	set, err := engines.Open(o.dir)
	if err != nil {
		return err
	}
	if o.dryRun {
		jobs, err := plan(set, o, o.trtexec)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			fmt.Fprintln(stdout, shellQuote(j.args))
			if o.time {
				for _, b := range j.profile.buckets {
					fmt.Fprintln(stdout, shellQuote(timingArgs(o.trtexec, j.plan, o.device, j.profile, b)))
				}
			}
		}
		return nil
	}

	t, err := findTools(o.trtexec, o.nvidiaSMI, trtexecDirs(os.Getenv("TENSORRT_ROOT")))
	if err != nil {
		return err
	}
	jobs, err := plan(set, o, t.trtexec)
	if err != nil {
		return err
	}
	if err := checkGPU(ctx, t.nvidiaSMI); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(set.Dir, o.planDir), 0o755); err != nil {
		return err
	}
	var built engines.Plan
	for _, j := range jobs {
		if built, err = build(ctx, set.Dir, j, t.trtexecEnv, stdout); err != nil {
			return err
		}
	}
	if !o.time {
		return nil
	}
	timings := &engines.Timings{ModelSet: set.Name, GPU: built.GPU, TensorRT: built.TensorRT, Measured: time.Now().UTC(),
		Graphs: map[string][]engines.BucketTiming{}}
	for _, j := range jobs {
		if timings.Graphs[j.graph], err = timePlan(ctx, t.trtexec, t.trtexecEnv, o.device, j, stdout); err != nil {
			return err
		}
	}
	path := filepath.Join(set.Dir, o.planDir, engines.TimingsFile)
	if err := timings.Write(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "timings: %s (go run ./bench/schedsim -engines %s)\n", path, o.dir)
	return nil
}

// build runs trtexec for one graph and records the plan in the manifest,
// and returns the record.
func build(ctx context.Context, dir string, j job, env []string, stdout io.Writer) (engines.Plan, error) {
	fmt.Fprintf(stdout, "%s: %s\n", j.graph, shellQuote(j.args))
	start := time.Now()
	logPath := strings.TrimSuffix(j.plan, ".plan") + ".trtexec.log"
	cmd := exec.CommandContext(ctx, j.args[0], j.args[1:]...)
	cmd.Env = env
	output, runErr := cmd.CombinedOutput()
	if err := os.WriteFile(logPath, output, 0o644); err != nil {
		return engines.Plan{}, fmt.Errorf("%s: write %s: %w", j.graph, logPath, err)
	}
	if runErr != nil {
		return engines.Plan{}, fmt.Errorf("%s: trtexec failed (%w); last lines of %s:\n%s", j.graph, runErr, logPath, tail(output, 20))
	}
	dev, err := builtOn(output)
	if err != nil {
		return engines.Plan{}, fmt.Errorf("%s: %w (see %s)", j.graph, err, logPath)
	}
	plan, err := os.ReadFile(j.plan)
	if err != nil || len(plan) == 0 {
		return engines.Plan{}, fmt.Errorf("%s: trtexec succeeded but wrote no plan at %s (see %s)", j.graph, j.plan, logPath)
	}
	version, err := planVersion(plan)
	if err != nil {
		return engines.Plan{}, fmt.Errorf("%s: %s: %w", j.graph, j.plan, err)
	}
	if compiled, err := trtexecVersion(output); err == nil && compiled != version {
		fmt.Fprintf(stdout, "%s: trtexec was compiled with TensorRT %s, its library wrote the plan as %s; recording %s\n",
			j.graph, compiled, version, version)
	}
	sum := sha256.Sum256(plan)
	rec := engines.Plan{
		File:              j.planRel,
		TensorRT:          version,
		ComputeCapability: dev.computeCapability,
		GPU:               dev.name,
		Precision:         "fp16",
		Profiles:          j.profile.record(),
		BatchBuckets:      j.profile.buckets,
		SHA256:            hex.EncodeToString(sum[:]),
	}
	if err := recordPlan(dir, j.graph, rec); err != nil {
		return engines.Plan{}, fmt.Errorf("%s: record the plan: %w", j.graph, err)
	}
	fmt.Fprintf(stdout, "%s: %s, %.1f MB, TensorRT %s, %s %s (compute %s), buckets %v, %s\n", j.graph, j.planRel,
		float64(len(plan))/1e6, version, dev.name, dev.uuid, dev.computeCapability, j.profile.buckets, time.Since(start).Round(time.Second))
	return rec, nil
}
