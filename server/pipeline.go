package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/results"
)

// resultVersion changes when this server changes what a result holds;
// together with the build's revision it invalidates results kept on disk.
const resultVersion = "1"

// PipelineModel is one model set served through package pipeline.
type PipelineModel struct {
	Pipeline *pipeline.Pipeline
	// Set is the model set the pipeline was built from; its graph files
	// enter the model's fingerprint.
	Set *engines.Set
}

// Pipelines adapts package pipeline to the server and the job engine: it is
// the Preprocessor, the Generator and the ParamValidator of a server over
// real engines. It
// also keeps conditioner outputs by picture hash, so that a picture sent
// again with another seed or step count skips the conditioner.
type Pipelines struct {
	models map[string]*pipelineModel
	paints map[string]*paintModel
	list   []Model
	conds  *ristretto.Cache[string, []float32] // nil when disabled
}

type pipelineModel struct {
	p   *pipeline.Pipeline
	man *engines.Manifest
	// matting serializes preprocessing when a matting engine takes part in
	// it; without one, pictures are decoded concurrently.
	matting *sync.Mutex
}

// NewPipelines wraps loaded pipelines; condCacheBytes bounds the cache of
// conditioner outputs (0 disables it). The pipelines stay the caller's to
// close, after the server.
func NewPipelines(models []PipelineModel, condCacheBytes int64) (*Pipelines, error) {
	g := &Pipelines{models: map[string]*pipelineModel{}, paints: map[string]*paintModel{}}
	for _, pm := range models {
		man := pm.Pipeline.Manifest()
		if _, dup := g.models[man.Name]; dup {
			return nil, fmt.Errorf("model %q loaded twice", man.Name)
		}
		fp, err := fingerprint(pm.Set, pm.Pipeline.Backend())
		if err != nil {
			return nil, err
		}
		m := &pipelineModel{p: pm.Pipeline, man: man}
		if _, ok := man.Graphs[engines.Matting]; ok {
			m.matting = &sync.Mutex{}
		}
		g.models[man.Name] = m
		g.list = append(g.list, Model{
			Name: man.Name, Family: man.Family, Description: man.Description, Backend: pm.Pipeline.Backend(),
			Fingerprint: fp,
			Defaults: Defaults{
				Steps: man.Sampler.Steps, Guidance: man.Sampler.GuidanceScale, Resolution: man.Volume.Resolution,
				Faces: pipeline.DefaultFaces, Decode: jobs.DecodeCoarseToFine,
			},
		})
	}
	if condCacheBytes > 0 {
		c, err := ristretto.NewCache(&ristretto.Config[string, []float32]{
			NumCounters: 10_000, MaxCost: condCacheBytes, BufferItems: 64, IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, fmt.Errorf("conditioner cache: %w", err)
		}
		g.conds = c
	}
	return g, nil
}

// Models lists the served models, for Config.Models.
func (g *Pipelines) Models() []Model { return slices.Clone(g.list) }

// Close releases the conditioner cache.
func (g *Pipelines) Close() {
	if g.conds != nil {
		g.conds.Close()
	}
}

// fingerprint identifies what produces a model's meshes: its manifest, its
// graph files, the backend and this build. On-disk graphs count by size and
// modification time (hashing gigabytes at every start would be slow); the
// embedded ones by content.
func fingerprint(set *engines.Set, backend string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "hy3d-model-v%s\x00%s\x00", resultVersion, backend)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(h, "%s\x00", bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				fmt.Fprintf(h, "%s=%s\x00", s.Key, s.Value)
			}
		}
	}
	man, err := json.Marshal(set.Manifest)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", set.Name, err)
	}
	h.Write(man)
	names := make([]string, 0, len(set.Graphs))
	for name := range set.Graphs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		g := set.Graphs[name]
		fmt.Fprintf(h, "\x00%s\x00", name)
		if set.Dir != "" {
			if fi, err := fs.Stat(set.FS, g.ONNX); err == nil {
				fmt.Fprintf(h, "%d %d", fi.Size(), fi.ModTime().UnixNano())
			}
			continue
		}
		b, err := set.ReadGraph(name)
		if err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", set.Name, err)
		}
		sum := sha256.Sum256(b)
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// Preprocess runs the model's preprocessing (decode, matte, recenter,
// resize); for a paint model the upload is a picture and a mesh to texture.
func (g *Pipelines) Preprocess(ctx context.Context, model string, image []byte) (*Prepared, error) {
	if g.paints[model] != nil {
		return g.preprocessTexturing(ctx, image)
	}
	m := g.models[model]
	if m == nil {
		return nil, fmt.Errorf("no model %q", model)
	}
	if m.matting != nil {
		m.matting.Lock()
		defer m.matting.Unlock()
	}
	prep, err := m.p.Preprocess(ctx, image)
	if err != nil {
		return nil, err
	}
	return &Prepared{
		Hash: prep.Hash, Format: prep.Format, Width: prep.Source.X, Height: prep.Source.Y,
		Warnings: prep.Warnings, Input: prep,
	}, nil
}

func pipelineParams(p Params) pipeline.Params {
	mode := pipeline.DecodeCoarseToFine
	if p.Decode == jobs.DecodeDense {
		mode = pipeline.DecodeDense
	}
	return pipeline.Params{
		Steps: p.Steps, Guidance: p.Guidance, Seed: uint64(p.Seed), Resolution: p.Resolution,
		Decode: mode, Faces: p.Faces,
	}
}

// ValidateParams applies the model's own rules (a consistency sampler's
// step limit, the pipeline's ranges) before a job is admitted.
func (g *Pipelines) ValidateParams(p Params) []FieldError {
	if p.Texture && g.paints[p.PaintModel] == nil {
		return []FieldError{{Field: "paint_model", Message: fmt.Sprintf("unknown paint model %q", p.PaintModel)}}
	}
	if g.paints[p.Model] != nil {
		return nil
	}
	m := g.models[p.Model]
	if m == nil {
		return []FieldError{{Field: "model", Message: fmt.Sprintf("unknown model %q", p.Model)}}
	}
	err := pipelineParams(p).WithDefaults(m.man).Validate(m.man)
	var out []FieldError
	for _, e := range flatten(err) {
		var fe *pipeline.FieldError
		if errors.As(e, &fe) {
			out = append(out, FieldError{Field: fe.Field, Message: fe.Err.Error()})
		} else {
			out = append(out, FieldError{Message: e.Error()})
		}
	}
	return out
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// sampleJob is one job of the pipeline between Start and Finish.
type sampleJob struct {
	model       *pipelineModel
	st          *pipeline.SampleState
	req         pipeline.Request
	condTook    time.Duration // 0 when the conditioner cache answered
	condCached  bool
	sampleStart time.Time
	sampleTook  time.Duration // set by the step that finished sampling
	warnings    []string      // the picture's own, which the status has already
}

func (s *sampleJob) Done() bool { return s.st.Done() }

// Start conditions the jobs that arrived together in batched conditioner
// calls (jobs whose picture the conditioner cache knows skip it) and starts
// each job's sampling state from its seeded noise.
func (g *Pipelines) Start(ctx context.Context, batch []jobs.Job) ([]jobs.Sampling, []error) {
	states := make([]jobs.Sampling, len(batch))
	errs := make([]error, len(batch))
	if len(batch) == 0 {
		return states, errs
	}
	if g.paints[batch[0].Params.Model] != nil || batch[0].Handoff != nil {
		return g.startPainting(ctx, batch)
	}
	m := g.models[batch[0].Params.Model]
	if m == nil {
		for i := range errs {
			errs[i] = fmt.Errorf("no model %q", batch[0].Params.Model)
		}
		return states, errs
	}
	sj := make([]*sampleJob, len(batch))
	conds := make([][]float32, len(batch))
	var need []int
	var images []*pipeline.Prepared
	for i, j := range batch {
		prep, _ := j.Input.Input.(*pipeline.Prepared)
		formats := make([]mesh.Format, 0, len(j.Formats))
		for _, f := range j.Formats {
			formats = append(formats, mesh.Format(f))
		}
		progress := j.Progress
		sj[i] = &sampleJob{model: m, warnings: j.Input.Warnings, req: pipeline.Request{
			ID: j.ID, Prepared: prep, Params: pipelineParams(j.Params).WithDefaults(m.man), Formats: formats, Context: j.Context,
			Progress: func(p pipeline.Progress) {
				if progress != nil {
					progress(jobs.Progress{Stage: string(p.Stage), Step: p.Step, Steps: p.Steps})
				}
			},
		}}
		if c, ok := g.condCached(j); ok {
			conds[i], sj[i].condCached = c, true
			continue
		}
		if prep == nil {
			errs[i] = errors.New("job without a preprocessed picture")
			continue
		}
		need = append(need, i)
		images = append(images, prep)
		sj[i].req.Progress(pipeline.Progress{Stage: pipeline.StageCondition})
	}
	if len(need) > 0 {
		t := time.Now()
		out, err := m.p.Condition(ctx, images)
		took := time.Since(t)
		for k, i := range need {
			if err != nil {
				errs[i] = fmt.Errorf("condition: %w", err)
				continue
			}
			conds[i], sj[i].condTook = out[k], took
			if g.conds != nil {
				// A copy: the pipeline's slice shares its batch's buffer.
				c := slices.Clone(out[k])
				g.conds.Set(condKey(batch[i]), c, int64(4*len(c)))
			}
		}
	}
	for i, j := range sj {
		if errs[i] != nil {
			continue
		}
		p := j.req.Params
		st, err := m.p.Sampler().NewState(conds[i], pipeline.SampleParams{Steps: p.Steps, Guidance: p.Guidance, Seed: p.Seed})
		if err != nil {
			errs[i] = fmt.Errorf("sample: %w", err)
			continue
		}
		st.OnStep = func(done, total int) {
			j.req.Progress(pipeline.Progress{Stage: pipeline.StageSample, Step: done, Steps: total})
		}
		j.st, j.sampleStart = st, time.Now()
		j.req.Progress(pipeline.Progress{Stage: pipeline.StageSample, Steps: st.Steps()})
		states[i] = j
	}
	return states, errs
}

func condKey(j jobs.Job) string { return j.Params.Model + "/" + hex.EncodeToString(j.Input.Hash[:]) }

func (g *Pipelines) condCached(j jobs.Job) ([]float32, bool) {
	if g.conds == nil {
		return nil, false
	}
	return g.conds.Get(condKey(j))
}

// Step advances every state one sampling step in shared DiT calls (the
// engine steps one model's states at a time).
func (g *Pipelines) Step(ctx context.Context, states []jobs.Sampling) error {
	if len(states) == 0 {
		return nil
	}
	if _, painting := states[0].(*paintState); painting {
		return g.stepPainting(ctx, states)
	}
	sts := make([]*pipeline.SampleState, len(states))
	var m *pipelineModel
	for i, s := range states {
		sj, ok := s.(*sampleJob)
		if !ok || (m != nil && sj.model != m) {
			return errors.New("step: states of another generator or of several models")
		}
		m, sts[i] = sj.model, sj.st
	}
	if err := m.p.Sampler().Step(ctx, sts); err != nil {
		return err
	}
	for _, s := range states {
		if sj := s.(*sampleJob); sj.st.Done() && sj.sampleTook == 0 {
			sj.sampleTook = time.Since(sj.sampleStart)
		}
	}
	return nil
}

// Finish decodes one job's latents and turns them into its meshes while the
// DiT steps the others. Engines of both backends are safe for concurrent
// use; the engine's finishers (--workers) bound how many jobs finish at
// once.
func (g *Pipelines) Finish(ctx context.Context, job jobs.Job, s jobs.Sampling) jobs.Output {
	if ps, ok := s.(*paintState); ok {
		return g.finishPainting(ctx, job, ps)
	}
	sj, ok := s.(*sampleJob)
	if !ok {
		return jobs.Output{Err: errors.New("finish: a state of another generator")}
	}
	if job.Params.Texture {
		// The mesh goes on to be painted; only the paint phase writes files.
		sj.req.Formats = nil
	}
	r, err := sj.model.p.Finish(ctx, sj.req, sj.st)
	if err != nil {
		return jobs.Output{Err: err}
	}
	out := jobs.Output{Meshes: map[string][]byte{}, Vertices: r.Counts.Vertices, Faces: r.Counts.Faces}
	if job.Params.Texture {
		prep, _ := job.Input.Input.(*pipeline.Prepared)
		if prep == nil {
			return jobs.Output{Err: errors.New("textured job without its preprocessed picture")}
		}
		out = g.handToPainter(ctx, job, r.Mesh, paintPicture{img: sj.model.p.Picture(prep), key: prep.Hash})
		if out.Err != nil {
			return out
		}
	}
	for f, b := range r.Outputs {
		out.Meshes[string(f)] = b
	}
	t := r.Timings
	if !sj.condCached {
		out.Stages = append(out.Stages, results.StageTiming{Stage: "condition", Duration: sj.condTook})
	}
	for _, st := range []results.StageTiming{
		{Stage: "sample", Duration: sj.sampleTook}, {Stage: "decode", Duration: t.Decode},
		{Stage: "surface", Duration: t.Surface}, {Stage: "clean", Duration: t.Clean}, {Stage: "export", Duration: t.Export},
	} {
		out.Stages = append(out.Stages, st)
	}
	for _, w := range r.Warnings {
		if !slices.Contains(sj.warnings, w) {
			out.Warnings = append(out.Warnings, w)
		}
	}
	return out
}

// The adapter satisfies every interface the server consumes.
var (
	_ Preprocessor   = (*Pipelines)(nil)
	_ Generator      = (*Pipelines)(nil)
	_ ParamValidator = (*Pipelines)(nil)
)
