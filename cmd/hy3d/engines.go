package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/trt"
	"github.com/hy3d/hy3d/verify"
)

func init() {
	register(command{
		name:    "engines",
		summary: "show a model set's manifest and plans (info), check its engines against ONNX Runtime (verify)",
		run:     enginesCommand,
	})
}

const enginesUsage = `usage: hy3d engines <info|verify> [flags]   (hy3d engines <info|verify> -h for their flags)

  info     the manifest as tables: graphs, shapes, profiles, plans and whether this machine can load them
  verify   run each plan and its ONNX graph on the same seeded inputs, and a few sampler steps on both,
           and report the errors against FP16 tolerances`

func enginesCommand(ctx context.Context, io stdio, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(io.stderr, enginesUsage)
		return exitUsage
	}
	var (
		pass = true
		err  error
	)
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(io.stdout, enginesUsage)
		return exitOK
	case "info":
		err = runInfo(io, args[1:])
	case "verify":
		pass, err = runVerify(ctx, io, args[1:])
	default:
		fmt.Fprintf(io.stderr, "hy3d engines: unknown subcommand %q\n%s\n", args[0], enginesUsage)
		return exitUsage
	}
	if err != nil {
		return exitCode(io.stderr, "hy3d engines "+args[0], err)
	}
	if !pass {
		return exitError
	}
	return exitOK
}

func openSet(dir string) (*engines.Set, error) {
	if dir == "" {
		return engines.Default()
	}
	return engines.Open(dir)
}

// ---- info ----

func runInfo(io stdio, args []string) error {
	fs := newFlagSet("hy3d engines info")
	dir := fs.String("engines", "", "model set folder with manifest.json (default: the embedded silhouette set)")
	device := fs.Int("device", 0, "CUDA device the plans would run on")
	if err := parseFlags(fs, io.stdout, "usage: hy3d engines info [--engines DIR] [--device N]", args); err != nil {
		return err
	}
	set, err := openSet(*dir)
	if err != nil {
		return err
	}
	return writeInfo(io.stdout, set, probeMachine(*device))
}

// probeMachine asks the TensorRT runtime what this machine offers plans.
func probeMachine(device int) verify.Machine {
	rt, err := trt.NewRuntime(trt.Options{Device: device})
	if err != nil {
		return verify.Machine{Device: device, Unavailable: oneLine(err)}
	}
	info := rt.Info()
	d := info.Devices[device] // NewRuntime checked the ordinal
	return verify.Machine{TensorRT: info.TensorRT, Device: device, DeviceName: d.Name, ComputeCapability: d.ComputeCapability}
}

func writeInfo(w io.Writer, set *engines.Set, m verify.Machine) error {
	var b strings.Builder
	where := set.Dir
	if where == "" {
		where = "embedded in the hy3d binary"
	}
	kind := "model set"
	if set.IsPaint() {
		kind = "paint set"
	}
	fmt.Fprintf(&b, "%-11s %s — %s (%s)\n", kind, set.Name, set.Family, where)
	if set.Description != "" {
		fmt.Fprintf(&b, "            %s\n", set.Description)
	}
	if set.IsPaint() {
		writePaintSpec(&b, set.Paint)
	} else {
		writeShapeSpec(&b, &set.Manifest)
	}
	if m.Unavailable != "" {
		fmt.Fprintf(&b, "TensorRT    unavailable on this machine (%s)\n", m.Unavailable)
	} else {
		fmt.Fprintf(&b, "TensorRT    %s on device %d, %s (compute capability %s)\n", m.TensorRT, m.Device, m.DeviceName, m.ComputeCapability)
	}

	names := verify.GraphOrder(&set.Manifest, nil)
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRAPH\tONNX\tINPUTS\tOUTPUTS\tMAX BATCH")
	for _, n := range names {
		g := set.Graphs[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", n, g.ONNX, specs(g.Inputs), specs(g.Outputs), g.MaxBatch)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRAPH\tPLAN\tTENSORRT\tGPU (COMPUTE CAPABILITY)\tPRECISION\tBUCKETS\tSHA-256\tCHECKSUM\tLOADABLE HERE")
	var profiled []string
	for _, n := range names {
		c := verify.CheckPlan(set, n, m)
		if c.Plan == nil {
			fmt.Fprintf(tw, "%s\tno plan (ONNX only)\t-\t-\t-\t-\t-\t-\t-\n", n)
			continue
		}
		p := c.Plan
		gpu := "compute capability " + p.ComputeCapability
		if p.GPU != "" {
			gpu = p.GPU + " (" + p.ComputeCapability + ")"
		}
		loadable := "yes"
		if !c.Loadable {
			loadable = "no: " + strings.Join(c.Reasons, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, p.File, p.TensorRT, gpu, p.Precision,
			ints(p.BatchBuckets), short(p.SHA256), c.Checksum, loadable)
		if len(p.Profiles) > 0 {
			profiled = append(profiled, n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(profiled) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROFILE\tINPUT\tMIN\tOPT\tMAX")
		for _, n := range profiled {
			g := set.Graphs[n]
			inputs := make([]string, 0, len(g.Plan.Profiles))
			for name := range g.Plan.Profiles {
				inputs = append(inputs, name)
			}
			// Inputs in the graph's order, any the graph does not name after.
			slices.SortStableFunc(inputs, func(a, b string) int { return specIndex(g.Inputs, a) - specIndex(g.Inputs, b) })
			for _, in := range inputs {
				pr := g.Plan.Profiles[in]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, in, shape(pr.Min), shape(pr.Opt), shape(pr.Max))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeShapeSpec(b *strings.Builder, set *engines.Manifest) {
	t := set.Tokens
	fmt.Fprintf(b, "tokens      cond %d×%d, latents %d×%d, features %d×%d, scale factor %g\n",
		t.CondTokens, t.CondDim, t.LatentTokens, t.LatentChannels, t.LatentTokens, t.FeatureWidth, set.ScaleFactor)
	s := set.Sampler
	fmt.Fprintf(b, "sampler     %s, guidance %s (scale %g), %d steps", s.Kind, s.Guidance, s.GuidanceScale, s.Steps)
	if s.PCMTimesteps > 0 {
		fmt.Fprintf(b, ", pcm_timesteps %d", s.PCMTimesteps)
	}
	v := set.Volume
	fmt.Fprintf(b, "\nvolume      R=%d over ±%g, chunks of %d points, coarse R=%d, refine band %g\n",
		v.Resolution, v.Bounds, v.ChunkPoints, v.CoarseResolution, v.RefineBand)
}

// writePaintSpec prints a paint set's profile and defaults
// (docs/paint-contract.md, "manifest.json's paint block").
func writePaintSpec(b *strings.Builder, p *engines.PaintSpec) {
	fmt.Fprintf(b, "profile     paint %s: %d views of %d², latents %d×%d², VAE scale factor %g, %d reference view(s), materials %s\n",
		p.Version, p.Views, p.ViewSize, p.LatentChannels, p.ViewSize/8, p.VAEScaleFactor, p.ReferenceViews,
		strings.Join(p.Materials, ", "))
	s := p.Sampler
	fmt.Fprintf(b, "sampler     %s, guidance %s (%d rows per job, scale %g), %d steps, config %s",
		s.Kind, s.Guidance, s.RowsPerJob(), s.GuidanceScale, s.Steps, s.Config)
	if len(s.Timesteps) > 0 {
		fmt.Fprintf(b, ", timesteps %s", ints(s.Timesteps))
	}
	b.WriteString("\n")
	if c := p.Cameras; c != nil {
		fmt.Fprintf(b, "cameras     ids + %d, %d classes\n", c.Offset, c.Classes)
	}
	if d := p.Delight; d != nil {
		fmt.Fprintf(b, "delight     %d², %d steps, guidance %g, image guidance %g, config %s\n",
			d.ViewSize, d.Steps, d.GuidanceScale, d.ImageGuidanceScale, d.Config)
	}
	if d := p.DINO; d != nil {
		fmt.Fprintf(b, "dino        %d², %d tokens × %d, mean %g, std %g\n", d.Size, d.Tokens, d.Dim, d.Mean, d.Std)
	}
	if p.Upscale > 0 {
		fmt.Fprintf(b, "upscale     ×%d\n", p.Upscale)
	}
	if r := p.RoPE; r != nil {
		fmt.Fprintf(b, "rope        grids %s, voxels %s\n", ints(r.Grids), ints(r.Voxels))
	}
}

func specIndex(specs []engines.TensorSpec, name string) int {
	i := slices.IndexFunc(specs, func(s engines.TensorSpec) bool { return s.Name == name })
	if i < 0 {
		return len(specs)
	}
	return i
}

// specs prints tensor specs with B for the batch and ? for other open dims.
func specs(ts []engines.TensorSpec) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		dims := make([]string, len(t.Shape))
		for k, d := range t.Shape {
			switch {
			case d >= 0:
				dims[k] = strconv.FormatInt(d, 10)
			case k == 0:
				dims[k] = "B"
			default:
				dims[k] = "?"
			}
		}
		out[i] = t.Name + " " + strings.Join(dims, "×")
	}
	return strings.Join(out, ", ")
}

func shape(dims []int64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return strings.Join(parts, "×")
}

func ints(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12] + "…"
	}
	return sha
}

// ---- verify ----

// Values of --against.
const (
	againstTRT        = "trt"
	againstORTThreads = "ort-threads"
	againstReference  = "reference"
)

type verifyFlags struct {
	enginesDir, against, reference string
	writeReference, json           bool
	seed                           uint64
	batch, steps, resolution       int
	guidance                       float64
	atol, rtol, band, agreement    float64
	graphs                         string
	threads, device                int
	cudaGraphs                     bool
	ortLib                         string
}

const verifyUsage = `usage: hy3d engines verify [--engines DIR] [--against trt|ort-threads|reference] [--seed N] [--json] [flags]

Runs every graph on two backends with the same seeded inputs and compares each output (max, mean,
median and p99 of the absolute and relative error; an element fails only when both exceed their bound;
NaN always fails; infinities must match), then runs the sampler for a few steps on both and compares the
occupancy signs near the surface. Exit status 0 when everything passes, 1 when anything fails.

Without --against: TensorRT against ONNX Runtime when this machine can load the set's plans; otherwise
ONNX Runtime at 1 against 2 threads, and against the stored reference (DIR/reference) when there is one.
--write-reference stores ONNX Runtime's outputs as that reference. A paint set (manifest kind "paint") compares
every paint graph with inputs that follow docs/paint-contract.md and has no sampler comparison.`

func parseVerifyFlags(stdout io.Writer, args []string) (*verifyFlags, error) {
	f := &verifyFlags{}
	fs := newFlagSet("hy3d engines verify")
	fs.StringVar(&f.enginesDir, "engines", "", "model set folder with manifest.json (default: the embedded silhouette set)")
	fs.StringVar(&f.against, "against", "", "trt (TensorRT vs ONNX Runtime), ort-threads (ONNX Runtime at 1 vs 2 threads) or reference (ONNX Runtime vs the stored reference); default: see above")
	fs.StringVar(&f.reference, "reference", "", "stored reference folder (default: DIR/reference)")
	fs.BoolVar(&f.writeReference, "write-reference", false, "run ONNX Runtime (1 thread) and store its outputs as the reference, then exit")
	fs.BoolVar(&f.json, "json", false, "print the reports as JSON")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the inputs, the test picture and the sampler's noise")
	fs.IntVar(&f.batch, "batch", 0, "batch each graph runs at, capped by its max_batch (default 2)")
	fs.IntVar(&f.steps, "steps", -1, "sampler steps to compare; 0 skips the sampler (default 5; paint sets: 0, graphs only)")
	fs.Float64Var(&f.guidance, "guidance", 0, "guidance scale of the sampler run (default: the manifest's)")
	fs.IntVar(&f.resolution, "resolution", 0, "dense grid resolution R of the sampler comparison (default 32)")
	fs.Float64Var(&f.atol, "atol", verify.FP16Abs, "absolute error bound")
	fs.Float64Var(&f.rtol, "rtol", verify.FP16Rel, "relative error bound")
	fs.Float64Var(&f.band, "band", 0, "|logit| below which a grid point counts as near the surface (default: the manifest's refine band)")
	fs.Float64Var(&f.agreement, "agreement", verify.DefaultAgreement, "fraction of near-surface points whose signs must agree")
	fs.StringVar(&f.graphs, "graphs", "", "comma-separated graphs to compare (default: all)")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime threads when it is the reference for TensorRT (0: all cores)")
	fs.IntVar(&f.device, "device", 0, "CUDA device for TensorRT")
	fs.BoolVar(&f.cudaGraphs, "cuda-graphs", true, "run TensorRT engines through captured CUDA graphs, as the server does")
	fs.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime shared library (default: $"+ort.LibraryEnv+", else build/onnxruntime)")
	if err := parseFlags(fs, stdout, verifyUsage, args); err != nil {
		return nil, err
	}
	switch f.against {
	case "", againstTRT, againstORTThreads, againstReference:
	default:
		return nil, usageError{fmt.Errorf("--against %q: want trt, ort-threads or reference", f.against)}
	}
	if f.writeReference && f.against != "" {
		return nil, usageError{errors.New("--write-reference writes ONNX Runtime's outputs; it takes no --against")}
	}
	return f, nil
}

// options turns the flags into verify.Options for the set.
func (f *verifyFlags) options(m *engines.Manifest) (verify.Options, error) {
	o := verify.DefaultOptions(m)
	o.Seed = f.seed
	o.Sampler.Seed = f.seed
	if f.batch != 0 {
		o.Batch = f.batch
	}
	if f.steps >= 0 {
		o.Sampler.Steps = f.steps
	}
	if m.IsPaint() && o.Sampler.Steps > 0 {
		return o, usageError{fmt.Errorf("--steps %d: paint set %q has no sampler comparison (it compares every graph)", f.steps, m.Name)}
	}
	if f.guidance != 0 {
		o.Sampler.Guidance = f.guidance
	}
	if f.resolution != 0 {
		o.Sampler.Resolution = f.resolution
	}
	if f.band != 0 {
		o.Band = f.band
	}
	o.Tolerance = verify.Tolerance{Abs: f.atol, Rel: f.rtol}
	o.Agreement = f.agreement
	if f.graphs != "" {
		for _, g := range strings.Split(f.graphs, ",") {
			if _, ok := m.Graphs[g]; !ok {
				return o, usageError{fmt.Errorf("--graphs: model set %q has no graph %q", m.Name, g)}
			}
			o.Graphs = append(o.Graphs, g)
		}
	}
	switch {
	case o.Batch < 1:
		return o, usageError{fmt.Errorf("--batch %d < 1", o.Batch)}
	case o.Sampler.Steps > pipeline.MaxSteps:
		return o, usageError{fmt.Errorf("--steps %d above %d", o.Sampler.Steps, pipeline.MaxSteps)}
	case o.Sampler.Steps > 0 && (o.Sampler.Resolution < pipeline.MinResolution || o.Sampler.Resolution > pipeline.MaxResolution):
		return o, usageError{fmt.Errorf("--resolution %d outside %d..%d", o.Sampler.Resolution, pipeline.MinResolution, pipeline.MaxResolution)}
	case !(o.Tolerance.Abs >= 0) || !(o.Tolerance.Rel >= 0):
		return o, usageError{fmt.Errorf("--atol %g and --rtol %g must be non-negative", o.Tolerance.Abs, o.Tolerance.Rel)}
	case !(o.Agreement >= 0 && o.Agreement <= 1):
		return o, usageError{fmt.Errorf("--agreement %g outside [0, 1]", o.Agreement)}
	case o.Band < 0:
		return o, usageError{fmt.Errorf("--band %g < 0", o.Band)}
	}
	return o, nil
}

// comparison is one pair of sides to compare, with the options to use.
type comparison struct {
	got, want verify.Backend
	opts      verify.Options
}

// verifyOutput is what --json prints.
type verifyOutput struct {
	Set     string           `json:"set"`
	Note    string           `json:"note,omitempty"`
	Reports []*verify.Report `json:"reports"`
	Pass    bool             `json:"pass"`
}

func runVerify(ctx context.Context, io stdio, args []string) (bool, error) {
	f, err := parseVerifyFlags(io.stdout, args)
	if err != nil {
		return false, err
	}
	set, err := openSet(f.enginesDir)
	if err != nil {
		return false, err
	}
	opts, err := f.options(&set.Manifest)
	if err != nil {
		return false, err
	}
	refDir := f.reference
	if refDir == "" && set.Dir != "" {
		refDir = filepath.Join(set.Dir, "reference")
	}

	// Every loader opened here is closed on the way out.
	var loaders []pipeline.Loader
	defer func() {
		for _, l := range loaders {
			l.Close()
		}
	}()
	openORT := func(threads int) (verify.Backend, error) {
		l, err := pipeline.OpenBackend(ctx, set, pipeline.BackendOptions{Kind: pipeline.BackendORT,
			ORT: ort.Options{LibraryPath: f.ortLib, IntraOpThreads: threads}})
		if err != nil {
			return nil, err
		}
		loaders = append(loaders, l)
		name := "ort"
		switch threads {
		case 0:
		case 1:
			name = "ort (1 thread)"
		default:
			name = fmt.Sprintf("ort (%d threads)", threads)
		}
		return verify.LoaderBackend(name, set, l), nil
	}

	if f.writeReference {
		if refDir == "" {
			return false, usageError{errors.New("the embedded set has no folder: give --reference DIR")}
		}
		b, err := openORT(1)
		if err != nil {
			return false, err
		}
		// Recorded so that a stale reference names the command that
		// regenerates it.
		cmd := strings.Join(append([]string{"hy3d engines verify"}, args...), " ")
		if err := verify.WriteReference(ctx, refDir, set, b, opts, cmd); err != nil {
			return false, err
		}
		volume := "no sampler volume"
		if opts.Sampler.Steps > 0 {
			volume = fmt.Sprintf("the sampler's volume (%d steps, R=%d)", opts.Sampler.Steps, opts.Sampler.Resolution)
		}
		fmt.Fprintf(io.stdout, "wrote the outputs of %d graphs (seed %d, batch %d) and %s on %s to %s\n",
			len(verify.GraphOrder(&set.Manifest, opts.Graphs)), opts.Seed, opts.Batch, volume, b.Name(), refDir)
		return true, nil
	}

	openReference := func() (verify.Backend, verify.Options, error) {
		if refDir == "" {
			return nil, opts, errors.New("the embedded set has no stored reference: give --reference DIR")
		}
		ref, err := verify.OpenReference(refDir, set)
		if err != nil {
			return nil, opts, err
		}
		return ref, ref.Options(opts), nil
	}
	threadPair := func() (comparison, error) {
		one, err := openORT(1)
		if err != nil {
			return comparison{}, err
		}
		two, err := openORT(2)
		if err != nil {
			return comparison{}, err
		}
		return comparison{got: two, want: one, opts: opts}, nil
	}
	againstRef := func() (comparison, error) {
		ref, ropts, err := openReference()
		if err != nil {
			return comparison{}, err
		}
		b, err := openORT(f.threads)
		if err != nil {
			return comparison{}, err
		}
		return comparison{got: b, want: ref, opts: ropts}, nil
	}

	var (
		note  string
		pairs []comparison
	)
	switch f.against {
	case againstORTThreads:
		c, err := threadPair()
		if err != nil {
			return false, err
		}
		pairs = append(pairs, c)
	case againstReference:
		c, err := againstRef()
		if err != nil {
			return false, err
		}
		pairs = append(pairs, c)
	default:
		l, err := pipeline.OpenBackend(ctx, set, pipeline.BackendOptions{Kind: pipeline.BackendTRT,
			TRT: trt.Options{Device: f.device, CUDAGraphs: f.cudaGraphs}})
		if err == nil {
			loaders = append(loaders, l)
			b, err := openORT(f.threads)
			if err != nil {
				return false, err
			}
			pairs = append(pairs, comparison{got: verify.LoaderBackend("trt", set, l), want: b, opts: opts})
			break
		}
		if f.against == againstTRT {
			if errors.Is(err, tensor.ErrUnavailable) {
				return false, fmt.Errorf("TensorRT unavailable on this machine: %w", err)
			}
			return false, err
		}
		// Without TensorRT the comparison code still runs, on ONNX Runtime
		// against itself and against what it computed when the reference
		// was written.
		what := "TensorRT unavailable on this machine"
		if !errors.Is(err, tensor.ErrUnavailable) {
			what = "TensorRT plans not usable here"
		}
		c, cerr := threadPair()
		if cerr != nil {
			return false, cerr
		}
		pairs = append(pairs, c)
		_, statErr := os.Stat(filepath.Join(refDir, verify.ReferenceFile))
		if refDir != "" && statErr == nil {
			c, cerr := againstRef()
			if cerr != nil {
				return false, cerr
			}
			pairs = append(pairs, c)
			note = what + ": comparing ORT at 1 vs 2 threads and against the stored reference"
		} else {
			note = what + ": comparing ORT at 1 vs 2 threads (no stored reference"
			if refDir != "" {
				note += " in " + refDir + "; write one with --write-reference"
			}
			note += ")"
		}
		note += "\n  (" + oneLine(err) + ")"
	}

	out := verifyOutput{Set: set.Name, Note: note, Pass: true}
	for _, c := range pairs {
		r, err := verify.Run(ctx, set, c.got, c.want, c.opts)
		if err != nil {
			return false, err
		}
		out.Reports = append(out.Reports, r)
		out.Pass = out.Pass && r.Pass
	}
	if f.json {
		enc := json.NewEncoder(io.stdout)
		enc.SetIndent("", "  ")
		return out.Pass, enc.Encode(out)
	}
	if note != "" {
		fmt.Fprintln(io.stdout, note)
		fmt.Fprintln(io.stdout)
	}
	for i, r := range out.Reports {
		if i > 0 {
			fmt.Fprintln(io.stdout)
		}
		if err := r.WriteText(io.stdout); err != nil {
			return false, err
		}
	}
	if len(out.Reports) > 1 {
		fmt.Fprintf(io.stdout, "\noverall: %s\n", map[bool]string{true: "PASS", false: "FAIL"}[out.Pass])
	}
	return out.Pass, nil
}
