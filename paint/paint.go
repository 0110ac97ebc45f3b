// Package paint owns textured generation with Hunyuan3D-Paint 2.0 and 2.1
// paint sets (docs/paint-contract.md): given a mesh and a picture it runs
// the face budget, the UV atlas, the cameras (2.1: view selection), the
// normal and position maps, the optional 2.0 delight, the condition
// encodings with the VAE (sampled on the host with seeded noise), the
// reference UNet once per job, the multi-view diffusion with the set's
// scheduler and guidance layout (classifier-free guidance combined on the
// host), the VAE decoder, the 2.1 upscaler, the bake, the fill and the PBR
// material, and writes a textured GLB. Paint runs one job from start to
// end; a scheduler that batches jobs at the step level drives the same
// stages itself: Prepare (CPU), Condition (every graph call before the loop,
// batched over the jobs that arrived together, the picture-only outputs
// cached by the caller's picture key), Step (one denoising step of every
// job in shared paint_unet calls) and Finish (decode, bake, export). It
// reaches the graphs through pipeline's Engine and Loader, so the same code
// runs TensorRT plans and ONNX Runtime; the geometry comes from package
// texture and the samplers from package schedulers. docs/paint.md describes
// the stages and where they differ from Tencent's.
package paint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/schedulers"
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
	// CacheBytes bounds the cache of the condition outputs that depend only
	// on the picture (and the seed where it changes them): the delight
	// result, the reference's VAE moments, paint_ref's features and the
	// DINOv2 tokens, keyed by Options.PictureKey; 0 disables it.
	CacheBytes int64
}

// Painter paints meshes with one paint set on one backend. Its methods are
// safe for concurrent use as far as its engines are (both backends' are);
// a Job is in one method call at a time.
type Painter struct {
	set     *engines.Set
	spec    *engines.PaintSpec
	backend string
	log     zerolog.Logger
	threads int
	g       map[string]pipeline.Engine
	cache   *ristretto.Cache[string, *cached] // nil when Config.CacheBytes is 0
	hits    atomic.Uint64
	misses  atomic.Uint64
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
	if cfg.CacheBytes > 0 {
		c, err := ristretto.NewCache(&ristretto.Config[string, *cached]{
			NumCounters: 10_000, MaxCost: cfg.CacheBytes, BufferItems: 64, IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("paint: condition cache: %w", err), p.Close())
		}
		p.cache = c
	}
	return p, nil
}

// Close closes the engines and the cache.
func (p *Painter) Close() error {
	var errs []error
	for _, e := range p.g {
		errs = append(errs, e.Close())
	}
	if p.cache != nil {
		p.cache.Close()
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
	// PictureKey identifies the picture for the condition cache (the
	// server passes the SHA-256 of the preprocessed picture); zero: no
	// caching.
	PictureKey [32]byte
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

// Timings are the wall times of the stages of one job. A graph call shared
// by several jobs counts fully for each of them. Total runs from Prepare's
// start to Finish's end, waits between the phases included.
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
	// ConditionCached says the picture's condition outputs came from the
	// cache: no graph ran on the picture itself.
	ConditionCached bool
}

// Job is one texturing carried through the phases: Prepare makes it,
// Condition readies it for the loop, Step advances it, Finish ends it.
type Job struct {
	opt      Options
	start    time.Time
	res      *Result
	geo      *geometry
	maps     conditionMaps
	picture  texture.Image // the picture at the view size, before delight
	noise    *schedulers.SeedSequence
	cond     *conditions // nil until Condition
	sched    schedulers.Scheduler
	guidance float32
	x        []float32 // the latents being denoised
	step     int
}

// Done reports whether every denoising step has run.
func (j *Job) Done() bool { return j.cond != nil && j.step >= len(j.sched.Timesteps()) }

// Progress is the job's position in the denoising loop.
func (j *Job) Progress() (step, steps int) { return j.step, len(j.sched.Timesteps()) }

func (j *Job) report(pr Progress) {
	if j.opt.Progress != nil {
		j.opt.Progress(pr)
	}
}

// stage runs one CPU stage of the job: reports it, times it, names it in
// the error.
func (j *Job) stage(ctx context.Context, s Stage, d *time.Duration, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("paint %s: %w", s, err)
	}
	j.report(Progress{Stage: s})
	start := time.Now()
	err := fn()
	*d += time.Since(start)
	if err != nil {
		return fmt.Errorf("paint %s: %w", s, err)
	}
	return nil
}

// Paint textures m with picture: Prepare, Condition, Step until done,
// Finish, for this job alone.
func (p *Painter) Paint(ctx context.Context, m *mesh.Mesh, picture image.Image, opt Options) (*Result, error) {
	j, err := p.Prepare(ctx, m, picture, opt)
	if err != nil {
		return nil, err
	}
	if err := p.Condition(ctx, []*Job{j})[0]; err != nil {
		return nil, err
	}
	for !j.Done() {
		if err := p.Step(ctx, []*Job{j}); err != nil {
			return nil, err
		}
	}
	return p.Finish(ctx, j)
}

// Prepare runs the CPU stages of one job: it checks opt and fills in its
// defaults, applies the face budget, builds the atlas, the scene and the UV
// raster, picks the cameras and renders the normal and position maps. It
// runs no graph.
func (p *Painter) Prepare(ctx context.Context, m *mesh.Mesh, picture image.Image, opt Options) (*Job, error) {
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
	sched, err := p.scheduler(opt.Steps)
	if err != nil {
		return nil, fmt.Errorf("paint: %w", err)
	}
	j := &Job{opt: opt, start: start, res: &Result{Steps: len(sched.Timesteps())}, noise: newNoise(opt.Seed),
		sched: sched, guidance: float32(p.spec.Sampler.GuidanceScale)}
	if opt.GuidanceScale != 0 {
		j.guidance = float32(opt.GuidanceScale)
	}
	t := &j.res.Timings
	if err := j.stage(ctx, StageFaces, &t.Faces, func() error {
		var err error
		j.res.Mesh, err = faceBudget(ctx, m, opt.MaxFaces, p.threads)
		return err
	}); err != nil {
		return nil, err
	}
	if err := j.stage(ctx, StageAtlas, &t.Atlas, func() error {
		var err error
		j.geo, err = newGeometry(ctx, j.res.Mesh, opt.TextureSize, p.threads)
		return err
	}); err != nil {
		return nil, err
	}
	j.res.Atlas = j.geo.atlas
	if err := j.stage(ctx, StageViews, &t.Views, func() error {
		var err error
		if j.res.Cameras, err = p.cameras(ctx, j.geo.scene); err != nil {
			return err
		}
		j.maps, err = p.renderMaps(ctx, j.geo.scene, j.res.Cameras)
		return err
	}); err != nil {
		return nil, err
	}
	j.picture = preparePicture(picture, p.spec.ViewSize, p.spec.Version == "2.0")
	return j, nil
}

// Finish runs the stages after the denoising loop of a job that is Done:
// vae_decoder and (2.1) the upscaler, the bake and fill, the material and
// the GLB. It may run while Step and Condition run on other jobs.
func (p *Painter) Finish(ctx context.Context, j *Job) (*Result, error) {
	if !j.Done() {
		step, steps := j.Progress()
		return nil, fmt.Errorf("paint: Finish of a job at step %d of %d", step, steps)
	}
	t := &j.res.Timings
	if err := j.stage(ctx, StageDecode, &t.Decode, func() error {
		var err error
		j.res.Views, err = p.decode(ctx, j.x)
		return err
	}); err != nil {
		return nil, err
	}
	if err := j.stage(ctx, StageBake, &t.Bake, func() error {
		var err error
		j.res.Material, err = p.bake(ctx, j)
		return err
	}); err != nil {
		return nil, err
	}
	if err := j.stage(ctx, StageExport, &t.Export, func() error {
		var buf bytes.Buffer
		if err := texture.WriteGLB(&buf, j.res.Mesh, j.res.Atlas, j.res.Material); err != nil {
			return err
		}
		j.res.GLB = buf.Bytes()
		return nil
	}); err != nil {
		return nil, err
	}
	t.Total = time.Since(j.start)
	p.log.Debug().Str("set", p.set.Name).Int("faces", j.res.Mesh.TriangleCount()).Int("steps", j.res.Steps).
		Bool("condition_cached", j.res.ConditionCached).Dur("total", t.Total).Msg("painted")
	return j.res, nil
}

// WriteOBJZip writes the textured mesh as a zip of model.obj, model.mtl and
// its textures (texture.WriteOBJZip).
func (r *Result) WriteOBJZip(w io.Writer) error {
	return texture.WriteOBJZip(w, "model", r.Mesh, r.Atlas, r.Material)
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
