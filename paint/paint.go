// Package paint owns textured generation with Hunyuan3D-Paint 2.0 and 2.1
// paint sets (docs/paint-contract.md): given a mesh and a picture it runs
// the face budget, the UV atlas, the cameras (2.1: view selection), the
// normal and position maps, the optional 2.0 delight, the condition
// encodings with the VAE (sampled on the host with seeded noise), the
// reference UNet once per job, the multi-view diffusion with the set's
// scheduler and guidance layout (classifier-free guidance combined on the
// host), the VAE decoder, the 2.1 upscaler, the bake, the fill and the PBR
// material, and writes a textured GLB. It reaches the graphs through
// pipeline's Engine and Loader, so the same code runs TensorRT plans and
// ONNX Runtime; the geometry comes from package texture and the samplers
// from package schedulers. docs/paint.md describes the stages and where they
// differ from Tencent's.
package paint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/texture"
)

// Config configures a Painter.
type Config struct {
	Set    *engines.Set // a paint set (Kind "paint")
	Loader pipeline.Loader
	Logger zerolog.Logger
	// Threads bounds the CPU threads of the geometry kernels; 0 means
	// runtime.NumCPU().
	Threads int
}

// Painter paints meshes with one paint set on one backend. Its methods are
// safe for concurrent use as far as its engines are.
type Painter struct {
	set     *engines.Set
	spec    *engines.PaintSpec
	backend string
	log     zerolog.Logger
	threads int
	g       map[string]pipeline.Engine
}

// New loads every graph of cfg.Set through cfg.Loader. The Loader stays the
// caller's to close, after the Painter.
func New(ctx context.Context, cfg Config) (*Painter, error) {
	if cfg.Set == nil || cfg.Loader == nil {
		return nil, errors.New("paint: Config needs a Set and a Loader")
	}
	if !cfg.Set.IsPaint() || cfg.Set.Paint == nil {
		return nil, fmt.Errorf("paint: model set %q is not a paint set", cfg.Set.Name)
	}
	p := &Painter{set: cfg.Set, spec: cfg.Set.Paint, log: cfg.Logger, threads: cfg.Threads,
		g: map[string]pipeline.Engine{}}
	if p.threads <= 0 {
		p.threads = runtime.NumCPU()
	}
	names := append([]string(nil), engines.RequiredPaintGraphs[p.spec.Version]...)
	if _, ok := cfg.Set.Graphs[engines.Delight]; ok {
		names = append(names, engines.Delight)
	}
	for _, name := range names {
		e, err := cfg.Loader.Load(ctx, cfg.Set, name)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("paint: load %s on %s: %w", name, cfg.Loader.Name(), err), p.Close())
		}
		p.g[name] = e
	}
	p.backend = cfg.Loader.Name()
	return p, nil
}

// Close closes the engines.
func (p *Painter) Close() error {
	var errs []error
	for _, e := range p.g {
		errs = append(errs, e.Close())
	}
	return errors.Join(errs...)
}

// Backend names the backend the engines run on.
func (p *Painter) Backend() string { return p.backend }

// Spec is the paint set's profile.
func (p *Painter) Spec() *engines.PaintSpec { return p.spec }

// Stage names one step of texturing, in order.
type Stage string

// Stages.
const (
	StageFaces     Stage = "faces"     // face budget
	StageAtlas     Stage = "atlas"     // UV atlas, scene, UV raster
	StageViews     Stage = "views"     // cameras, normal and position maps
	StageDelight   Stage = "delight"   // 2.0 sets with a delight graph
	StageCondition Stage = "condition" // VAE encodings, paint_ref, DINOv2, RoPE indices
	StageDiffuse   Stage = "diffuse"   // the multi-view denoising loop
	StageDecode    Stage = "decode"    // vae_decoder and (2.1) the upscaler
	StageBake      Stage = "bake"      // bake and fill
	StageExport    Stage = "export"    // GLB
)

// Progress is reported when a stage starts and after every denoising step
// (Step of Steps, StageDiffuse and StageDelight only).
type Progress struct {
	Stage Stage
	Step  int
	Steps int
}

// Options are one job's settings; zero values take the set's defaults.
type Options struct {
	Steps         int     // denoising steps; 0: the set's sampler.steps (turbo: its fixed timesteps)
	GuidanceScale float64 // 0: the set's sampler.guidance_scale
	Seed          uint64
	TextureSize   int // texture side in texels; 0: DefaultTextureSize
	// BakeViewSize is the side at which views are rendered for baking (the
	// generated views are resized to it); 0: the texture size.
	BakeViewSize int
	// MaxFaces is the face budget: larger meshes are simplified to it before
	// the atlas; 0: DefaultMaxFaces, < 0: no budget.
	MaxFaces int
	// NoDelight skips a 2.0 set's delight graph.
	NoDelight bool
	// Progress, when set, is called on the painting goroutine; it must
	// return quickly.
	Progress func(Progress)
}

// Defaults: Tencent's face budget (40,000, FaceReducer and 2.1's remesh)
// and a texture of 1024² (Tencent: 2048), which keeps CPU runs short.
const (
	DefaultMaxFaces    = 40000
	DefaultTextureSize = 1024
)

// Timings are the wall times of the stages of one job.
type Timings struct {
	Faces, Atlas, Views, Delight, Condition, Diffuse, Decode, Bake, Export time.Duration
	Total                                                                  time.Duration
}

// Result is a textured mesh: the mesh as painted (after the face budget),
// its atlas and material, the material as a GLB, and what ran.
type Result struct {
	Mesh     *mesh.Mesh
	Atlas    *texture.Atlas
	Material texture.Material
	GLB      []byte
	Cameras  []texture.Camera
	// Views are the generated views as decoded (and upscaled), picture row
	// order (row 0 at the top), RGB in [0, 1]; 2.1 appends the MR views.
	Views []texture.Image
	// Reference is the picture as the models saw it (after delight), at the
	// view size.
	Reference texture.Image
	Steps     int
	Timings   Timings
}

// job carries one texturing through the stages.
type job struct {
	p    *Painter
	opt  Options
	ctx  context.Context
	res  *Result
	cams []texture.Camera
}

func (j *job) stage(s Stage, d *time.Duration, fn func() error) error {
	if err := j.ctx.Err(); err != nil {
		return fmt.Errorf("paint %s: %w", s, err)
	}
	if j.opt.Progress != nil {
		j.opt.Progress(Progress{Stage: s})
	}
	start := time.Now()
	err := fn()
	*d += time.Since(start)
	if err != nil {
		return fmt.Errorf("paint %s: %w", s, err)
	}
	return nil
}

// Paint textures m with picture.
func (p *Painter) Paint(ctx context.Context, m *mesh.Mesh, picture image.Image, opt Options) (*Result, error) {
	start := time.Now()
	if m == nil || picture == nil || picture.Bounds().Empty() {
		return nil, errors.New("paint: a mesh and a non-empty picture are required")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("paint: %w", err)
	}
	if m.TriangleCount() == 0 {
		return nil, errors.New("paint: the mesh has no triangles")
	}
	if opt.TextureSize == 0 {
		opt.TextureSize = DefaultTextureSize
	}
	if opt.TextureSize < 16 || opt.TextureSize > 8192 {
		return nil, fmt.Errorf("paint: texture size %d outside 16..8192", opt.TextureSize)
	}
	if opt.BakeViewSize == 0 {
		opt.BakeViewSize = opt.TextureSize
	}
	if opt.BakeViewSize < p.spec.ViewSize || opt.BakeViewSize > 8192 {
		return nil, fmt.Errorf("paint: bake view size %d outside %d..8192", opt.BakeViewSize, p.spec.ViewSize)
	}
	if opt.MaxFaces == 0 {
		opt.MaxFaces = DefaultMaxFaces
	}
	j := &job{p: p, opt: opt, ctx: ctx, res: &Result{}}
	t := &j.res.Timings

	if err := j.stage(StageFaces, &t.Faces, func() error {
		var err error
		j.res.Mesh, err = faceBudget(ctx, m, opt.MaxFaces, p.threads)
		return err
	}); err != nil {
		return nil, err
	}
	var geo *geometry
	if err := j.stage(StageAtlas, &t.Atlas, func() error {
		var err error
		geo, err = newGeometry(ctx, j.res.Mesh, opt.TextureSize, p.threads)
		return err
	}); err != nil {
		return nil, err
	}
	j.res.Atlas = geo.atlas
	var maps conditionMaps
	if err := j.stage(StageViews, &t.Views, func() error {
		var err error
		if j.cams, err = p.cameras(ctx, geo.scene); err != nil {
			return err
		}
		maps, err = p.renderMaps(ctx, geo.scene, j.cams)
		return err
	}); err != nil {
		return nil, err
	}
	j.res.Cameras = j.cams
	noise := newNoise(opt.Seed)
	ref := preparePicture(picture, p.spec.ViewSize)
	if _, ok := p.g[engines.Delight]; ok && !opt.NoDelight {
		if err := j.stage(StageDelight, &t.Delight, func() error {
			var err error
			ref, err = j.delight(ref, noise)
			return err
		}); err != nil {
			return nil, err
		}
	}
	j.res.Reference = ref
	var cond *conditions
	if err := j.stage(StageCondition, &t.Condition, func() error {
		var err error
		cond, err = j.condition(ref, maps, noise)
		return err
	}); err != nil {
		return nil, err
	}
	var latents []float32
	if err := j.stage(StageDiffuse, &t.Diffuse, func() error {
		var err error
		latents, err = j.diffuse(cond, noise)
		return err
	}); err != nil {
		return nil, err
	}
	if err := j.stage(StageDecode, &t.Decode, func() error {
		var err error
		j.res.Views, err = j.decode(latents)
		return err
	}); err != nil {
		return nil, err
	}
	if err := j.stage(StageBake, &t.Bake, func() error {
		var err error
		j.res.Material, err = j.bake(geo)
		return err
	}); err != nil {
		return nil, err
	}
	if err := j.stage(StageExport, &t.Export, func() error {
		var buf bytes.Buffer
		if err := texture.WriteGLB(&buf, j.res.Mesh, j.res.Atlas, j.res.Material); err != nil {
			return err
		}
		j.res.GLB = buf.Bytes()
		return nil
	}); err != nil {
		return nil, err
	}
	t.Total = time.Since(start)
	p.log.Debug().Str("set", p.set.Name).Int("faces", j.res.Mesh.TriangleCount()).Int("steps", j.res.Steps).
		Dur("total", t.Total).Msg("painted")
	return j.res, nil
}

// faceBudget simplifies m to maxFaces when it has more (maxFaces < 0: never).
func faceBudget(ctx context.Context, m *mesh.Mesh, maxFaces, threads int) (*mesh.Mesh, error) {
	if maxFaces < 0 || m.TriangleCount() <= maxFaces {
		return m, nil
	}
	return mesh.Simplify(ctx, m, maxFaces, 0, threads)
}

// geometry is the atlased mesh in the normalized frame and its UV raster.
type geometry struct {
	atlas *texture.Atlas
	scene *texture.Scene
	uv    *texture.UVRaster
}

func newGeometry(ctx context.Context, m *mesh.Mesh, size, threads int) (*geometry, error) {
	a, err := texture.BuildAtlas(ctx, m, texture.DefaultAtlasOptions(size))
	if err != nil {
		return nil, err
	}
	s, err := texture.NewScene(m, a, threads)
	if err != nil {
		return nil, err
	}
	uv, err := s.RasterizeUV(ctx, size)
	if err != nil {
		return nil, err
	}
	return &geometry{atlas: a, scene: s, uv: uv}, nil
}
