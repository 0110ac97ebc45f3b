package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/pipeline"
	"github.com/hy3d/hy3d/tensor"
)

// ReferenceFile is the header of a stored reference, in its folder.
const ReferenceFile = "reference.json"

const referenceFormat = "hy3d-verify-reference/1"

// A stored reference is a folder holding ReferenceFile and one file per
// tensor: the outputs of every graph on the seeded inputs, and the
// sampler's final volume, as raw little-endian float32. The header records
// what produced them — the SHA-256 of every ONNX graph, of each graph's
// inputs and of the preprocessed test picture, the seed, batch and sampler
// case — so that a reference that no longer matches its model set, or
// inputs that come out differently on another machine, are named as such
// rather than reported as numerical errors.
type referenceHeader struct {
	Format  string                    `json:"format"`
	Set     string                    `json:"set"`
	Backend string                    `json:"backend"`
	Command string                    `json:"command,omitempty"`
	Seed    uint64                    `json:"seed"`
	Batch   int                       `json:"batch"`
	Graphs  map[string]referenceGraph `json:"graphs"`
	Sampler *referenceSampler         `json:"sampler,omitempty"`
}

type referenceGraph struct {
	ONNX    string            `json:"onnx_sha256"`
	Batch   int               `json:"batch"`
	Inputs  string            `json:"inputs_sha256"`
	Outputs []referenceTensor `json:"outputs"`
}

type referenceTensor struct {
	Name   string  `json:"name"`
	Shape  []int64 `json:"shape"`
	File   string  `json:"file"`
	SHA256 string  `json:"sha256"`
}

type referenceSampler struct {
	Case       SamplerCase       `json:"case"`
	ONNX       map[string]string `json:"onnx_sha256"` // every graph of the set: the pipeline may use any
	Picture    string            `json:"picture_sha256"`
	Resolution int               `json:"resolution"`
	Volume     referenceTensor   `json:"volume"`
}

// WriteReference runs every graph of set and the sampler case on b with the
// options' seeded inputs and stores the results in dir (created if needed;
// files of an earlier reference are replaced). command is recorded so that a
// reader knows how to regenerate it.
func WriteReference(ctx context.Context, dir string, set *engines.Set, b Backend, o Options, command string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("verify: reference: %w", err)
	}
	h := referenceHeader{Format: referenceFormat, Set: set.Name, Backend: b.Name(), Command: command, Seed: o.Seed,
		Batch: o.Batch, Graphs: map[string]referenceGraph{}}
	for _, name := range GraphOrder(&set.Manifest, o.Graphs) {
		g, ok := set.Graphs[name]
		if !ok {
			return fmt.Errorf("verify: model set %q has no graph %q", set.Name, name)
		}
		onnx, err := onnxSum(set, name)
		if err != nil {
			return err
		}
		batch := min(max(o.Batch, 1), g.MaxBatch)
		in, err := Inputs(&set.Manifest, name, batch, o.Seed)
		if err != nil {
			return err
		}
		out, err := b.Run(ctx, name, in)
		if err != nil {
			return fmt.Errorf("verify: reference: %w", err)
		}
		rg := referenceGraph{ONNX: onnx, Batch: batch, Inputs: hex.EncodeToString(sum(hashTensors(in)))}
		for _, t := range out {
			rt, err := writeTensor(dir, name+"."+t.Name+".f32", t.Name, t.Shape, t.Data)
			if err != nil {
				return err
			}
			rg.Outputs = append(rg.Outputs, rt)
		}
		h.Graphs[name] = rg
	}
	if o.Sampler.Steps > 0 {
		v, err := b.Volume(ctx, o.Sampler)
		if err != nil {
			return fmt.Errorf("verify: reference: %w", err)
		}
		rt, err := writeTensor(dir, "volume.f32", "logits", []int64{int64(len(v.Values))}, v.Values)
		if err != nil {
			return err
		}
		h.Sampler = &referenceSampler{Case: o.Sampler, ONNX: map[string]string{}, Picture: hex.EncodeToString(v.Picture[:]), Resolution: v.Resolution, Volume: rt}
		for _, name := range GraphOrder(&set.Manifest, nil) {
			if h.Sampler.ONNX[name], err = onnxSum(set, name); err != nil {
				return err
			}
		}
	}
	raw, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("verify: reference: %w", err)
	}
	// The header goes last and whole, so that an interrupted write leaves
	// either the old reference or one whose data files fail their checksums.
	return writeFile(filepath.Join(dir, ReferenceFile), append(raw, '\n'))
}

func sum(b [32]byte) []byte { return b[:] }

func onnxSum(set *engines.Set, graph string) (string, error) {
	b, err := set.ReadGraph(graph)
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func writeTensor(dir, file, name string, shape []int64, data []float32) (referenceTensor, error) {
	raw := tensor.EncodeRaw(data)
	s := sha256.Sum256(raw)
	if err := writeFile(filepath.Join(dir, file), raw); err != nil {
		return referenceTensor{}, err
	}
	return referenceTensor{Name: name, Shape: slices.Clone(shape), File: file, SHA256: hex.EncodeToString(s[:])}, nil
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("verify: reference: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("verify: reference: %w", errors.Join(err, os.Remove(tmp)))
	}
	return nil
}

// Reference is a stored reference opened against the model set it claims
// to describe. It is a Backend that replays the stored results, after
// checking that the graph and the inputs are the ones they were computed
// from.
type Reference struct {
	dir string
	set *engines.Set
	h   referenceHeader
}

// ErrStaleReference marks a reference that no longer matches its model set
// or the inputs this machine generates.
var ErrStaleReference = errors.New("stored reference does not match")

// OpenReference reads the reference in dir for set.
func OpenReference(dir string, set *engines.Set) (*Reference, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ReferenceFile))
	if err != nil {
		return nil, fmt.Errorf("verify: reference: %w", err)
	}
	var h referenceHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("verify: reference %s: %w", dir, err)
	}
	if h.Format != referenceFormat {
		return nil, fmt.Errorf("verify: reference %s: format %q, want %q", dir, h.Format, referenceFormat)
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("verify: reference %s: %w", dir, err)
	}
	if h.Set != set.Name {
		return nil, fmt.Errorf("verify: reference %s was written for model set %q, not %q: %w", dir, h.Set, set.Name, ErrStaleReference)
	}
	return &Reference{dir: dir, set: set, h: h}, nil
}

// validate refuses a header whose case the pipeline would refuse or choke
// on, before anything is run for it.
func (h *referenceHeader) validate() error {
	if h.Batch < 1 {
		return fmt.Errorf("batch %d < 1", h.Batch)
	}
	if s := h.Sampler; s != nil {
		c := s.Case
		switch {
		case c.Steps < 1 || c.Steps > pipeline.MaxSteps:
			return fmt.Errorf("sampler steps %d outside 1..%d", c.Steps, pipeline.MaxSteps)
		case c.Resolution < pipeline.MinResolution || c.Resolution > pipeline.MaxResolution:
			return fmt.Errorf("sampler resolution %d outside %d..%d", c.Resolution, pipeline.MinResolution, pipeline.MaxResolution)
		case math.IsNaN(c.Guidance) || math.IsInf(c.Guidance, 0):
			return fmt.Errorf("sampler guidance %v", c.Guidance)
		}
	}
	return nil
}

// Name is "reference".
func (r *Reference) Name() string { return "reference" }

// Command is how the reference was written, as recorded.
func (r *Reference) Command() string { return r.h.Command }

// Options returns base with the seed, batch and sampler case the reference
// was written with: comparing against it must use the same. A base that
// skips the sampler (Steps 0) keeps skipping it, as does a reference
// without a volume; the graphs and tolerances are base's.
func (r *Reference) Options(base Options) Options {
	base.Seed, base.Batch = r.h.Seed, r.h.Batch
	if base.Sampler.Steps > 0 && r.h.Sampler != nil {
		base.Sampler = r.h.Sampler.Case
	} else {
		base.Sampler = SamplerCase{}
	}
	return base
}

func (r *Reference) stale(what string) error {
	cmd := r.h.Command
	if cmd == "" {
		cmd = "hy3d engines verify --write-reference"
	}
	return fmt.Errorf("%s; regenerate the reference (%s): %w", what, cmd, ErrStaleReference)
}

// checkGraph fails when the graph's ONNX file is not the one the reference
// was computed from.
func (r *Reference) checkGraph(graph string) (referenceGraph, error) {
	g, ok := r.h.Graphs[graph]
	if !ok {
		return g, r.stale(fmt.Sprintf("reference: no outputs stored for graph %q", graph))
	}
	now, err := onnxSum(r.set, graph)
	if err != nil {
		return g, err
	}
	if now != g.ONNX {
		return g, r.stale(fmt.Sprintf("reference: %s's ONNX file has changed since the reference was written (sha256 %.12s…, reference %.12s…)", graph, now, g.ONNX))
	}
	return g, nil
}

// Run returns the stored outputs of graph, if inputs are the ones they were
// computed from.
func (r *Reference) Run(ctx context.Context, graph string, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g, err := r.checkGraph(graph)
	if err != nil {
		return nil, err
	}
	if got := hashTensors(inputs); hex.EncodeToString(got[:]) != g.Inputs {
		return nil, r.stale(fmt.Sprintf("reference: %s's seeded inputs (batch %d) differ from the ones the reference was computed from", graph, g.Batch))
	}
	out := make([]tensor.Tensor, 0, len(g.Outputs))
	for _, t := range g.Outputs {
		data, err := r.readTensor(t)
		if err != nil {
			return nil, err
		}
		out = append(out, tensor.Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Data: data})
	}
	return out, nil
}

// Volume returns the stored volume, if c is the case it was computed for
// and no graph has changed since.
func (r *Reference) Volume(ctx context.Context, c SamplerCase) (*Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := r.h.Sampler
	if s == nil {
		return nil, errors.New("reference: no sampler volume stored")
	}
	if s.Case != c {
		return nil, fmt.Errorf("reference: the stored volume is for %+v, not %+v", s.Case, c)
	}
	for _, name := range GraphOrder(&r.set.Manifest, nil) {
		now, err := onnxSum(r.set, name)
		if err != nil {
			return nil, err
		}
		if was, ok := s.ONNX[name]; !ok || was != now {
			return nil, r.stale(fmt.Sprintf("reference: %s's ONNX file has changed since the sampler's volume was written", name))
		}
	}
	data, err := r.readTensor(s.Volume)
	if err != nil {
		return nil, err
	}
	v := &Volume{Resolution: s.Resolution, Values: data}
	p, err := hex.DecodeString(s.Picture)
	if err != nil || len(p) != len(v.Picture) {
		return nil, fmt.Errorf("reference: picture_sha256 %q is not a SHA-256", s.Picture)
	}
	copy(v.Picture[:], p)
	return v, nil
}

func (r *Reference) readTensor(t referenceTensor) ([]float32, error) {
	if !filepath.IsLocal(t.File) {
		return nil, fmt.Errorf("reference: file %q is not inside %s", t.File, r.dir)
	}
	raw, err := os.ReadFile(filepath.Join(r.dir, t.File))
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	if s := sha256.Sum256(raw); hex.EncodeToString(s[:]) != t.SHA256 {
		return nil, fmt.Errorf("reference: %s is corrupt (sha256 %x, header says %s)", t.File, s, t.SHA256)
	}
	if n := tensor.Elements(t.Shape); int64(len(raw)) != 4*n {
		return nil, fmt.Errorf("reference: %s has %d bytes for shape %v", t.File, len(raw), t.Shape)
	}
	return tensor.DecodeRaw(raw)
}
