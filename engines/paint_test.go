package engines

import (
	"slices"
	"strings"
	"testing"
)

// paintSets are the committed tiny paint sets and what each must hold.
var paintSets = []struct {
	dir, version, guidance string
	delight                bool
}{
	{"tiny-paint-2.0", "2.0", "cfg", true},
	{"tiny-paint-2.0-turbo", "2.0", "none", false},
	{"tiny-paint-2.0-oracle", "2.0", "cfg", true},
	{"tiny-paint-2.1", "2.1", "cfg3", false},
	{"tiny-paint-2.1-oracle", "2.1", "cfg3", false},
}

// Every tiny paint set loads, has its version's graphs and scheduler
// configs, and paint_ref's outputs are exactly paint_unet's ref_* inputs,
// in order: the pipeline wires them by name.
func TestTinyPaintSetsLoadWithTheirContract(t *testing.T) {
	for _, c := range paintSets {
		t.Run(c.dir, func(t *testing.T) {
			set, err := Open(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			p := set.Paint
			if !set.IsPaint() || p.Version != c.version || p.Sampler.Guidance != c.guidance {
				t.Fatalf("kind %q version %q guidance %q", set.Kind, p.Version, p.Sampler.Guidance)
			}
			if _, ok := set.Graphs[Delight]; ok != c.delight {
				t.Fatalf("delight graph present %v, want %v", ok, c.delight)
			}
			for _, name := range RequiredPaintGraphs[c.version] {
				if b, err := set.ReadGraph(name); err != nil || len(b) == 0 {
					t.Fatalf("ReadGraph(%s): %d bytes, %v", name, len(b), err)
				}
			}
			if b, err := set.ReadFile(p.Sampler.Config); err != nil || !strings.Contains(string(b), "prediction_type") {
				t.Fatalf("scheduler config %s: %v", p.Sampler.Config, err)
			}
			var refs []string
			for _, o := range set.Graphs[PaintRef].Outputs {
				refs = append(refs, o.Name)
			}
			var unetRefs []string
			for _, in := range set.Graphs[PaintUNet].Inputs {
				if strings.HasPrefix(in.Name, "ref_") && in.Name != "ref_scale" {
					unetRefs = append(unetRefs, in.Name)
				}
			}
			if len(refs) == 0 || !slices.Equal(refs, unetRefs) {
				t.Fatalf("paint_ref outputs %v, paint_unet ref inputs %v", refs, unetRefs)
			}
			h := int64(p.ViewSize / 8)
			sample := set.Graphs[PaintUNet].Inputs[0]
			want := []int64{-1, int64(p.Views), 4, h, h}
			if c.version == "2.1" {
				want = []int64{-1, 2, int64(p.Views), 4, h, h}
			}
			if sample.Name != "sample" || !slices.Equal(sample.Shape, want) {
				t.Fatalf("paint_unet input 0 %s %v, want sample %v", sample.Name, sample.Shape, want)
			}
		})
	}
}

func TestValidatePaintNamesEveryProblem(t *testing.T) {
	good := func() Manifest {
		m := Manifest{Name: "p", Kind: KindPaint, Paint: &PaintSpec{
			Version: "2.1", Views: 6, ViewSize: 512, LatentChannels: 4, VAEScaleFactor: 0.18215, ReferenceViews: 1,
			Sampler: PaintSamplerSpec{Kind: "unipc", Guidance: "cfg3", Steps: 15, Config: "scheduler_config.json"},
			DINO:    &DINOSpec{Size: 224, Tokens: 257, Dim: 1536}, Upscale: 4,
			RoPE: &RoPESpec{Grids: []int{64, 32, 16, 8}, Voxels: []int{512, 256, 128, 64}},
		}}
		m.Graphs = map[string]Graph{}
		for _, g := range RequiredPaintGraphs["2.1"] {
			m.Graphs[g] = Graph{ONNX: g + ".onnx", MaxBatch: 1}
		}
		return m
	}
	tests := []struct {
		name  string
		spoil func(*Manifest)
		want  string
	}{
		{"valid", func(*Manifest) {}, ""},
		{"unknown kind", func(m *Manifest) { m.Kind = "sound" }, `kind "sound"`},
		{"no paint block", func(m *Manifest) { m.Paint = nil }, "without a paint block"},
		{"unknown version", func(m *Manifest) { m.Paint.Version = "3.0" }, `paint.version "3.0"`},
		{"missing upscaler", func(m *Manifest) { delete(m.Graphs, Upscaler) }, `graph "upscaler" missing`},
		{"delight without its block", func(m *Manifest) { m.Graphs[Delight] = Graph{ONNX: "d.onnx", MaxBatch: 1} }, "without paint.delight"},
		{"no views", func(m *Manifest) { m.Paint.Views = 0 }, "paint.views 0"},
		{"odd view size", func(m *Manifest) { m.Paint.ViewSize = 500 }, "paint.view_size 500"},
		{"zero vae scale", func(m *Manifest) { m.Paint.VAEScaleFactor = 0 }, "vae_scale_factor is 0"},
		{"unknown sampler", func(m *Manifest) { m.Paint.Sampler.Kind = "ddim" }, `paint.sampler.kind "ddim"`},
		{"unknown guidance", func(m *Manifest) { m.Paint.Sampler.Guidance = "cfg4" }, `paint.sampler.guidance "cfg4"`},
		{"no scheduler config", func(m *Manifest) { m.Paint.Sampler.Config = "" }, "no scheduler_config.json"},
		{"rope lengths differ", func(m *Manifest) { m.Paint.RoPE.Voxels = m.Paint.RoPE.Voxels[:3] }, "paint.rope"},
		{"no dino", func(m *Manifest) { m.Paint.DINO = nil }, "paint.dino"},
		{"shape fields ignored", func(m *Manifest) { m.ScaleFactor = 0; m.Volume.Resolution = 0 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.spoil(&m)
			wantValidate(t, m, tc.want)
		})
	}
}

func TestRowsPerJob(t *testing.T) {
	for guidance, want := range map[string]int{"cfg": 2, "cfg3": 3, "none": 1} {
		if got := (PaintSamplerSpec{Guidance: guidance}).RowsPerJob(); got != want {
			t.Errorf("%s: %d rows, want %d", guidance, got, want)
		}
	}
}

// The embedded default paint set is the committed oracle set.
func TestDefaultPaintIsTheOracleSet(t *testing.T) {
	set, err := DefaultPaint()
	if err != nil {
		t.Fatal(err)
	}
	if !set.IsPaint() || set.Name != "tiny-paint-2.0-oracle" || set.Paint.Version != "2.0" {
		t.Fatalf("default paint set %q kind %q", set.Name, set.Kind)
	}
	if _, err := set.ReadGraph(PaintUNet); err != nil {
		t.Fatal(err)
	}
}
