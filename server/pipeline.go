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

	"github.com/dgraph-io/ristretto/v2"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/pipeline"
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

// Pipelines adapts package pipeline to the server: it is the Preprocessor,
// the Generator and the ParamValidator of a server over real engines. It
// also keeps conditioner outputs by picture hash, so that a picture sent
// again with another seed or step count skips the conditioner.
type Pipelines struct {
	models map[string]*pipelineModel
	list   []Model
	conds  *ristretto.Cache[string, []float32] // nil when disabled
}

type pipelineModel struct {
	p   *pipeline.Pipeline
	man *engines.Manifest
	// mu runs one batch at a time per pipeline: its engines belong to one
	// call at a time (the pipeline serves concurrency through batches).
	mu sync.Mutex
	// matting serializes preprocessing when a matting engine takes part in
	// it; without one, pictures are decoded concurrently.
	matting *sync.Mutex
}

// NewPipelines wraps loaded pipelines; condCacheBytes bounds the cache of
// conditioner outputs (0 disables it). The pipelines stay the caller's to
// close, after the server.
func NewPipelines(models []PipelineModel, condCacheBytes int64) (*Pipelines, error) {
	g := &Pipelines{models: map[string]*pipelineModel{}}
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
				Faces: pipeline.DefaultFaces, Decode: DecodeCoarseToFine,
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

// Preprocess runs the model's preprocessing (decode, matte, recenter, resize).
func (g *Pipelines) Preprocess(ctx context.Context, model string, image []byte) (*Prepared, error) {
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
	if p.Decode == DecodeDense {
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

// Generate runs one batch through the model's pipeline, which steps every
// job's sampling in shared DiT calls and drops a job whose Context ends.
func (g *Pipelines) Generate(ctx context.Context, batch []Job) []Output {
	outs := make([]Output, len(batch))
	if len(batch) == 0 {
		return outs
	}
	m := g.models[batch[0].Params.Model]
	if m == nil {
		for i := range outs {
			outs[i].Err = fmt.Errorf("no model %q", batch[0].Params.Model)
		}
		return outs
	}
	reqs := make([]pipeline.Request, len(batch))
	condKeys := make([]string, len(batch))
	for i, j := range batch {
		prep, _ := j.Input.Input.(*pipeline.Prepared)
		formats := make([]mesh.Format, 0, len(j.Formats))
		for _, f := range j.Formats {
			formats = append(formats, mesh.Format(f))
		}
		progress := j.Progress
		reqs[i] = pipeline.Request{
			ID: j.ID, Prepared: prep, Params: pipelineParams(j.Params), Formats: formats, Context: j.Context,
			Progress: func(p pipeline.Progress) {
				if progress != nil {
					progress(Progress{Stage: string(p.Stage), Step: p.Step, Steps: p.Steps})
				}
			},
		}
		condKeys[i] = j.Params.Model + "/" + hex.EncodeToString(j.Input.Hash[:])
		if g.conds != nil {
			if c, ok := g.conds.Get(condKeys[i]); ok {
				reqs[i].Cond = c
			}
		}
		if prep == nil && reqs[i].Cond == nil {
			outs[i].Err = errors.New("job without a preprocessed picture")
		}
	}

	m.mu.Lock()
	res, errs := m.p.GenerateBatch(ctx, reqs)
	m.mu.Unlock()

	for i, j := range batch {
		if outs[i].Err != nil {
			continue
		}
		if errs[i] != nil {
			outs[i].Err = errs[i]
			continue
		}
		r := res[i]
		if g.conds != nil && reqs[i].Cond == nil && r.Cond != nil {
			// A copy: the pipeline's slice shares its batch's buffer.
			c := slices.Clone(r.Cond)
			g.conds.Set(condKeys[i], c, int64(4*len(c)))
		}
		out := Output{Meshes: map[string][]byte{}, Vertices: r.Counts.Vertices, Faces: r.Counts.Faces}
		for f, b := range r.Outputs {
			out.Meshes[string(f)] = b
		}
		t := r.Timings
		for _, st := range []StageTiming{
			{"condition", t.Condition}, {"sample", t.Sample}, {"decode", t.Decode},
			{"surface", t.Surface}, {"clean", t.Clean}, {"export", t.Export},
		} {
			if st.Stage == "condition" && reqs[i].Cond != nil {
				continue // answered from the conditioner cache
			}
			out.Stages = append(out.Stages, st)
		}
		// The picture's own warnings are the status's already.
		for _, w := range r.Warnings {
			if !slices.Contains(j.Input.Warnings, w) {
				out.Warnings = append(out.Warnings, w)
			}
		}
		outs[i] = out
	}
	return outs
}

// The adapter satisfies every interface the server consumes.
var (
	_ Preprocessor   = (*Pipelines)(nil)
	_ Generator      = (*Pipelines)(nil)
	_ ParamValidator = (*Pipelines)(nil)
)
