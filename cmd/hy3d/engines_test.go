package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/verify"
)

const tinyDir = "../../engines/tiny"

// noTensorRT reports whether this machine has no usable TensorRT, which is
// what the default build says everywhere but on an operator's GPU build.
func noTensorRT() bool { return probeMachine(0).Unavailable != "" }

func TestEnginesInfoOnTinyShowsGraphsAndNoPlans(t *testing.T) {
	code, stdout, stderr := runCLI(t, "engines", "info", "--engines", tinyDir)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"model set   tiny — hunyuan3d-2.0",
		"conditioner   conditioner.onnx   image B×3×518×518",
		"latents B×64×64, timestep B, cond B×1370×64",
		"queries B×?×3, features B×64×32",
		"TensorRT    ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "no plan (ONNX only)"); n != 4 {
		t.Errorf("%d graphs said to have no plan, want all 4:\n%s", n, stdout)
	}
	if noTensorRT() && !strings.Contains(stdout, "TensorRT    unavailable on this machine (") {
		t.Errorf("info does not say TensorRT is unavailable here:\n%s", stdout)
	}
	if strings.Contains(stdout, "PROFILE") {
		t.Errorf("profiles table printed for a set without plans:\n%s", stdout)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("trailing spaces in %q", line)
		}
	}
}

// planFixture is a copy of the tiny manifest whose dit has a plan (a fake
// file with the right checksum), vae_latents a plan whose file changed, and
// vae_geometry a plan whose file is missing.
func planFixture(t *testing.T) (dir string, set *engines.Set) {
	t.Helper()
	tiny, err := engines.Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "plans"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := []byte("a fake plan")
	sum := sha256.Sum256(body)
	for _, f := range []string{"dit.plan", "vae_latents.plan"} {
		if err := os.WriteFile(filepath.Join(dir, "plans", f), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := tiny.Manifest
	m.Graphs = map[string]engines.Graph{}
	for name, g := range tiny.Graphs {
		m.Graphs[name] = g
	}
	plan := func(graph, sha string) *engines.Plan {
		return &engines.Plan{File: "plans/" + graph + ".plan", TensorRT: "10.3.0", ComputeCapability: "8.6",
			GPU: "NVIDIA GeForce RTX 3090", Precision: "fp16", BatchBuckets: []int{2, 4, 8, 16}, SHA256: sha,
			Profiles: map[string]engines.Profile{
				"cond":     {Min: []int64{1, 1370, 64}, Opt: []int64{16, 1370, 64}, Max: []int64{16, 1370, 64}},
				"latents":  {Min: []int64{1, 64, 64}, Opt: []int64{16, 64, 64}, Max: []int64{16, 64, 64}},
				"timestep": {Min: []int64{1}, Opt: []int64{16}, Max: []int64{16}},
			}}
	}
	for name, p := range map[string]*engines.Plan{
		engines.DiT:         plan("dit", hex.EncodeToString(sum[:])),
		engines.VAELatents:  plan("vae_latents", strings.Repeat("ab", 32)),
		engines.VAEGeometry: plan("vae_geometry", hex.EncodeToString(sum[:])),
	} {
		g := m.Graphs[name]
		g.Plan = p
		m.Graphs[name] = g
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	set, err = engines.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, set
}

func TestEnginesInfoShowsPlansAndWhetherTheyLoadHere(t *testing.T) {
	dir, _ := planFixture(t)
	code, stdout, stderr := runCLI(t, "engines", "info", "--engines", dir)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && (strings.HasPrefix(f[1], "plans/") || f[1] == "no") {
			rows[f[0]] = line
		}
	}
	for graph, want := range map[string][]string{
		"conditioner":  {"no plan (ONNX only)"},
		"dit":          {"plans/dit.plan", "10.3.0", "NVIDIA GeForce RTX 3090 (8.6)", "fp16", "2,4,8,16", "ok"},
		"vae_latents":  {"plans/vae_latents.plan", "abababababab…", "mismatch (file sha256"},
		"vae_geometry": {"plans/vae_geometry.plan", "file missing: plans/vae_geometry.plan"},
	} {
		for _, w := range want {
			if !strings.Contains(rows[graph], w) {
				t.Errorf("%s row %q lacks %q\n%s", graph, rows[graph], w, stdout)
			}
		}
	}
	if noTensorRT() && !strings.Contains(rows["dit"], "no: TensorRT unavailable on this machine") {
		t.Errorf("dit row %q does not say TensorRT is unavailable", rows["dit"])
	}
	// Profiles in the graph's input order.
	prof := regexp.MustCompile(`(?m)^dit +latents +1×64×64 +16×64×64 +16×64×64\n` +
		`dit +timestep +1 +16 +16\ndit +cond +1×1370×64 +16×1370×64 +16×1370×64$`)
	if !prof.MatchString(stdout) {
		t.Errorf("profiles table missing or out of order:\n%s", stdout)
	}
}

func TestEnginesInfoOnAMachineWithTensorRT(t *testing.T) {
	_, set := planFixture(t)
	tests := []struct {
		name    string
		machine verify.Machine
		want    string
	}{
		{"the GPU and release it was built for", verify.Machine{TensorRT: "10.3.0", DeviceName: "NVIDIA GeForce RTX 3090", ComputeCapability: "8.6"}, "yes"},
		{"another GPU", verify.Machine{TensorRT: "10.3.0", DeviceName: "NVIDIA L4", ComputeCapability: "8.9"},
			"no: built for compute capability 8.6, device 0 (NVIDIA L4) is 8.9"},
		{"another TensorRT", verify.Machine{TensorRT: "10.8.0", DeviceName: "NVIDIA GeForce RTX 3090", ComputeCapability: "8.6"},
			"no: built with TensorRT 10.3.0, this machine has 10.8.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeInfo(&b, set, tc.machine); err != nil {
				t.Fatal(err)
			}
			dit := regexp.MustCompile(`(?m)^dit +plans/dit\.plan .*$`).FindString(b.String())
			if !strings.HasSuffix(dit, tc.want) {
				t.Errorf("dit row %q, want it to end in %q", dit, tc.want)
			}
			if !strings.Contains(b.String(), "TensorRT    "+tc.machine.TensorRT+" on device 0") {
				t.Errorf("header does not name the machine's TensorRT:\n%s", b.String())
			}
		})
	}
}

func TestEnginesVerifyOnTinyComparesORTWithItselfAndTheReference(t *testing.T) {
	needORT(t)
	if !noTensorRT() {
		t.Skip("TensorRT is usable here; this test covers the CPU-only comparison")
	}
	code, stdout, stderr := runCLI(t, "engines", "verify", "--engines", tinyDir)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	for _, want := range []string{
		"TensorRT unavailable on this machine: comparing ORT at 1 vs 2 threads and against the stored reference\n",
		"ort (2 threads) vs ort (1 thread): model set tiny, seed 0",
		"ort vs reference: model set tiny, seed 0",
		"conditioner   cond      1×1370×64",
		"vae_geometry  logits    2×8000",
		"sampler: 5 steps, guidance 5, seed 0, dense grid R=32: occupancy signs agree on",
		"overall: PASS",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, stdout)
		}
	}
	if regexp.MustCompile(`\bFAIL\b`).MatchString(stdout) {
		t.Errorf("something failed:\n%s", stdout)
	}
}

func TestEnginesVerifyJSON(t *testing.T) {
	needORT(t)
	code, stdout, stderr := runCLI(t, "engines", "verify", "--engines", tinyDir, "--against", "reference", "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var out verifyOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if !out.Pass || len(out.Reports) != 1 {
		t.Fatalf("pass %v with %d reports, want one passing report", out.Pass, len(out.Reports))
	}
	r := out.Reports[0]
	if r.Got != "ort" || r.Want != "reference" || len(r.Graphs) != 4 || r.Sampler == nil || r.Sampler.Signs == nil || r.Sampler.Signs.Near == 0 {
		t.Errorf("report %+v: want ort vs reference over 4 graphs and the sampler", r)
	}
}

func TestEnginesVerifyWritesAReferenceAndNamesAStaleOne(t *testing.T) {
	needORT(t)
	ref := filepath.Join(t.TempDir(), "ref")
	quick := []string{"--steps", "2", "--resolution", "16", "--graphs", "dit,vae_latents"}
	args := append([]string{"engines", "verify", "--engines", tinyDir, "--write-reference", "--reference", ref, "--seed", "3"}, quick...)
	code, stdout, stderr := runCLI(t, args...)
	if code != exitOK || !strings.Contains(stdout, "wrote the outputs of 2 graphs (seed 3, batch 2)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// The reference fixes the seed, graphs' batches and sampler case; the
	// graphs it lacks fail, naming how to regenerate it.
	code, stdout, _ = runCLI(t, "engines", "verify", "--engines", tinyDir, "--against", "reference", "--reference", ref, "--graphs", "dit,vae_latents")
	if code != exitOK || !strings.Contains(stdout, "seed 3") || !strings.Contains(stdout, "dense grid R=16") {
		t.Fatalf("exit %d against a fresh reference:\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "engines", "verify", "--engines", tinyDir, "--against", "reference", "--reference", ref, "--graphs", "dit,conditioner")
	if code != exitError || !strings.Contains(stdout, `no outputs stored for graph "conditioner"`) || !strings.Contains(stdout, "--write-reference --reference "+ref) {
		t.Errorf("exit %d for a graph the reference lacks:\n%s", code, stdout)
	}

	// A graph that changed since: its checksum no longer matches.
	header := filepath.Join(ref, verify.ReferenceFile)
	raw, err := os.ReadFile(header)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	h["graphs"].(map[string]any)["dit"].(map[string]any)["onnx_sha256"] = strings.Repeat("0", 64)
	raw, _ = json.Marshal(h)
	if err := os.WriteFile(header, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "engines", "verify", "--engines", tinyDir, "--against", "reference", "--reference", ref, "--graphs", "dit", "--steps", "0")
	if code != exitError || !strings.Contains(stdout, "dit's ONNX file has changed since the reference was written") {
		t.Errorf("exit %d for a stale reference:\n%s", code, stdout)
	}
}

func TestEnginesInfoOnPaintSetsShowsTheirProfile(t *testing.T) {
	tests := []struct {
		set  string
		want []string
	}{
		{"tiny-paint-2.0", []string{
			"paint set   tiny-paint-2.0 — hunyuan3d-paint-2.0",
			"profile     paint 2.0: 6 views of 64², latents 4×8², VAE scale factor 0.18215, 1 reference view(s), materials albedo",
			"sampler     euler_ancestral, guidance cfg (2 rows per job, scale 2), 30 steps, config scheduler_config.json",
			"cameras     ids + 5, 49 classes",
			"delight     64², 50 steps",
			"sample B×6×4×8×8, normal B×6×4×8×8, position B×6×4×8×8, timestep B, camera B×6, ref_scale B, text_scale B",
		}},
		{"tiny-paint-2.0-turbo", []string{
			"sampler     lcm, guidance none (1 rows per job, scale 1), 10 steps, config scheduler_config.json, timesteps 989,890,",
		}},
		{"tiny-paint-2.1", []string{
			"profile     paint 2.1: 6 views of 64², latents 4×8², VAE scale factor 0.18215, 1 reference view(s), materials albedo, mr",
			"sampler     unipc, guidance cfg3 (3 rows per job, scale 3), 15 steps",
			"dino        224², 257 tokens × 1536",
			"upscale     ×4",
			"rope        grids 8,4,2,1, voxels 64,32,16,8",
			"upscaled B×3×256×256",
			"rope_index_l0 B×384×3",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "engines", "info", "--engines", "../../engines/"+tc.set)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("info lacks %q:\n%s", want, stdout)
				}
			}
			if strings.Contains(stdout, "tokens      cond") || strings.Contains(stdout, "volume      R=") {
				t.Errorf("a paint set's info shows the shape fields:\n%s", stdout)
			}
			set, err := engines.Open("../../engines/" + tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(stdout, "no plan (ONNX only)"); n != len(set.Graphs) {
				t.Errorf("%d graphs without a plan, want %d:\n%s", n, len(set.Graphs), stdout)
			}
		})
	}
}

// Every paint graph, ONNX Runtime at 1 against 2 threads and against a
// reference written on this machine; a paint set has no sampler comparison.
func TestEnginesVerifyOnPaintSets(t *testing.T) {
	needORT(t)
	for _, set := range []string{"tiny-paint-2.0", "tiny-paint-2.1"} {
		t.Run(set, func(t *testing.T) {
			dir := "../../engines/" + set
			s, err := engines.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, "engines", "verify", "--engines", dir, "--against", "ort-threads", "--batch", "1")
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q\n%s", code, stderr, stdout)
			}
			for _, g := range verify.GraphOrder(&s.Manifest, nil) {
				if !regexp.MustCompile(`(?m)^` + g + ` +\S+ +1×.* PASS$`).MatchString(stdout) {
					t.Errorf("no passing row for %s:\n%s", g, stdout)
				}
			}
			if strings.Contains(stdout, "sampler:") {
				t.Errorf("a paint set ran the sampler comparison:\n%s", stdout)
			}

			ref := filepath.Join(t.TempDir(), "ref")
			code, stdout, stderr = runCLI(t, "engines", "verify", "--engines", dir, "--write-reference", "--reference", ref, "--batch", "1")
			if code != exitOK || !strings.Contains(stdout, fmt.Sprintf("wrote the outputs of %d graphs (seed 0, batch 1) and no sampler volume", len(s.Graphs))) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			code, stdout, stderr = runCLI(t, "engines", "verify", "--engines", dir, "--against", "reference", "--reference", ref, "--json")
			if code != exitOK {
				t.Fatalf("exit %d against its own reference, stderr %q\n%s", code, stderr, stdout)
			}
			var out verifyOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatal(err)
			}
			if r := out.Reports[0]; !out.Pass || r.Want != "reference" || len(r.Graphs) != len(s.Graphs) || r.Sampler != nil {
				t.Errorf("report %+v: want every graph against the reference and no sampler", r)
			}
		})
	}
	code, _, stderr := runCLI(t, "engines", "verify", "--engines", "../../engines/tiny-paint-2.0", "--steps", "2")
	if code != exitUsage || !strings.Contains(stderr, "no sampler comparison") {
		t.Errorf("--steps on a paint set: exit %d, stderr %q", code, stderr)
	}
}

func TestEnginesVerifyAgainstTensorRTWithoutItFailsClearly(t *testing.T) {
	if !noTensorRT() {
		t.Skip("TensorRT is usable here")
	}
	code, stdout, stderr := runCLI(t, "engines", "verify", "--engines", tinyDir, "--against", "trt")
	if code != exitError || stdout != "" || !strings.HasPrefix(stderr, "hy3d engines verify: TensorRT unavailable on this machine: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q; want one line saying TensorRT is unavailable", code, stdout, stderr)
	}
}

func TestEnginesCommandLineErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		mention string
	}{
		{"no subcommand", []string{"engines"}, exitUsage, "usage: hy3d engines"},
		{"unknown subcommand", []string{"engines", "build"}, exitUsage, `"build"`},
		{"unknown against", []string{"engines", "verify", "--against", "cuda"}, exitUsage, "cuda"},
		{"writing a reference takes no against", []string{"engines", "verify", "--write-reference", "--against", "trt"}, exitUsage, "--write-reference"},
		{"negative batch", []string{"engines", "verify", "--batch", "-1"}, exitUsage, "--batch"},
		{"resolution out of range", []string{"engines", "verify", "--resolution", "4"}, exitUsage, "--resolution"},
		{"unknown graph", []string{"engines", "verify", "--graphs", "dit,unet"}, exitUsage, "unet"},
		{"stray argument", []string{"engines", "info", "engines/tiny"}, exitUsage, "engines/tiny"},
		{"missing set", []string{"engines", "info", "--engines", "/nonexistent"}, exitError, "manifest"},
		{"embedded set has no reference folder", []string{"engines", "verify", "--write-reference"}, exitUsage, "--reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.mention) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, tc.code, tc.mention)
			}
		})
	}
}

func TestEnginesHelp(t *testing.T) {
	for _, args := range [][]string{{"engines", "-h"}, {"help", "engines"}} {
		if code, stdout, _ := runCLI(t, args...); code != exitOK || !strings.Contains(stdout, "verify") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
	code, stdout, _ := runCLI(t, "engines", "verify", "-h")
	if code != exitOK || !strings.Contains(stdout, "-against") || !strings.Contains(stdout, "-write-reference") {
		t.Errorf("verify -h: exit %d, stdout %q", code, stdout)
	}
}
