package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/pipeline"
)

func init() {
	register(command{
		name:    "generate",
		summary: "turn one picture into a mesh file and print the timing breakdown",
		run:     generate,
	})
}

func generate(ctx context.Context, io stdio, args []string) int {
	return exitCode(io.stderr, "hy3d generate", runGenerate(ctx, io, args))
}

type generateFlags struct {
	input, output, format string
	steps                 int
	guidance              float64
	guidanceGiven         bool // --guidance on the command line, 0 included
	seed                  uint64
	resolution, faces     int
	enginesDir, backend   string
	decode                string
	threads               int
	ortLib                string
	verbose               bool
	texture               bool // paint the mesh after shape generation
	paint                 paintFlags
}

func parseGenerateFlags(stdout io.Writer, args []string) (*generateFlags, error) {
	f := &generateFlags{}
	fs := newFlagSet("hy3d generate")
	for _, n := range []string{"i", "input"} {
		fs.StringVar(&f.input, n, "", "input picture (PNG, JPEG or WebP)")
	}
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&f.output, n, "", "output mesh file")
	}
	fs.StringVar(&f.format, "format", "", "glb, stl, obj or ply (default: from the output's extension, else glb)")
	fs.IntVar(&f.steps, "steps", 0, "sampling steps (0: the model set's default)")
	fs.Float64Var(&f.guidance, "guidance", 0, "guidance scale (default: the model set's; 0 means the default for classifier-free guidance)")
	fs.Uint64Var(&f.seed, "seed", 0, "noise seed; one seed gives the same mesh on the same backend")
	fs.IntVar(&f.resolution, "resolution", 0, "octree resolution R: the grid has (R+1)³ points (0: the set's default)")
	fs.IntVar(&f.faces, "faces", pipeline.DefaultFaces, "face budget after cleanup")
	fs.StringVar(&f.enginesDir, "engines", "", "model set folder with manifest.json (default: the embedded silhouette set)")
	fs.StringVar(&f.backend, "backend", pipeline.BackendAuto, "auto, trt or ort")
	fs.StringVar(&f.decode, "decode", "c2f", "volume decoding: dense or c2f (coarse-to-fine)")
	fs.IntVar(&f.threads, "threads", 0, "CPU threads for geometry and ONNX Runtime (0: all cores)")
	fs.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime shared library (default: $"+ort.LibraryEnv+", else build/onnxruntime)")
	fs.BoolVar(&f.verbose, "v", false, "log every stage on stderr")
	fs.BoolVar(&f.texture, "texture", false, "paint the mesh from the picture: a textured .glb, or .obj with .mtl and textures")
	f.paint.register(fs, "paint-")
	if err := parseFlags(fs, stdout, "usage: hy3d generate -i picture.png -o model.glb [--texture] [flags]", args); err != nil {
		return nil, err
	}
	fs.Visit(func(fl *flag.Flag) { f.guidanceGiven = f.guidanceGiven || fl.Name == "guidance" })
	if f.input == "" || f.output == "" {
		return nil, usageError{errors.New("both -i picture and -o mesh are required (hy3d generate -h)")}
	}
	return f, nil
}

// outputFormat picks the mesh format from --format, else the file name.
func outputFormat(flagValue, path string) (mesh.Format, error) {
	if flagValue != "" {
		return mesh.ParseFormat(flagValue)
	}
	if ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."); ext != "" {
		if f, err := mesh.ParseFormat(ext); err == nil {
			return f, nil
		}
	}
	return mesh.ParseFormat("glb")
}

func runGenerate(ctx context.Context, io stdio, args []string) error {
	f, err := parseGenerateFlags(io.stdout, args)
	if err != nil {
		return err
	}
	format, err := outputFormat(f.format, f.output)
	if err != nil {
		return usageError{err}
	}
	if f.texture {
		if format, err = textureFormat(f.output); err != nil {
			return usageError{err}
		}
	}
	mode, err := pipeline.ParseDecodeMode(f.decode)
	if err != nil {
		return usageError{err}
	}
	picture, err := os.ReadFile(f.input)
	if err != nil {
		return err
	}

	log := cliLogger(io.stderr, f.verbose)

	var set *engines.Set
	if f.enginesDir != "" {
		set, err = engines.Open(f.enginesDir)
	} else {
		set, err = engines.Default()
	}
	if err != nil {
		return err
	}
	params := pipeline.Params{
		Steps: f.steps, Guidance: f.guidance, Seed: f.seed, Resolution: f.resolution,
		Decode: mode, Faces: f.faces,
	}
	// A guidance-distilled set takes guidance 0 as a real input, so only a
	// flag left out means the set's default there (as the server does).
	if !f.guidanceGiven {
		params.Guidance = set.Manifest.Sampler.GuidanceScale
	}
	// Check the parameters before the engines load: that takes a while.
	if err := params.WithDefaults(&set.Manifest).Validate(&set.Manifest); err != nil {
		return usageError{err}
	}
	backend := pipeline.BackendOptions{
		Kind:   f.backend,
		ORT:    ort.Options{LibraryPath: f.ortLib, IntraOpThreads: f.threads},
		Logger: log,
	}
	loader, err := pipeline.OpenBackend(ctx, set, backend)
	if err != nil {
		return err
	}
	defer loader.Close()
	p, err := pipeline.New(ctx, pipeline.Config{Set: set, Loader: loader, Logger: log, Threads: f.threads})
	if err != nil {
		return err
	}
	defer p.Close()

	// Preprocessed here, so that painting sees the picture the shape did.
	start := time.Now()
	prep, err := p.Preprocess(ctx, picture)
	if err != nil {
		return fmt.Errorf("preprocess: %w", err)
	}
	preprocessed := time.Since(start)
	res, err := p.Generate(ctx, pipeline.Request{
		ID:       filepath.Base(f.input),
		Prepared: prep,
		Params:   params,
		Formats:  []mesh.Format{format},
	})
	if err != nil {
		return err
	}
	res.Timings.Preprocess = preprocessed
	res.Timings.Total += preprocessed
	for _, w := range res.Warnings {
		fmt.Fprintf(io.stderr, "hy3d generate: warning: %s\n", w)
	}
	if f.texture {
		printBreakdown(io.stdout, "shape", format, set.Name, p.Backend(), res)
		f.paint.seed = f.seed
		return paintAndWrite(ctx, io.stdout, log, f.paint, res.Mesh, p.Picture(prep), f.output, backend, f.threads)
	}
	if err := writeFileAtomic(f.output, res.Outputs[format]); err != nil {
		return err
	}
	printBreakdown(io.stdout, f.output, format, set.Name, p.Backend(), res)
	return nil
}

// writeFileAtomic writes through a temporary file in the same folder, so a
// failed run never leaves a truncated mesh under the requested name.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func printBreakdown(w io.Writer, out string, format mesh.Format, set, backend string, res *pipeline.Result) {
	c, t, prm := res.Counts, res.Timings, res.Params
	fmt.Fprintf(w, "%s: %s, %d bytes, %d vertices, %d faces (model set %s on %s)\n",
		out, format, len(res.Outputs[format]), c.Vertices, c.Faces, set, backend)
	row := func(stage string, d time.Duration, detail string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-10s %10s   %s", stage, ms(d), detail), " "))
	}
	row("preprocess", t.Preprocess, "")
	row("condition", t.Condition, "")
	row("sample", t.Sample, fmt.Sprintf("%d steps, guidance %g, seed %d", c.Steps, prm.Guidance, prm.Seed))
	levels := make([]string, len(c.Levels))
	for i, l := range c.Levels {
		levels[i] = fmt.Sprint(l)
	}
	row("decode", t.Decode, fmt.Sprintf("%s, R %s, %d points (%.1f%% of dense)", prm.Decode,
		strings.Join(levels, "→"), c.PointsDecoded, 100*float64(c.PointsDecoded)/float64(max(c.PointsDense, 1))))
	row("surface", t.Surface, fmt.Sprintf("%d vertices, %d faces", c.SurfaceVerts, c.SurfaceFaces))
	row("clean", t.Clean, fmt.Sprintf("%d vertices, %d faces (budget %d)", c.Vertices, c.Faces, prm.Faces))
	row("export", t.Export, string(format))
	row("total", t.Total, "")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
