// Command schedsim measures hy3d's job engine on a GPU it does not have:
// the real engine (package jobs) drives a generator whose every call takes
// the time a cost model gives it (time = a + b·rows per graph call; the GPU
// runs one call at a time, the CPU stages after decoding run beside it), with
// Poisson arrivals at shares of the machine's capacity. For each load it
// runs dispatch batching (a batch runs to its end before the next is taken)
// and continuous batching with pipelining (jobs join and leave between DiT
// steps, the stages after sampling overlap the next steps), and reports
// throughput and p50/p99 latency from arrival to result, in model time, as a
// Markdown table, results.json and an SVG plot.
//
// Time is compressed by -scale (model time ÷ wall time), so a run of the
// default preset takes a few minutes; the engine's own overhead is scaled up
// with it, which errs against both policies alike.
//
//	go run ./bench/schedsim                                   # the RTX 3090 preset
//	go run ./bench/schedsim -costs measured.json -jobs 300    # a cost model written by hand
//	go run ./bench/schedsim -engines DIR                      # plans timed by tools/build-engines --time
//	go run ./bench/schedsim -replot bench/out/schedsim/results.json   # table and plot again, no simulation
//	go run ./bench/schedsim -sizing 1000000                   # how many GPUs keep p99 near a job alone: arithmetic, no simulation
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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/jobs"
)

type config struct {
	preset       string
	costs        string
	engines      string
	pointsPerJob int
	meshMS       float64
	replot       string
	sizing       int
	jobs         int
	loads        []float64
	maxBatch     int
	workers      int
	scale        float64
	seed         int64
	out          string
}

func parseConfig(args []string) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("bench/schedsim", flag.ContinueOnError)
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	fs.StringVar(&cfg.preset, "preset", "hy3d-2mini-turbo-3090", "cost model preset: "+strings.Join(names, ", "))
	fs.StringVar(&cfg.engines, "engines", "", "model set folder whose plans tools/build-engines --time timed (replaces -preset): its cost model is fitted to "+engines.TimingsFile)
	fs.IntVar(&cfg.pointsPerJob, "points-per-job", 1_000_000, "with -engines: vae_geometry queries per job (coarse-to-fine at R = 256 evaluates about 6 % of the 257³ grid)")
	fs.Float64Var(&cfg.meshMS, "mesh-ms", 235, "with -engines: CPU time per job of the stages after decoding (surface, cleanup, export)")
	fs.StringVar(&cfg.replot, "replot", "", "results.json of an earlier run: write its table and plot again instead of simulating")
	fs.IntVar(&cfg.sizing, "sizing", 0, "instead of simulating, print the first-come-first-served reference's p99 on 1, 2, 4 and 8 GPUs behind one queue at each load, over this many arrivals per cell")
	fs.StringVar(&cfg.costs, "costs", "", "cost model JSON file (replaces -preset): steps, rows_per_job, condition/dit/decode {a_ms, b_ms}, mesh_ms")
	fs.IntVar(&cfg.jobs, "jobs", 120, "jobs per run")
	loads := fs.String("loads", "0.25,0.5,0.8,1,1.2", "offered loads, as shares of capacity")
	fs.IntVar(&cfg.maxBatch, "max-batch", 8, "jobs sampling together")
	fs.IntVar(&cfg.workers, "workers", 2, "the engine's finishers (hy3d serve --workers): with 2, one job decodes on the GPU while another meshes on the CPU")
	fs.Float64Var(&cfg.scale, "scale", 5, "model time ÷ wall time")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the arrival times")
	fs.StringVar(&cfg.out, "out", "bench/out/schedsim", "folder for results.json and schedsim.svg")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, f := range strings.Split(*loads, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return cfg, fmt.Errorf("-loads: %q is not a positive share", f)
		}
		cfg.loads = append(cfg.loads, v)
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.jobs < 1 || cfg.maxBatch < 1 || cfg.workers < 1 || cfg.scale <= 0:
		return cfg, errors.New("-jobs, -max-batch, -workers and -scale must be positive")
	case cfg.sizing < 0:
		return cfg, errors.New("-sizing must not be negative")
	}
	return cfg, nil
}

// report is a whole simulation.
type report struct {
	Model    costModel               `json:"model"`
	MaxBatch int                     `json:"max_batch"`
	Capacity float64                 `json:"capacity_jobs_per_second"`
	AloneMS  map[jobs.Policy]float64 `json:"alone_ms"`
	Rows     []outcome               `json:"rows"`
}

// costModelOf is the cost model the flags choose: measured plan timings,
// a file, or a preset.
func costModelOf(cfg config) (costModel, error) {
	switch {
	case cfg.engines != "":
		return measuredModel(cfg.engines, cfg.pointsPerJob, cfg.meshMS)
	case cfg.costs != "":
		return loadCosts(cfg.costs)
	}
	model, ok := presets[cfg.preset]
	if !ok {
		return costModel{}, fmt.Errorf("no preset %q", cfg.preset)
	}
	return model, nil
}

func run(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	model, err := costModelOf(cfg)
	if err != nil {
		return nil, err
	}
	rep := &report{Model: model, MaxBatch: cfg.maxBatch, Capacity: model.capacity(cfg.maxBatch), AloneMS: map[jobs.Policy]float64{}}
	for _, ps := range policies {
		pol := ps.policy
		o, err := simulate(ctx, simConfig{model: model, policy: pol, maxBatch: cfg.maxBatch, workers: cfg.workers, scale: cfg.scale, jobs: 5, seed: cfg.seed})
		if err != nil {
			return nil, err
		}
		rep.AloneMS[pol] = o.P50MS
	}
	for _, load := range cfg.loads {
		for _, ps := range policies {
			pol := ps.policy
			o, err := simulate(ctx, simConfig{model: model, policy: pol, maxBatch: cfg.maxBatch, workers: cfg.workers, scale: cfg.scale,
				jobs: cfg.jobs, rate: load * rep.Capacity, seed: cfg.seed})
			if err != nil {
				return nil, fmt.Errorf("%s at %.0f%%: %w", pol, load*100, err)
			}
			o.Load = load
			rep.Rows = append(rep.Rows, o)
			fmt.Fprintf(progress, "%-10s load %3.0f%%: %.2f jobs/s, p50 %.0f ms, p99 %.0f ms\n", pol, load*100, o.PerSecond, o.P50MS, o.P99MS)
		}
	}
	return rep, nil
}

func (r *report) markdown(w io.Writer) {
	var alone []string
	for _, ps := range policies {
		alone = append(alone, fmt.Sprintf("%.0f ms (%s)", r.AloneMS[ps.policy], ps.policy))
	}
	fmt.Fprintf(w, "Cost model %s (%d steps, DiT a=%.1f ms b=%.1f ms per row, condition b=%.1f ms, decode b=%.1f ms, CPU stages %.0f ms), batches of up to %d: capacity %.2f jobs/s; one job alone %s.\n\n",
		r.Model.Name, r.Model.Steps, r.Model.DiT.A, r.Model.DiT.B, r.Model.Condition.B, r.Model.Decode.B, r.Model.MeshMS,
		r.MaxBatch, r.Capacity, strings.Join(alone, ", "))
	fmt.Fprintln(w, "| load | policy | jobs/s | p50 ms | p99 ms | p99 ÷ alone | FCFS reference p99 ms (÷ alone) | mean DiT batch |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, o := range r.Rows {
		alone := r.AloneMS[o.Policy]
		fmt.Fprintf(w, "| %.0f %% | %s | %.2f | %.0f | %.0f | %.2f | %.0f (%.2f) | %.2f |\n", o.Load*100, o.Policy, o.PerSecond, o.P50MS,
			o.P99MS, o.P99MS/alone, o.ReferenceP99MS, o.ReferenceP99MS/alone, o.MeanDiTBatch)
	}
}

// writeSizing writes the sizing table in Markdown.
func writeSizing(w io.Writer, m costModel, maxBatch int, rows []sizingRow, n int) {
	alone := float64(m.alone()) / float64(time.Millisecond)
	fmt.Fprintf(w, "First-come-first-served reference, cost model %s, batches of up to %d: a job alone %.0f ms, a GPU's capacity %.2f jobs/s; p99 ms (÷ alone) over %d Poisson arrivals, each GPU offered the load:\n\n",
		m.Name, maxBatch, alone, m.capacity(maxBatch), n)
	fmt.Fprint(w, "| load |")
	for _, g := range sizingGPUs {
		unit := "GPUs"
		if g == 1 {
			unit = "GPU"
		}
		fmt.Fprintf(w, " %d %s |", g, unit)
	}
	fmt.Fprint(w, "\n| ---: |"+strings.Repeat(" ---: |", len(sizingGPUs))+"\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %.0f %% |", r.Load*100)
		for _, p := range r.P99MS {
			fmt.Fprintf(w, " %.0f (%.2f) |", p, p/alone)
		}
		fmt.Fprintln(w)
	}
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "schedsim.svg"))
	if err != nil {
		return err
	}
	err = writeSVG(f, r.Rows, r.AloneMS[jobs.PolicyContinuous], r.Capacity)
	return errors.Join(err, f.Close())
}

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/schedsim: %v\n", err)
		os.Exit(2)
	}
	if cfg.sizing > 0 {
		m, err := costModelOf(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/schedsim: %v\n", err)
			os.Exit(1)
		}
		writeSizing(os.Stdout, m, cfg.maxBatch, sizing(m, cfg.maxBatch, cfg.loads, cfg.sizing, cfg.seed), cfg.sizing)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var rep *report
	if cfg.replot != "" {
		rep, err = readReport(cfg.replot)
	} else {
		rep, err = run(ctx, cfg, os.Stderr)
	}
	if err == nil {
		err = rep.write(cfg.out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/schedsim: %v\n", err)
		os.Exit(1)
	}
	rep.markdown(os.Stdout)
	fmt.Printf("\nresults.json and schedsim.svg are in %s\n", cfg.out)
}
