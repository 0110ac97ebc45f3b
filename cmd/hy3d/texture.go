package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // pictures in JPEG
	_ "image/png"  // pictures in PNG
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	_ "golang.org/x/image/webp" // pictures in WebP

	"github.com/hy3d/hy3d/cutout"
	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/paint"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/texture"
)

func init() {
	register(command{
		name:    "texture",
		summary: "paint an existing mesh (GLB, OBJ, PLY, STL) from a picture into a textured GLB or OBJ",
		run:     textureCmd,
	})
}

func textureCmd(ctx context.Context, io stdio, args []string) int {
	return exitCode(io.stderr, "hy3d texture", runTexture(ctx, io, args))
}

// paintHelp says which paint set runs without --paint-engines, and why.
const paintHelp = "paint set folder with manifest.json (default: the embedded tiny-paint-2.0-oracle, whose " +
	"constructed models paint the picture itself onto every view: on a CPU without Tencent's paint engines it " +
	"still gives a texture with the picture's colours, where the random tiny sets would paint noise)"

// paintFlags are the painting flags of hy3d texture and hy3d generate --texture.
type paintFlags struct {
	engines     string
	steps       int
	guidance    float64
	seed        uint64
	textureSize int
	faces       int
	noDelight   bool
}

func (p *paintFlags) register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&p.engines, "paint-engines", "", paintHelp)
	fs.IntVar(&p.steps, prefix+"steps", 0, "paint denoising steps (0: the paint set's default)")
	fs.Float64Var(&p.guidance, prefix+"guidance", 0, "paint guidance scale (0: the paint set's default)")
	fs.IntVar(&p.textureSize, "texture-size", paint.DefaultTextureSize, "texture side in texels")
	fs.IntVar(&p.faces, "paint-faces", paint.DefaultMaxFaces, "face budget before painting (-1: none)")
	fs.BoolVar(&p.noDelight, "no-delight", false, "skip a 2.0 paint set's delight model")
}

// textureFormat is how a textured mesh is written: a GLB, or OBJ + MTL +
// textures next to the output.
func textureFormat(path string) (mesh.Format, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".glb", "":
		return mesh.FormatGLB, nil
	case ".obj":
		return mesh.FormatOBJ, nil
	default:
		return "", fmt.Errorf("textured output %q: want .glb or .obj", path)
	}
}

func runTexture(ctx context.Context, io stdio, args []string) error {
	var input, meshPath, output, backend, ortLib string
	var threads int
	var verbose bool
	var pf paintFlags
	fs := newFlagSet("hy3d texture")
	for _, n := range []string{"i", "input"} {
		fs.StringVar(&input, n, "", "input picture (PNG, JPEG or WebP)")
	}
	for _, n := range []string{"m", "mesh"} {
		fs.StringVar(&meshPath, n, "", "mesh to paint (GLB, OBJ, PLY or STL)")
	}
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&output, n, "", "textured output: .glb, or .obj (with .mtl and textures beside it)")
	}
	pf.register(fs, "")
	fs.Uint64Var(&pf.seed, "seed", 0, "noise seed")
	fs.StringVar(&backend, "backend", pipeline.BackendAuto, "auto, trt or ort")
	fs.IntVar(&threads, "threads", 0, "CPU threads for geometry and ONNX Runtime (0: all cores)")
	fs.StringVar(&ortLib, "ort-lib", "", "ONNX Runtime shared library (default: $"+ort.LibraryEnv+", else build/onnxruntime)")
	fs.BoolVar(&verbose, "v", false, "log every stage on stderr")
	if err := parseFlags(fs, io.stdout, "usage: hy3d texture -i picture.png -m mesh.glb -o textured.glb [flags]", args); err != nil {
		return err
	}
	if input == "" || meshPath == "" || output == "" {
		return usageError{errors.New("-i picture, -m mesh and -o output are required (hy3d texture -h)")}
	}
	if _, err := textureFormat(output); err != nil {
		return usageError{err}
	}
	m, err := readMesh(meshPath)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(input)
	if err != nil {
		return err
	}
	picture, err := cutOut(ctx, data)
	if err != nil {
		return err
	}
	log := cliLogger(io.stderr, verbose)
	return paintAndWrite(ctx, io.stdout, log, pf, m, picture, output, pipeline.BackendOptions{
		Kind: backend, ORT: ort.Options{LibraryPath: ortLib, IntraOpThreads: threads}, Logger: log,
	}, threads)
}

func cliLogger(w io.Writer, verbose bool) zerolog.Logger {
	level := zerolog.WarnLevel
	if verbose {
		level = zerolog.InfoLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: time.TimeOnly}).
		Level(level).With().Timestamp().Logger()
}

// maxMeshFile bounds the mesh files hy3d texture reads into memory.
const maxMeshFile = 1 << 30

// readMesh reads a GLB, OBJ, PLY or STL file by its extension.
func readMesh(path string) (*mesh.Mesh, error) {
	format, err := mesh.ParseFormat(strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))
	if err != nil {
		return nil, usageError{fmt.Errorf("mesh %s: %w", path, err)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := io.LimitReader(f, maxMeshFile)
	parse := map[mesh.Format]func(io.Reader) (*mesh.Mesh, error){
		mesh.FormatGLB: mesh.ParseGLB, mesh.FormatOBJ: mesh.ParseOBJ, mesh.FormatPLY: mesh.ParsePLY, mesh.FormatSTL: mesh.ParseSTL,
	}[format]
	m, err := parse(r)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", path, err)
	}
	return m, nil
}

// cutOut decodes a picture and, when it has no transparency, cuts the
// object out with package cutout (as shape generation does without a
// matting model), so that painting composites it on white and a backdrop
// never reaches the texture: Tencent's pipelines paint with the background
// removed. A picture in which nothing stands out is painted as given.
func cutOut(ctx context.Context, data []byte) (image.Image, error) {
	decoded, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode picture: %w", err)
	}
	b := decoded.Bounds()
	img := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(img, img.Rect, decoded, b.Min, draw.Src)
	for i := 3; i < len(img.Pix); i += 4 {
		if img.Pix[i] != 0xff {
			return img, nil
		}
	}
	alpha, err := cutout.Alpha(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("cut out the picture: %w", err)
	}
	if !slices.ContainsFunc(alpha.Pix, func(a uint8) bool { return a != 0 }) {
		return img, nil // nothing stands out: the picture as given
	}
	for i, a := range alpha.Pix {
		img.Pix[4*i+3] = a
	}
	return img, nil
}

// paintAndWrite paints m with the picture and writes the textured mesh to
// output, then prints the stage timings.
func paintAndWrite(ctx context.Context, stdout io.Writer, log zerolog.Logger, pf paintFlags, m *mesh.Mesh,
	picture image.Image, output string, bo pipeline.BackendOptions, threads int) error {
	format, err := textureFormat(output)
	if err != nil {
		return usageError{err}
	}
	var set *engines.Set
	if pf.engines != "" {
		set, err = engines.Open(pf.engines)
	} else {
		set, err = engines.DefaultPaint()
	}
	if err != nil {
		return err
	}
	if !set.IsPaint() {
		return usageError{fmt.Errorf("--paint-engines %s is a %q set, not a paint set", pf.engines, set.Kind)}
	}
	loader, err := pipeline.OpenBackend(ctx, set, bo)
	if err != nil {
		return err
	}
	defer loader.Close()
	p, err := paint.New(ctx, paint.Config{Set: set, Loader: loader, Logger: log, Threads: threads})
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := p.Paint(ctx, m, picture, paint.Options{
		Steps: pf.steps, GuidanceScale: pf.guidance, Seed: pf.seed, TextureSize: pf.textureSize,
		MaxFaces: pf.faces, NoDelight: pf.noDelight,
	})
	if err != nil {
		return err
	}
	size := len(res.GLB)
	if format == mesh.FormatGLB {
		if err := writeFileAtomic(output, res.GLB); err != nil {
			return err
		}
	} else {
		name := strings.TrimSuffix(filepath.Base(output), filepath.Ext(output))
		files, err := texture.WriteOBJ(filepath.Dir(output), name, res.Mesh, res.Atlas, res.Material)
		if err != nil {
			return err
		}
		output = strings.Join(files, ", ")
	}
	printPaintBreakdown(stdout, output, size, set.Name, p.Backend(), res)
	return nil
}

func printPaintBreakdown(w io.Writer, out string, glbSize int, set, backend string, res *paint.Result) {
	t := res.Timings
	mr := ""
	if res.Material.MetallicRoughness != nil {
		mr = " + metallic-roughness"
	}
	fmt.Fprintf(w, "%s: %d faces, %dx%d texture%s, GLB %d bytes (paint set %s on %s)\n", out,
		res.Mesh.TriangleCount(), res.Material.BaseColor.Width, res.Material.BaseColor.Height, mr, glbSize, set, backend)
	row := func(stage paint.Stage, d time.Duration, detail string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-10s %10s   %s", stage, ms(d), detail), " "))
	}
	row(paint.StageFaces, t.Faces, "")
	row(paint.StageAtlas, t.Atlas, "")
	row(paint.StageViews, t.Views, fmt.Sprintf("%d views", len(res.Cameras)))
	row(paint.StageDelight, t.Delight, "")
	row(paint.StageCondition, t.Condition, "")
	row(paint.StageDiffuse, t.Diffuse, fmt.Sprintf("%d steps", res.Steps))
	row(paint.StageDecode, t.Decode, "")
	row(paint.StageBake, t.Bake, "")
	row(paint.StageExport, t.Export, "")
	row("total", t.Total, "")
}
