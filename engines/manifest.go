// Package engines describes model sets: the manifest.json of every folder
// under engines/ (graphs, tensor contracts, sampler and volume defaults, and
// for each built TensorRT plan the version, GPU and checksum it was built
// for), and the embedded reference sets that let hy3d run with nothing but
// its own binary: engines/silhouette, the default, and engines/tiny, the
// small one the tests run.
package engines

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Graph names (docs/engine-contract.md).
const (
	Conditioner = "conditioner"
	DiT         = "dit"
	VAELatents  = "vae_latents"
	VAEGeometry = "vae_geometry"
	Matting     = "matting"
)

// RequiredGraphs are the graphs every model set has; Matting is optional.
var RequiredGraphs = []string{Conditioner, DiT, VAELatents, VAEGeometry}

// Manifest is the parsed manifest.json of one model set.
type Manifest struct {
	Name        string  `json:"name"`
	Family      string  `json:"family"` // hunyuan3d-2.0, hunyuan3d-2mini, hunyuan3d-2.1 (tiny mimics one of them)
	Description string  `json:"description,omitempty"`
	ScaleFactor float64 `json:"scale_factor"` // latents are divided by it before vae_latents

	Image   ImageSpec   `json:"image"`
	Tokens  TokenSpec   `json:"tokens"`
	Sampler SamplerSpec `json:"sampler"`
	Volume  VolumeSpec  `json:"volume"`

	Graphs map[string]Graph `json:"graphs"`
}

// ImageSpec is the conditioner's input geometry and normalization.
type ImageSpec struct {
	Size        int        `json:"size"`         // 518
	CanvasSize  int        `json:"canvas_size"`  // 512: recentered image before the conditioner resize
	BorderRatio float64    `json:"border_ratio"` // 0.15
	Mean        [3]float64 `json:"mean"`         // ImageNet mean
	Std         [3]float64 `json:"std"`          // ImageNet std
}

// TokenSpec gives the sizes of the tensors between graphs.
type TokenSpec struct {
	CondTokens     int `json:"cond_tokens"`     // T (1370)
	CondDim        int `json:"cond_dim"`        // D
	LatentTokens   int `json:"latent_tokens"`   // L
	LatentChannels int `json:"latent_channels"` // C
	FeatureWidth   int `json:"feature_width"`   // W
}

// SamplerSpec selects the sampler and its defaults.
type SamplerSpec struct {
	Kind          string  `json:"kind"`           // "flow_euler" or "consistency" (turbo)
	Guidance      string  `json:"guidance"`       // "cfg" (batch [cond; zeros]) or "embedded" (distilled)
	Steps         int     `json:"steps"`          // default number of steps
	GuidanceScale float64 `json:"guidance_scale"` // default guidance scale
	PCMTimesteps  int     `json:"pcm_timesteps,omitempty"`
}

// VolumeSpec gives the decoding grid defaults.
type VolumeSpec struct {
	Bounds           float64 `json:"bounds"`            // 1.01: the grid spans [-Bounds, Bounds]^3
	Resolution       int     `json:"resolution"`        // default octree resolution R
	ChunkPoints      int     `json:"chunk_points"`      // queries per vae_geometry call (8000)
	CoarseResolution int     `json:"coarse_resolution"` // first level of coarse-to-fine decoding
	RefineBand       float64 `json:"refine_band"`       // |logit| below which a cell is refined (0.95)
}

// Graph is one ONNX graph and, once built, its TensorRT plan.
type Graph struct {
	ONNX     string       `json:"onnx"`
	Inputs   []TensorSpec `json:"inputs"`
	Outputs  []TensorSpec `json:"outputs"`
	MaxBatch int          `json:"max_batch"`
	Plan     *Plan        `json:"plan,omitempty"`
}

// TensorSpec is a named tensor with -1 for dynamic dims (always the batch).
type TensorSpec struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
}

// Plan records what a TensorRT plan was built for (tools/build-engines).
type Plan struct {
	File              string             `json:"file"`
	TensorRT          string             `json:"tensorrt"`           // e.g. "10.3.0"
	ComputeCapability string             `json:"compute_capability"` // e.g. "8.6"
	GPU               string             `json:"gpu,omitempty"`      // device name at build time
	Precision         string             `json:"precision"`          // "fp16"
	Profiles          map[string]Profile `json:"profiles"`           // per input
	BatchBuckets      []int              `json:"batch_buckets"`
	SHA256            string             `json:"sha256"`
}

// Profile is one input's optimization profile.
type Profile struct {
	Min []int64 `json:"min"`
	Opt []int64 `json:"opt"`
	Max []int64 `json:"max"`
}

// Set is a manifest plus the file system its graphs live in.
type Set struct {
	Manifest
	FS  fs.FS
	Dir string // on-disk folder, empty for the embedded set
}

//go:embed tiny/manifest.json tiny/*.onnx silhouette/manifest.json silhouette/*.onnx
var embedded embed.FS

// Tiny returns the embedded 8×8-token reference set (engines/tiny, the
// contract of Hunyuan3D-2.0 at toy size): fast, for tests.
func Tiny() (*Set, error) { return openEmbedded("tiny") }

// Default returns the embedded set hy3d serves when it is given no model
// set: engines/silhouette, constructed models with Hunyuan3D-2mini-Turbo's
// contract whose mesh is an inflated version of the picture's silhouette.
func Default() (*Set, error) { return openEmbedded("silhouette") }

func openEmbedded(name string) (*Set, error) {
	sub, err := fs.Sub(embedded, name)
	if err != nil {
		return nil, fmt.Errorf("embedded %s engines: %w", name, err)
	}
	return load(sub, "")
}

// Open reads the model set in dir.
func Open(dir string) (*Set, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("engines %s: %w", dir, err)
	}
	return load(os.DirFS(abs), abs)
}

func load(fsys fs.FS, dir string) (*Set, error) {
	raw, err := fs.ReadFile(fsys, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &Set{Manifest: m, FS: fsys, Dir: dir}, nil
}

// Validate checks that the manifest names every required graph and sane defaults.
func (m *Manifest) Validate() error {
	var errs []error
	for _, name := range RequiredGraphs {
		g, ok := m.Graphs[name]
		if !ok {
			errs = append(errs, fmt.Errorf("graph %q missing", name))
			continue
		}
		if g.ONNX == "" {
			errs = append(errs, fmt.Errorf("graph %q: no onnx file", name))
		}
		if g.MaxBatch < 1 {
			errs = append(errs, fmt.Errorf("graph %q: max_batch %d < 1", name, g.MaxBatch))
		}
	}
	if m.ScaleFactor == 0 {
		errs = append(errs, errors.New("scale_factor is 0"))
	}
	if m.Sampler.Guidance != "cfg" && m.Sampler.Guidance != "embedded" {
		errs = append(errs, fmt.Errorf("sampler.guidance %q: want cfg or embedded", m.Sampler.Guidance))
	}
	if m.Volume.Resolution < 2 {
		errs = append(errs, fmt.Errorf("volume.resolution %d < 2", m.Volume.Resolution))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("manifest %q: %w", m.Name, err)
	}
	return nil
}

// ReadGraph returns the bytes of a graph's ONNX file.
func (s *Set) ReadGraph(name string) ([]byte, error) {
	g, ok := s.Graphs[name]
	if !ok {
		return nil, fmt.Errorf("model set %q has no graph %q", s.Name, name)
	}
	b, err := fs.ReadFile(s.FS, g.ONNX)
	if err != nil {
		return nil, fmt.Errorf("graph %q: %w", name, err)
	}
	return b, nil
}
