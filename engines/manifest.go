// Package engines describes model sets: the manifest.json of every folder
// under engines/ (graphs, tensor contracts, sampler and volume defaults of a
// shape set, the profile and samplers of a paint set, and for each built
// TensorRT plan the version, GPU and checksum it was built for), and the
// embedded reference sets that let hy3d run with nothing but its own binary:
// engines/silhouette, the default, and engines/tiny, the small one the tests
// run.
package engines

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Graph names (docs/engine-contract.md).
const (
	Conditioner = "conditioner"
	DiT         = "dit"
	VAELatents  = "vae_latents"
	VAEGeometry = "vae_geometry"
	Matting     = "matting"
)

// RequiredGraphs are the graphs every shape set has; Matting is optional.
var RequiredGraphs = []string{Conditioner, DiT, VAELatents, VAEGeometry}

// Kinds of model set (Manifest.Kind).
const (
	KindShape = "shape" // picture → mesh; an empty kind reads as shape
	KindPaint = "paint" // Hunyuan3D-Paint: mesh views → textures (docs/paint-contract.md)
)

// Paint graph names (docs/paint-contract.md).
const (
	Delight    = "delight"
	PaintRef   = "paint_ref"
	PaintUNet  = "paint_unet"
	VAEEncoder = "vae_encoder"
	VAEDecoder = "vae_decoder"
	DINOv2     = "dinov2"
	Upscaler   = "upscaler"
)

// RequiredPaintGraphs are the graphs every paint set of a version has;
// Delight is optional (2.0 only).
var RequiredPaintGraphs = map[string][]string{
	"2.0": {PaintRef, PaintUNet, VAEEncoder, VAEDecoder},
	"2.1": {PaintRef, PaintUNet, VAEEncoder, VAEDecoder, DINOv2, Upscaler},
}

// Manifest is the parsed manifest.json of one model set.
type Manifest struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind,omitempty"` // KindShape (or empty) or KindPaint
	Family      string  `json:"family"`         // hunyuan3d-2.0, hunyuan3d-2mini, hunyuan3d-2.1 (tiny mimics one of them)
	Description string  `json:"description,omitempty"`
	ScaleFactor float64 `json:"scale_factor"` // latents are divided by it before vae_latents

	Image   ImageSpec   `json:"image"`
	Tokens  TokenSpec   `json:"tokens"`
	Sampler SamplerSpec `json:"sampler"`
	Volume  VolumeSpec  `json:"volume"`

	Paint *PaintSpec `json:"paint,omitempty"` // paint sets only

	Graphs map[string]Graph `json:"graphs"`
}

// IsPaint reports whether the set is a paint set.
func (m *Manifest) IsPaint() bool { return m.Kind == KindPaint }

// PaintSpec is a paint set's profile and defaults (docs/paint-contract.md).
type PaintSpec struct {
	Version        string           `json:"version"`          // "2.0" or "2.1": the graphs' layout
	Views          int              `json:"views"`            // N, static in every graph
	ViewSize       int              `json:"view_size"`        // pixels per view side; latents are view_size/8
	LatentChannels int              `json:"latent_channels"`  // 4
	VAEScaleFactor float64          `json:"vae_scale_factor"` // latents = sample·it; the decoder takes latents/it
	ReferenceViews int              `json:"reference_views"`  // R: reference pictures per job (1)
	Materials      []string         `json:"materials"`        // ["albedo"] or ["albedo", "mr"]
	Sampler        PaintSamplerSpec `json:"sampler"`
	Cameras        *CameraSpec      `json:"cameras,omitempty"` // 2.0
	Delight        *DelightSpec     `json:"delight,omitempty"` // when the set has the delight graph
	DINO           *DINOSpec        `json:"dino,omitempty"`    // 2.1
	Upscale        int              `json:"upscale,omitempty"` // 2.1: the upscaler's factor (4)
	RoPE           *RoPESpec        `json:"rope,omitempty"`    // 2.1
}

// PaintSamplerSpec selects the paint UNet's scheduler and its defaults.
type PaintSamplerSpec struct {
	Kind          string  `json:"kind"`     // euler_ancestral, lcm or unipc
	Guidance      string  `json:"guidance"` // cfg (2 rows per job), cfg3 (3 rows) or none (1 row)
	Steps         int     `json:"steps"`
	GuidanceScale float64 `json:"guidance_scale"`
	Timesteps     []int   `json:"timesteps,omitempty"` // explicit schedule (2.0 turbo's LCM)
	Config        string  `json:"config"`              // the scheduler's scheduler_config.json, relative to the set
}

// RowsPerJob is how many paint_unet rows one job takes.
func (s PaintSamplerSpec) RowsPerJob() int {
	switch s.Guidance {
	case "cfg":
		return 2
	case "cfg3":
		return 3
	}
	return 1
}

// CameraSpec is 2.0's camera class embedding: ids in paint_unet's camera
// input are Tencent's, the graph adds Offset; Classes rows in all.
type CameraSpec struct {
	Offset  int `json:"offset"`
	Classes int `json:"classes"`
}

// DelightSpec is the delight graph's defaults (InstructPix2Pix, Euler Ancestral).
type DelightSpec struct {
	ViewSize           int     `json:"view_size"`
	Steps              int     `json:"steps"`
	GuidanceScale      float64 `json:"guidance_scale"`
	ImageGuidanceScale float64 `json:"image_guidance_scale"`
	Config             string  `json:"config"`
}

// DINOSpec is the dinov2 graph's input geometry and normalization.
type DINOSpec struct {
	Size   int        `json:"size"`   // 224
	Tokens int        `json:"tokens"` // 257
	Dim    int        `json:"dim"`    // 1536
	Mean   [3]float64 `json:"mean"`
	Std    [3]float64 `json:"std"`
}

// RoPESpec is 2.1's multi-view RoPE levels: level k has Grids[k]² cells per
// view, quantised to Voxels[k] positions per axis.
type RoPESpec struct {
	Grids  []int `json:"grids"`
	Voxels []int `json:"voxels"`
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
//go:embed tiny-paint-2.0-oracle/*.json tiny-paint-2.0-oracle/*.onnx
var embedded embed.FS

// Tiny returns the embedded 8×8-token reference set (engines/tiny, the
// contract of Hunyuan3D-2.0 at toy size): fast, for tests.
func Tiny() (*Set, error) { return openEmbedded("tiny") }

// Default returns the embedded set hy3d serves when it is given no model
// set: engines/silhouette, constructed models with Hunyuan3D-2mini-Turbo's
// contract whose mesh is an inflated version of the picture's silhouette.
func Default() (*Set, error) { return openEmbedded("silhouette") }

// DefaultPaint returns the embedded paint set hy3d paints with when it is
// given none: engines/tiny-paint-2.0-oracle, whose constructed models make
// every generated view the reference picture (docs/paint-contract.md), so
// on a CPU without Tencent's paint engines a texture still carries the
// picture's colours; the random tiny sets would paint noise.
func DefaultPaint() (*Set, error) { return openEmbedded("tiny-paint-2.0-oracle") }

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
	if m.IsPaint() {
		if err := checkSchedulerConfigs(fsys, m.Paint); err != nil {
			return nil, fmt.Errorf("manifest %q: %w", m.Name, err)
		}
	}
	return &Set{Manifest: m, FS: fsys, Dir: dir}, nil
}

// Validate checks that the manifest names every required graph and sane defaults.
func (m *Manifest) Validate() error {
	var errs []error
	switch m.Kind {
	case "", KindShape:
		errs = m.validateShape()
	case KindPaint:
		errs = m.validatePaint()
	default:
		errs = []error{fmt.Errorf("kind %q: want %s or %s", m.Kind, KindShape, KindPaint)}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("manifest %q: %w", m.Name, err)
	}
	return nil
}

func (m *Manifest) validateGraphs(names []string) []error {
	var errs []error
	for _, name := range names {
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
	return errs
}

func (m *Manifest) validatePaint() []error {
	p := m.Paint
	if p == nil {
		return []error{errors.New("paint set without a paint block")}
	}
	required, ok := RequiredPaintGraphs[p.Version]
	if !ok {
		return []error{fmt.Errorf("paint.version %q: want 2.0 or 2.1", p.Version)}
	}
	names := slices.Clone(required)
	var errs []error
	if _, ok := m.Graphs[Delight]; ok {
		names = append(names, Delight)
		if p.Delight == nil {
			errs = append(errs, errors.New(`graph "delight" without paint.delight`))
		}
	}
	errs = append(m.validateGraphs(names), errs...)
	if p.Views < 1 {
		errs = append(errs, fmt.Errorf("paint.views %d < 1", p.Views))
	}
	if p.ViewSize < 8 || p.ViewSize%8 != 0 {
		errs = append(errs, fmt.Errorf("paint.view_size %d: want a positive multiple of 8", p.ViewSize))
	}
	if p.VAEScaleFactor == 0 {
		errs = append(errs, errors.New("paint.vae_scale_factor is 0"))
	}
	if p.ReferenceViews < 1 {
		errs = append(errs, fmt.Errorf("paint.reference_views %d < 1", p.ReferenceViews))
	}
	if !slices.Contains([]string{"euler_ancestral", "lcm", "unipc"}, p.Sampler.Kind) {
		errs = append(errs, fmt.Errorf("paint.sampler.kind %q: want euler_ancestral, lcm or unipc", p.Sampler.Kind))
	}
	if !slices.Contains([]string{"cfg", "cfg3", "none"}, p.Sampler.Guidance) {
		errs = append(errs, fmt.Errorf("paint.sampler.guidance %q: want cfg, cfg3 or none", p.Sampler.Guidance))
	}
	if p.Sampler.Config == "" {
		errs = append(errs, errors.New("paint.sampler.config: no scheduler_config.json named"))
	}
	if p.Version == "2.1" && (p.RoPE == nil || len(p.RoPE.Grids) != len(p.RoPE.Voxels) || len(p.RoPE.Grids) == 0) {
		errs = append(errs, errors.New("paint.rope: 2.1 needs as many grids as voxel resolutions"))
	}
	if p.Version == "2.1" && (p.DINO == nil || p.Upscale < 1) {
		errs = append(errs, errors.New("paint.dino and paint.upscale: 2.1 needs both"))
	}
	return errs
}

func (m *Manifest) validateShape() []error {
	errs := m.validateGraphs(RequiredGraphs)
	if m.ScaleFactor == 0 {
		errs = append(errs, errors.New("scale_factor is 0"))
	}
	if m.Sampler.Guidance != "cfg" && m.Sampler.Guidance != "embedded" {
		errs = append(errs, fmt.Errorf("sampler.guidance %q: want cfg or embedded", m.Sampler.Guidance))
	}
	if m.Volume.Resolution < 2 {
		errs = append(errs, fmt.Errorf("volume.resolution %d < 2", m.Volume.Resolution))
	}
	return errs
}

// checkSchedulerConfigs makes sure the scheduler configs a paint manifest
// names are in the set: the samplers read them.
func checkSchedulerConfigs(fsys fs.FS, p *PaintSpec) error {
	files := []string{p.Sampler.Config}
	if p.Delight != nil {
		files = append(files, p.Delight.Config)
	}
	for _, f := range files {
		if _, err := fs.Stat(fsys, f); err != nil {
			return fmt.Errorf("scheduler config: %w", err)
		}
	}
	return nil
}

// ReadFile returns the bytes of a file of the set, such as a scheduler
// config the manifest names.
func (s *Set) ReadFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(s.FS, name)
	if err != nil {
		return nil, fmt.Errorf("model set %q: %w", s.Name, err)
	}
	return b, nil
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
