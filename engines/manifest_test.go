package engines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Both embedded sets load with every graph and the contract of the
// Hunyuan3D family they mimic: 1370 image tokens, and 2mini's 512 latent
// tokens for the default set.
func TestEmbeddedSetsLoadWithEveryGraph(t *testing.T) {
	for _, c := range []struct {
		name    string
		open    func() (*Set, error)
		family  string
		latents int
	}{
		{"tiny", Tiny, "hunyuan3d-2.0", 64},
		{"silhouette", Default, "hunyuan3d-2mini", 512},
	} {
		t.Run(c.name, func(t *testing.T) {
			set, err := c.open()
			if err != nil {
				t.Fatal(err)
			}
			if set.Name != c.name || set.Family != c.family {
				t.Fatalf("set %q of family %q", set.Name, set.Family)
			}
			for _, name := range RequiredGraphs {
				b, err := set.ReadGraph(name)
				if err != nil {
					t.Fatalf("ReadGraph(%s): %v", name, err)
				}
				if len(b) == 0 {
					t.Fatalf("graph %s is empty", name)
				}
			}
			if set.Tokens.CondTokens != 1370 || set.Tokens.LatentTokens != c.latents {
				t.Fatalf("tokens %+v, want 1370 image tokens and %d latent tokens", set.Tokens, c.latents)
			}
			if _, err := set.ReadGraph(Matting); err == nil {
				t.Fatalf("%s has no matting graph, ReadGraph must say so", c.name)
			}
		})
	}
}

func TestOpenReadsTheSameManifestFromDisk(t *testing.T) {
	for _, c := range []struct {
		dir  string
		open func() (*Set, error)
	}{{"tiny", Tiny}, {"silhouette", Default}} {
		set, err := Open(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := c.open()
		if err != nil {
			t.Fatal(err)
		}
		if set.Dir == "" || set.Name != embedded.Name || set.ScaleFactor != embedded.ScaleFactor {
			t.Fatalf("Open(%s) = %q dir %q scale %v; embedded %q scale %v",
				c.dir, set.Name, set.Dir, set.ScaleFactor, embedded.Name, embedded.ScaleFactor)
		}
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	good := func() Manifest {
		m := Manifest{Name: "m", ScaleFactor: 1, Sampler: SamplerSpec{Guidance: "cfg"}, Volume: VolumeSpec{Resolution: 64}}
		m.Graphs = map[string]Graph{}
		for _, g := range RequiredGraphs {
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
		{"missing graph", func(m *Manifest) { delete(m.Graphs, DiT) }, `graph "dit" missing`},
		{"graph without file", func(m *Manifest) { m.Graphs[VAELatents] = Graph{MaxBatch: 1} }, `graph "vae_latents": no onnx file`},
		{"zero max batch", func(m *Manifest) { m.Graphs[Conditioner] = Graph{ONNX: "c.onnx"} }, "max_batch 0 < 1"},
		{"zero scale factor", func(m *Manifest) { m.ScaleFactor = 0 }, "scale_factor is 0"},
		{"unknown guidance", func(m *Manifest) { m.Sampler.Guidance = "magic" }, `sampler.guidance "magic"`},
		{"tiny resolution", func(m *Manifest) { m.Volume.Resolution = 1 }, "volume.resolution 1 < 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.spoil(&m)
			wantValidate(t, m, tc.want)
		})
	}
}

// wantValidate checks that m validates when want is "", and otherwise that
// Validate's error mentions want.
func wantValidate(t *testing.T, m Manifest, want string) {
	t.Helper()
	err := m.Validate()
	if want == "" {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Validate = %v, want it to mention %q", err, want)
	}
}

func TestOpenRejectsMissingAndCorruptManifests(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "read manifest") {
		t.Fatalf("Open(empty dir) = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "parse manifest") {
		t.Fatalf("Open(corrupt) = %v", err)
	}
}
