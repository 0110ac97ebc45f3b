package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/tensor"
)

// Config configures a Pipeline.
type Config struct {
	Set    *engines.Set
	Loader Loader
	Logger zerolog.Logger
	// Threads bounds the CPU threads of marching cubes and grid work;
	// 0 means runtime.NumCPU().
	Threads int
	// MaxPixels bounds decoded pictures (checked before decoding);
	// 0 leaves Preprocess's default.
	MaxPixels int
	// BlockSize is the side, in cells, of the blocks coarse-to-fine decoding
	// hands to marching cubes; 0 means DefaultBlockSize.
	BlockSize int
}

// DefaultBlockSize is Config.BlockSize's default: blocks of 8³ cells keep
// the list short (a few thousand at R=384) while skipping most empty space.
const DefaultBlockSize = 8

// ErrEmptySurface is returned when the decoded volume has no surface: the
// model put the whole box inside or outside the object.
var ErrEmptySurface = errors.New("the decoded volume has no surface")

// Pipeline turns pictures into meshes with one model set on one backend.
// Generate and GenerateBatch run whole jobs; a scheduler that admits jobs
// while others sample drives the stages itself instead: Preprocess,
// Condition (skipped on a cached cond), Sampler().NewState and Sampler().Step
// over whatever states are in flight, then Finish (decode, surface, clean,
// export) for each state that is done.
// Its methods are safe for concurrent use as far as its engines are (both
// backends' are).
type Pipeline struct {
	set       *engines.Set
	backend   string
	g         *graphs
	sampler   *Sampler
	dec       *decoder
	log       zerolog.Logger
	threads   int
	maxPixels int
	condMax   int
}

// New loads every graph of cfg.Set through cfg.Loader. The Loader stays the
// caller's to close, after the Pipeline.
func New(ctx context.Context, cfg Config) (*Pipeline, error) {
	if cfg.Set == nil || cfg.Loader == nil {
		return nil, errors.New("pipeline: Config needs a Set and a Loader")
	}
	p := &Pipeline{
		set:       cfg.Set,
		log:       cfg.Logger,
		threads:   cfg.Threads,
		maxPixels: cfg.MaxPixels,
	}
	if p.threads <= 0 {
		p.threads = runtime.NumCPU()
	}
	bs := cfg.BlockSize
	if bs <= 0 {
		bs = DefaultBlockSize
	}
	g, err := loadGraphs(ctx, cfg.Set, cfg.Loader)
	if err != nil {
		return nil, err
	}
	p.g = g
	p.backend = cfg.Loader.Name() // settled now that the graphs are loaded
	m := &cfg.Set.Manifest
	if p.sampler, err = NewSampler(g.dit, m); err != nil {
		return nil, errors.Join(fmt.Errorf("pipeline %s: %w", m.Name, err), g.close())
	}
	if p.dec, err = newDecoder(g, m, bs, p.threads); err != nil {
		return nil, errors.Join(fmt.Errorf("pipeline %s: %w", m.Name, err), g.close())
	}
	p.condMax = maxBatch(g.conditioner, m.Graphs[engines.Conditioner])
	return p, nil
}

// Close closes the engines.
func (p *Pipeline) Close() error { return p.g.close() }

// Manifest is the model set's manifest.
func (p *Pipeline) Manifest() *engines.Manifest { return &p.set.Manifest }

// Backend names the backend the engines run on.
func (p *Pipeline) Backend() string { return p.backend }

// Sampler is the pipeline's sampler, for callers that schedule steps
// themselves (the server's step-level batching).
func (p *Pipeline) Sampler() *Sampler { return p.sampler }

// Stage names one step of a generation, in order.
type Stage string

// Stages.
const (
	StagePreprocess Stage = "preprocess"
	StageCondition  Stage = "condition"
	StageSample     Stage = "sample"
	StageDecode     Stage = "decode"
	StageSurface    Stage = "surface"
	StageClean      Stage = "clean"
	StageExport     Stage = "export"
)

// Progress is reported when a stage starts and after every sampling step.
type Progress struct {
	Stage Stage
	Step  int // sampling steps done (StageSample only)
	Steps int
}

// Request is one generation. The picture comes as Image (encoded bytes), or
// already preprocessed as Prepared, or already conditioned as Cond (the
// server caches conditioner outputs by image hash; see Result.Cond).
type Request struct {
	ID       string // names the job in logs
	Image    []byte
	Prepared *Prepared
	Cond     []float32 // conditioner output [T, D]
	Params   Params
	// Formats are the files to export the mesh to (Result.Outputs).
	Formats []mesh.Format
	// Context, when set, is this job's own: once it is done the job leaves
	// the batch at the next stage or sampling step with its error, and the
	// other jobs go on. The ctx given to GenerateBatch covers the batch.
	Context context.Context
	// Progress, when set, is called on the generating goroutine; it must
	// return quickly.
	Progress func(Progress)
}

// Timings are the wall times of the stages of one job. In a batch, a stage
// run for several jobs at once counts fully for each of them; Sample runs
// from the first step of the batch to the job's last.
type Timings struct {
	Preprocess, Condition, Sample, Decode, Surface, Clean, Export time.Duration
	Total                                                         time.Duration
}

// Counts describe the work done and the mesh at each point.
type Counts struct {
	Steps         int   // sampling steps
	PointsDecoded int   // geometry queries evaluated
	PointsDense   int   // (R+1)³: what dense decoding evaluates
	Levels        []int // decoded resolutions, coarsest first
	Blocks        int   // marching-cubes blocks visited (0: the whole grid)
	SurfaceVerts  int   // after marching cubes
	SurfaceFaces  int
	Vertices      int // after cleanup
	Faces         int
}

// Result is a finished generation.
type Result struct {
	Mesh     *mesh.Mesh
	Outputs  map[mesh.Format][]byte // the mesh in each of Request.Formats
	Cond     []float32              // conditioner output, for caching by Hash
	Hash     [32]byte               // preprocessed pixels' hash (zero when Cond was given)
	Params   Params                 // with defaults filled in
	Warnings []string
	Clean    mesh.CleanReport
	Timings  Timings
	Counts   Counts
}

// Generate runs one request through every stage.
func (p *Pipeline) Generate(ctx context.Context, req Request) (*Result, error) {
	res, errs := p.GenerateBatch(ctx, []Request{req})
	return res[0], errs[0]
}

// job carries one request through GenerateBatch.
type job struct {
	req   Request
	res   *Result
	err   error
	start time.Time
	state *SampleState
	vol   *Volume
}

// ctx is the context of the job's own work, done when either the batch's
// or the job's is.
func (j *job) ctx(batch context.Context) (context.Context, context.CancelFunc) {
	if j.req.Context == nil {
		return batch, func() {}
	}
	ctx, cancel := context.WithCancel(j.req.Context)
	stop := context.AfterFunc(batch, cancel)
	return ctx, func() { stop(); cancel() }
}

func (j *job) progress(s Stage, step, steps int) {
	if j.req.Progress != nil {
		j.req.Progress(Progress{Stage: s, Step: step, Steps: steps})
	}
}

// GenerateBatch runs requests together: preprocessing and surface work per
// job, the engines over the whole batch (the DiT stepping every job still
// sampling, whatever its step count). It returns one result or error per
// request; a bad request fails alone, an engine failure fails every job in
// the batched call.
func (p *Pipeline) GenerateBatch(ctx context.Context, reqs []Request) ([]*Result, []error) {
	m := p.Manifest()
	jobs := make([]*job, len(reqs))
	for i, r := range reqs {
		j := &job{req: r, start: time.Now(), res: &Result{Params: r.Params.WithDefaults(m), Cond: r.Cond}}
		if err := validateRequest(j.res.Params, r.Formats, m); err != nil {
			j.err = fmt.Errorf("invalid parameters: %w", err)
		}
		jobs[i] = j
	}
	// live drops the jobs whose own context is done and returns the others.
	live := func() []*job {
		var out []*job
		for _, j := range jobs {
			if j.err == nil && j.req.Context != nil {
				j.err = j.req.Context.Err()
			}
			if j.err == nil {
				out = append(out, j)
			}
		}
		return out
	}
	failAll := func(js []*job, err error) {
		for _, j := range js {
			j.err = err
		}
	}

	// 1. Preprocess, per job.
	for _, j := range live() {
		if j.res.Cond != nil {
			continue
		}
		if j.req.Prepared == nil {
			j.progress(StagePreprocess, 0, 0)
			t := time.Now()
			jctx, done := j.ctx(ctx)
			prep, err := p.Preprocess(jctx, j.req.Image)
			done()
			if err != nil {
				j.err = fmt.Errorf("preprocess: %w", err)
				continue
			}
			j.req.Prepared = prep
			j.res.Timings.Preprocess = time.Since(t)
			p.stageLog(j, StagePreprocess, j.res.Timings.Preprocess).
				Str("format", prep.Format).Ints("size", []int{prep.Source.X, prep.Source.Y}).
				Strs("warnings", prep.Warnings).Msg("stage done")
		}
		j.res.Hash = j.req.Prepared.Hash
		j.res.Warnings = append(j.res.Warnings, j.req.Prepared.Warnings...)
	}

	// 2. Condition, batched over the jobs without a cached cond.
	var need []*job
	var images []*Prepared
	for _, j := range live() {
		if j.res.Cond == nil {
			need = append(need, j)
			images = append(images, j.req.Prepared)
			j.progress(StageCondition, 0, 0)
		}
	}
	if len(need) > 0 {
		t := time.Now()
		conds, err := p.Condition(ctx, images)
		d := time.Since(t)
		if err != nil {
			failAll(need, fmt.Errorf("condition: %w", err))
		}
		for i, j := range need {
			if err == nil {
				j.res.Cond = conds[i]
				j.res.Timings.Condition = d
				p.stageLog(j, StageCondition, d).Int("batch", len(need)).Msg("stage done")
			}
		}
	}

	// 3. Sample: every live job steps in shared DiT calls until done.
	t := time.Now()
	var sampling []*SampleState
	owner := map[*SampleState]*job{}
	for _, j := range live() {
		st, err := p.sampler.NewState(j.res.Cond, SampleParams{
			Steps: j.res.Params.Steps, Guidance: j.res.Params.Guidance, Seed: j.res.Params.Seed,
		})
		if err != nil {
			j.err = fmt.Errorf("sample: %w", err)
			continue
		}
		st.OnStep = func(done, total int) { j.progress(StageSample, done, total) }
		j.state = st
		j.res.Counts.Steps = st.Steps()
		j.progress(StageSample, 0, st.Steps())
		sampling = append(sampling, st)
		owner[st] = j
	}
	for len(sampling) > 0 {
		sampling = slices.DeleteFunc(sampling, func(st *SampleState) bool {
			j := owner[st]
			if j.req.Context != nil && j.req.Context.Err() != nil {
				j.err = j.req.Context.Err()
			}
			return j.err != nil
		})
		if len(sampling) == 0 {
			break
		}
		if err := p.sampler.Step(ctx, sampling); err != nil {
			for _, st := range sampling {
				owner[st].err = fmt.Errorf("sample: %w", err)
			}
			break
		}
		rest := sampling[:0]
		for _, st := range sampling {
			if !st.Done() {
				rest = append(rest, st)
				continue
			}
			j := owner[st]
			j.res.Timings.Sample = time.Since(t)
			p.stageLog(j, StageSample, j.res.Timings.Sample).Int("steps", st.Steps()).
				Float64("guidance", j.res.Params.Guidance).Uint64("seed", j.res.Params.Seed).Msg("stage done")
		}
		sampling = rest
	}

	// 4. Decode, batched.
	p.decode(ctx, live())

	// 5–7. Surface, clean and export, per job.
	for _, j := range live() {
		jctx, done := j.ctx(ctx)
		p.finish(jctx, j)
		done()
	}

	res := make([]*Result, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		if j.err != nil {
			errs[i] = j.err
			p.log.Info().Str("job", j.req.ID).Err(j.err).Msg("generation failed")
			continue
		}
		res[i] = j.res
	}
	return res, errs
}

// decode turns the final latents of jobs into volumes in one batched call;
// on failure every job of the call fails.
func (p *Pipeline) decode(ctx context.Context, dec []*job) {
	if len(dec) == 0 {
		return
	}
	lat := make([][]float32, len(dec))
	params := make([]DecodeParams, len(dec))
	for i, j := range dec {
		j.progress(StageDecode, 0, 0)
		lat[i] = j.state.Latents()
		params[i] = DecodeParams{Resolution: j.res.Params.Resolution, Mode: j.res.Params.Decode}
	}
	t := time.Now()
	vols, err := p.Decode(ctx, lat, params)
	d := time.Since(t)
	for i, j := range dec {
		if err != nil {
			j.err = fmt.Errorf("decode: %w", err)
			continue
		}
		j.vol = vols[i]
		j.res.Timings.Decode = d
		n := j.vol.Resolution + 1
		c := &j.res.Counts
		c.PointsDecoded, c.PointsDense, c.Levels, c.Blocks = j.vol.Points, n*n*n, j.vol.Levels, len(j.vol.Blocks)
		p.stageLog(j, StageDecode, d).Stringer("mode", j.res.Params.Decode).Ints("levels", c.Levels).
			Int("points", c.PointsDecoded).Float64("fraction", float64(c.PointsDecoded)/float64(c.PointsDense)).
			Int("blocks", c.Blocks).Msg("stage done")
	}
}

// Finish runs the stages after sampling (decode, surface, cleanup, export)
// for one request whose sampling state is done: the other half of
// GenerateBatch, for a scheduler that steps the Sampler itself. req's
// Params, Formats, Context, Progress and ID are used; the result's Timings
// hold only these stages.
func (p *Pipeline) Finish(ctx context.Context, req Request, st *SampleState) (*Result, error) {
	if !st.Done() {
		return nil, fmt.Errorf("finish %s: sampling has %d of %d steps to go", req.ID, st.Steps()-st.StepIndex(), st.Steps())
	}
	j := &job{req: req, start: time.Now(), state: st, res: &Result{Params: req.Params.WithDefaults(p.Manifest())}}
	j.res.Counts.Steps = st.Steps()
	jctx, done := j.ctx(ctx)
	defer done()
	p.decode(jctx, []*job{j})
	if j.err == nil {
		p.finish(jctx, j)
	}
	if j.err != nil {
		return nil, j.err
	}
	return j.res, nil
}

// finish runs the per-job stages after decoding.
func (p *Pipeline) finish(ctx context.Context, j *job) {
	j.progress(StageSurface, 0, 0)
	t := time.Now()
	raw, err := p.Surface(ctx, j.vol)
	j.vol = nil // the grid is the largest allocation of a job; let it go
	if err == nil && raw.TriangleCount() == 0 {
		err = ErrEmptySurface
	}
	if err != nil {
		j.err = fmt.Errorf("surface: %w", err)
		return
	}
	j.res.Timings.Surface = time.Since(t)
	j.res.Counts.SurfaceVerts, j.res.Counts.SurfaceFaces = raw.VertexCount(), raw.TriangleCount()
	p.stageLog(j, StageSurface, j.res.Timings.Surface).
		Int("vertices", raw.VertexCount()).Int("faces", raw.TriangleCount()).Msg("stage done")

	j.progress(StageClean, 0, 0)
	t = time.Now()
	clean, report, err := p.Clean(ctx, raw, j.res.Params.Faces)
	if err != nil {
		j.err = fmt.Errorf("clean: %w", err)
		return
	}
	j.res.Mesh, j.res.Clean = clean, report
	j.res.Timings.Clean = time.Since(t)
	j.res.Counts.Vertices, j.res.Counts.Faces = clean.VertexCount(), clean.TriangleCount()
	p.stageLog(j, StageClean, j.res.Timings.Clean).
		Int("vertices", clean.VertexCount()).Int("faces", clean.TriangleCount()).Msg("stage done")

	if len(j.req.Formats) > 0 {
		j.progress(StageExport, 0, 0)
		t = time.Now()
		j.res.Outputs = map[mesh.Format][]byte{}
		for _, f := range j.req.Formats {
			if err := ctx.Err(); err != nil {
				j.err = err
				return
			}
			var buf bytes.Buffer
			if err := mesh.Export(&buf, clean, f); err != nil {
				j.err = fmt.Errorf("export %s: %w", f, err)
				return
			}
			j.res.Outputs[f] = buf.Bytes()
		}
		j.res.Timings.Export = time.Since(t)
		ev := p.stageLog(j, StageExport, j.res.Timings.Export)
		for f, b := range j.res.Outputs {
			ev = ev.Int(string(f), len(b))
		}
		ev.Msg("stage done")
	}
	j.res.Timings.Total = time.Since(j.start)
}

func (p *Pipeline) stageLog(j *job, s Stage, d time.Duration) *zerolog.Event {
	return p.log.Info().Str("job", j.req.ID).Str("stage", string(s)).Dur("took", d)
}

// Preprocess decodes and prepares one picture for the conditioner.
func (p *Pipeline) Preprocess(ctx context.Context, data []byte) (*Prepared, error) {
	var matter Matter
	if p.g.matting != nil {
		matter = NewEngineMatter(p.g.matting)
	}
	return Preprocess(ctx, data, PreprocessOptions{MaxPixels: p.maxPixels, Image: p.set.Image, Matting: matter})
}

// Condition runs the conditioner over prepared pictures, in calls of up to
// its maximum batch, and returns one [T, D] embedding per picture. The
// unconditional embedding for guidance is all zeros (Hunyuan3D's
// unconditional_embedding in conditioner.py), so it is never computed.
func (p *Pipeline) Condition(ctx context.Context, images []*Prepared) ([][]float32, error) {
	m := p.Manifest()
	size := m.Image.Size
	px := 3 * size * size
	td := m.Tokens.CondTokens * m.Tokens.CondDim
	out := make([][]float32, len(images))
	for lo := 0; lo < len(images); lo += p.condMax {
		hi := min(lo+p.condMax, len(images))
		n := hi - lo
		in := make([]float32, n*px)
		for i, im := range images[lo:hi] {
			if len(im.Tensor.Data) != px {
				return nil, fmt.Errorf("image %d has %d values (shape %v), want 3×%d×%d: %w",
					lo+i, len(im.Tensor.Data), im.Tensor.Shape, size, size, tensor.ErrShape)
			}
			copy(in[i*px:], im.Tensor.Data)
		}
		c, err := run(ctx, p.g.conditioner, engines.Conditioner, "cond", n*td, tensor.Tensor{
			Name: "image", Shape: []int64{int64(n), 3, int64(size), int64(size)}, Data: in,
		})
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			out[lo+i] = c[i*td : (i+1)*td : (i+1)*td]
		}
	}
	return out, nil
}

// Decode turns final latents into occupancy volumes, one per job.
func (p *Pipeline) Decode(ctx context.Context, latents [][]float32, params []DecodeParams) ([]*Volume, error) {
	return p.dec.decode(ctx, latents, params)
}

// Clean removes floaters and degenerate faces and decimates to the face
// budget (Hunyuan3D's FloaterRemover, DegenerateFaceRemover, FaceReducer).
func (p *Pipeline) Clean(ctx context.Context, m *mesh.Mesh, faces int) (*mesh.Mesh, mesh.CleanReport, error) {
	return mesh.Clean(ctx, m, mesh.CleanOptions{TargetFaces: faces})
}
