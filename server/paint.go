package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/jobs"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/paint"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/results"
	"github.com/hy3d/hy3d/texture"
)

// PaintModel is one paint set served through package paint.
type PaintModel struct {
	Painter *paint.Painter
	// Set is the paint set the painter was built from; its graph files
	// enter the model's fingerprint.
	Set *engines.Set
}

type paintModel struct {
	name string
	p    *paint.Painter
}

// AddPaint serves a paint model beside the shape models: textured
// generations and POST /v1/textures. The painter stays the caller's to
// close, after the server.
func (g *Pipelines) AddPaint(pm PaintModel) error {
	name := pm.Set.Name
	if _, dup := g.models[name]; dup {
		return fmt.Errorf("model %q loaded twice", name)
	}
	if _, dup := g.paints[name]; dup {
		return fmt.Errorf("paint model %q loaded twice", name)
	}
	fp, err := fingerprint(pm.Set, pm.Painter.Backend())
	if err != nil {
		return err
	}
	spec := pm.Painter.Spec()
	g.paints[name] = &paintModel{name: name, p: pm.Painter}
	g.list = append(g.list, Model{
		Name: name, Kind: jobs.KindPaint, Family: "hunyuan3d-paint-" + spec.Version, Description: pm.Set.Description,
		Backend: pm.Painter.Backend(), Fingerprint: fp, MaxBatch: pm.Painter.JobsPerCall(),
		Defaults: Defaults{Steps: spec.Sampler.Steps, Guidance: spec.Sampler.GuidanceScale},
	})
	return nil
}

// textureUploadMagic starts the single upload of a POST /v1/textures
// request: the job engine keeps one upload per job (a broker stores it for
// workers on other machines), so the picture and the mesh travel together.
const textureUploadMagic = "hy3d-texture-upload-v1\x00"

// packTextureUpload joins a picture and a mesh file into one upload.
func packTextureUpload(picture, meshFile []byte) []byte {
	b := append([]byte(textureUploadMagic), binary.AppendUvarint(nil, uint64(len(picture)))...)
	b = append(b, picture...)
	return append(b, meshFile...)
}

var errTextureUpload = errors.New("not a texturing upload")

// unpackTextureUpload splits what packTextureUpload joined.
func unpackTextureUpload(b []byte) (picture, meshFile []byte, err error) {
	rest, ok := bytes.CutPrefix(b, []byte(textureUploadMagic))
	if !ok {
		return nil, nil, errTextureUpload
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return nil, nil, fmt.Errorf("%w: bad picture length", errTextureUpload)
	}
	rest = rest[k:]
	return rest[:n:n], rest[n:], nil
}

// errMeshFormat refuses a mesh file of no format hy3d reads.
var errMeshFormat = errors.New("the mesh must be a GLB, OBJ, PLY or STL file")

// parseMeshFile reads a GLB, OBJ, PLY or STL file by its content.
func parseMeshFile(b []byte) (*mesh.Mesh, error) {
	parse, err := meshParser(b)
	if err != nil {
		return nil, err
	}
	m, err := parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	if m.TriangleCount() == 0 {
		return nil, errors.New("mesh: no triangles")
	}
	return m, nil
}

// meshParser picks a mesh file's parser by its content: GLB and PLY say
// what they are; an STL is binary of exactly 84 + 50·n bytes or ASCII
// starting with "solid"; anything else without a NUL byte in its first
// bytes is read as OBJ.
func meshParser(b []byte) (func(io.Reader) (*mesh.Mesh, error), error) {
	head := b[:min(len(b), 512)]
	switch {
	case bytes.HasPrefix(b, []byte("glTF")):
		return mesh.ParseGLB, nil
	case bytes.HasPrefix(b, []byte("ply")):
		return mesh.ParsePLY, nil
	case len(b) >= 84 && uint64(len(b)) == 84+50*uint64(binary.LittleEndian.Uint32(b[80:84])),
		bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte("solid")):
		return mesh.ParseSTL, nil
	case len(head) > 0 && bytes.IndexByte(head, 0) < 0:
		return mesh.ParseOBJ, nil
	}
	return nil, errMeshFormat
}

// paintPicture is the picture a paint model paints with and its key for
// the paint set's condition caches.
type paintPicture struct {
	img image.Image
	key [32]byte
}

// textureInput is a POST /v1/textures job's preprocessed upload.
type textureInput struct {
	mesh    *mesh.Mesh
	picture paintPicture
}

// preprocessTexturing decodes a texturing upload: the picture goes through
// the default shape model's preprocessing (so that the object is cut out
// and centred as for a generation), the mesh through its parser.
func (g *Pipelines) preprocessTexturing(ctx context.Context, upload []byte) (*Prepared, error) {
	pictureFile, meshFile, err := unpackTextureUpload(upload)
	if err != nil {
		return nil, err
	}
	// The first model listed is a shape model: paint models come after.
	shape := g.list[0].Name
	pic, err := g.Preprocess(ctx, shape, pictureFile)
	if err != nil {
		return nil, err
	}
	prep := pic.Input.(*pipeline.Prepared)
	m, err := parseMeshFile(meshFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMesh, err)
	}
	meshSum := sha256.Sum256(meshFile)
	h := sha256.New()
	h.Write([]byte("hy3d-texturing-v1\x00"))
	h.Write(prep.Hash[:])
	h.Write(meshSum[:])
	var hash [32]byte
	h.Sum(hash[:0])
	return &Prepared{
		Hash: hash, Format: pic.Format, Width: pic.Width, Height: pic.Height, Warnings: pic.Warnings,
		Input: &textureInput{mesh: m, picture: paintPicture{img: g.models[shape].p.Picture(prep), key: prep.Hash}},
	}, nil
}

// errBadMesh marks a mesh upload that cannot be read.
var errBadMesh = errors.New("unreadable mesh")

// paintOptions are a job's painting options.
func paintOptions(j jobs.Job, pic paintPicture) paint.Options {
	progress := j.Progress
	return paint.Options{
		Seed: uint64(j.Params.Seed), TextureSize: j.Params.TextureSize, PictureKey: pic.key,
		Progress: func(p paint.Progress) {
			if progress != nil {
				progress(jobs.Progress{Stage: "paint_" + string(p.Stage), Step: p.Step, Steps: p.Steps})
			}
		},
	}
}

// handToPainter prepares a job's painting (the CPU stages: face budget,
// atlas, views) and hands it on to the paint model's step loop.
func (g *Pipelines) handToPainter(ctx context.Context, j jobs.Job, m *mesh.Mesh, pic paintPicture) jobs.Output {
	pm := g.paints[j.Params.PaintModel]
	if pm == nil {
		return jobs.Output{Err: fmt.Errorf("no paint model %q", j.Params.PaintModel)}
	}
	pj, err := pm.p.Prepare(ctx, m, pic.img, paintOptions(j, pic))
	if err != nil {
		return jobs.Output{Err: err}
	}
	return jobs.Output{Handoff: &jobs.Handoff{Model: pm.name, State: pj}}
}

// paintState is a job in a paint model's step loop: either a texturing
// upload not yet prepared (Done at once, so that the engine's finisher
// prepares it off the loop), or a prepared job painting.
type paintState struct {
	model *paintModel
	job   *paint.Job // nil until prepared
}

func (s *paintState) Done() bool { return s.job == nil || s.job.Done() }

// startPainting conditions the prepared jobs that arrived together in
// shared calls; uploads not yet prepared pass through.
func (g *Pipelines) startPainting(ctx context.Context, batch []jobs.Job) ([]jobs.Sampling, []error) {
	states := make([]jobs.Sampling, len(batch))
	errs := make([]error, len(batch))
	var ready []*paint.Job
	var at []int
	for i, j := range batch {
		name := j.Params.PaintModel
		pm := g.paints[name]
		if pm == nil {
			errs[i] = fmt.Errorf("no paint model %q", name)
			continue
		}
		st := &paintState{model: pm}
		if pj, ok := j.Handoff.(*paint.Job); ok {
			st.job = pj
			ready = append(ready, pj)
			at = append(at, i)
		}
		states[i] = st
	}
	if len(ready) == 0 {
		return states, errs
	}
	// The engine starts one model's jobs together, so one painter serves
	// them all.
	pm := states[at[0]].(*paintState).model
	for k, err := range pm.p.Condition(ctx, ready) {
		if err != nil {
			errs[at[k]], states[at[k]] = err, nil
		}
	}
	return states, errs
}

// stepPainting runs one denoising step of every painting job, in shared
// paint UNet calls.
func (g *Pipelines) stepPainting(ctx context.Context, states []jobs.Sampling) error {
	pjs := make([]*paint.Job, 0, len(states))
	var pm *paintModel
	for _, s := range states {
		ps, ok := s.(*paintState)
		if !ok || ps.job == nil || (pm != nil && ps.model != pm) {
			return errors.New("paint step: states of another generator, phase or model")
		}
		pm = ps.model
		pjs = append(pjs, ps.job)
	}
	return pm.p.Step(ctx, pjs)
}

// finishPainting prepares a texturing upload and hands it back to the
// paint loop, or finishes a painted job: decode, bake, fill, GLB and zip.
func (g *Pipelines) finishPainting(ctx context.Context, j jobs.Job, ps *paintState) jobs.Output {
	if ps.job == nil {
		in, ok := j.Input.Input.(*textureInput)
		if !ok {
			return jobs.Output{Err: errors.New("texturing job without its mesh and picture")}
		}
		return g.handToPainter(ctx, j, in.mesh, in.picture)
	}
	r, err := ps.model.p.Finish(ctx, ps.job)
	if err != nil {
		return jobs.Output{Err: err}
	}
	var zip bytes.Buffer
	if err := texture.WriteOBJZip(&zip, "model", r.Mesh, r.Atlas, r.Material); err != nil {
		return jobs.Output{Err: fmt.Errorf("obj zip: %w", err)}
	}
	t := r.Timings
	out := jobs.Output{
		Meshes:   map[string][]byte{"glb": r.GLB, "zip": zip.Bytes()},
		Vertices: r.Mesh.VertexCount(), Faces: r.Mesh.TriangleCount(),
	}
	for _, st := range []results.StageTiming{
		{Stage: "paint_faces", Duration: t.Faces}, {Stage: "paint_atlas", Duration: t.Atlas},
		{Stage: "paint_views", Duration: t.Views}, {Stage: "paint_delight", Duration: t.Delight},
		{Stage: "paint_condition", Duration: t.Condition}, {Stage: "paint_diffuse", Duration: t.Diffuse},
		{Stage: "paint_decode", Duration: t.Decode}, {Stage: "paint_bake", Duration: t.Bake},
		{Stage: "paint_export", Duration: t.Export},
	} {
		if st.Duration > 0 {
			out.Stages = append(out.Stages, st)
		}
	}
	return out
}
