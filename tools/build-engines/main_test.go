package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
)

var tinyDir = filepath.Join("..", "..", "engines", "tiny")

func absTiny(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "engines", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDryRunPrintsTheTrtexecCommandsForTiny(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no trtexec, no nvidia-smi: a dry run needs neither
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--dry-run", tinyDir}, &out, &out); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	d := absTiny(t, "tiny")
	tail := " --timingCacheFile=" + d + "/plans/timing.cache --device=0 --skipInference"
	want := []string{
		"trtexec --onnx=" + d + "/conditioner.onnx --saveEngine=" + d + "/plans/conditioner.plan --fp16" +
			" --minShapes=image:1x3x518x518 --optShapes=image:1x3x518x518 --maxShapes=image:8x3x518x518" + tail,
		"trtexec --onnx=" + d + "/dit.onnx --saveEngine=" + d + "/plans/dit.plan --fp16" +
			" --minShapes=latents:1x64x64,timestep:1,cond:1x1370x64" +
			" --optShapes=latents:16x64x64,timestep:16,cond:16x1370x64" +
			" --maxShapes=latents:16x64x64,timestep:16,cond:16x1370x64" + tail,
		"trtexec --onnx=" + d + "/vae_latents.onnx --saveEngine=" + d + "/plans/vae_latents.plan --fp16" +
			" --minShapes=latents:1x64x64 --optShapes=latents:1x64x64 --maxShapes=latents:8x64x64" + tail,
		"trtexec --onnx=" + d + "/vae_geometry.onnx --saveEngine=" + d + "/plans/vae_geometry.plan --fp16" +
			" --minShapes=queries:1x1x3,features:1x64x32" +
			" --optShapes=queries:1x8000x3,features:1x64x32" +
			" --maxShapes=queries:8x8000x3,features:8x64x32" + tail,
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("dry run printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(d, "plans")); !os.IsNotExist(err) {
		t.Errorf("a dry run created %s/plans", d)
	}
}

func TestDryRunHonoursGraphsBucketsDeviceAndCache(t *testing.T) {
	var out bytes.Buffer
	args := []string{"--dry-run", "--graphs", "vae_geometry", "--device", "1", "--timing-cache", "/tmp/with space/t.cache", tinyDir}
	if err := run(context.Background(), args, &out, &out); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out.String())
	if strings.Count(line, "\n") != 0 || !strings.Contains(line, "vae_geometry.onnx") {
		t.Fatalf("want one vae_geometry command, got\n%s", line)
	}
	for _, s := range []string{"--device=1", `'--timingCacheFile=/tmp/with space/t.cache'`} {
		if !strings.Contains(line, s) {
			t.Errorf("command %q lacks %q", line, s)
		}
	}
	err := run(context.Background(), []string{"--dry-run", "--graphs", "dit", "--buckets", "conditioner=1,2", tinyDir}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "not being built") {
		t.Errorf("buckets for a graph not built: %v", err)
	}
}

func TestProfilesPerGraph(t *testing.T) {
	tiny, err := engines.Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	turbo, err := engines.Open(filepath.Join("..", "..", "engines", "tiny-turbo"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		set         *engines.Set
		graph       string
		custom      []int
		input       string
		min, opt, m []int64
		buckets     []int
	}{
		{"conditioner runs one image at a time", tiny, "conditioner", nil, "image",
			[]int64{1, 3, 518, 518}, []int64{1, 3, 518, 518}, []int64{8, 3, 518, 518}, []int{1, 2, 4, 8}},
		{"dit under CFG: 2B rows, even buckets", tiny, "dit", nil, "cond",
			[]int64{1, 1370, 64}, []int64{16, 1370, 64}, []int64{16, 1370, 64}, []int{2, 4, 8, 16}},
		{"dit with embedded guidance: every bucket", turbo, "dit", nil, "guidance",
			[]int64{1}, []int64{16}, []int64{16}, []int{1, 2, 4, 8, 16}},
		{"vae_latents", tiny, "vae_latents", nil, "latents",
			[]int64{1, 64, 64}, []int64{1, 64, 64}, []int64{8, 64, 64}, []int{1, 2, 4, 8}},
		{"vae_geometry: Q up to the chunk", tiny, "vae_geometry", nil, "queries",
			[]int64{1, 1, 3}, []int64{1, 8000, 3}, []int64{8, 8000, 3}, []int{1, 2, 4, 8}},
		{"custom buckets", tiny, "vae_geometry", []int{1, 8}, "features",
			[]int64{1, 64, 32}, []int64{1, 64, 32}, []int64{8, 64, 32}, []int{1, 8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := profileFor(&tc.set.Manifest, tc.graph, tc.custom)
			if err != nil {
				t.Fatal(err)
			}
			rec := p.record()[tc.input]
			if !slices.Equal(rec.Min, tc.min) || !slices.Equal(rec.Opt, tc.opt) || !slices.Equal(rec.Max, tc.m) {
				t.Errorf("%s profile = %v / %v / %v, want %v / %v / %v", tc.input, rec.Min, rec.Opt, rec.Max, tc.min, tc.opt, tc.m)
			}
			if !slices.Equal(p.buckets, tc.buckets) {
				t.Errorf("buckets = %v, want %v", p.buckets, tc.buckets)
			}
		})
	}
}

func TestProfileRefusals(t *testing.T) {
	m := engines.Manifest{
		Name:    "bad",
		Sampler: engines.SamplerSpec{Guidance: "cfg"},
		Volume:  engines.VolumeSpec{ChunkPoints: 0},
		Graphs: map[string]engines.Graph{
			"conditioner":  {MaxBatch: 4, Inputs: []engines.TensorSpec{{Name: "image", Shape: []int64{-1, 3, -1, -1}}}},
			"vae_geometry": {MaxBatch: 4, Inputs: []engines.TensorSpec{{Name: "queries", Shape: []int64{-1, -1, 3}}}},
			"vae_latents":  {MaxBatch: 4, Inputs: []engines.TensorSpec{{Name: "latents", Shape: []int64{4, 64, 64}}}},
			"dit":          {MaxBatch: 4, Inputs: []engines.TensorSpec{{Name: "latents", Shape: []int64{-1, 8}}}},
		},
	}
	cases := []struct {
		graph  string
		custom []int
		want   string
	}{
		{"conditioner", nil, "dim 2 is open"},
		{"vae_geometry", nil, "chunk_points 0"},
		{"vae_latents", nil, "dynamic batch"},
		{"dit", []int{2, 2}, "ascend strictly"},
		{"dit", []int{8}, "within 1..4"},
		{"matting", nil, "no graph"},
	}
	for _, tc := range cases {
		_, err := profileFor(&m, tc.graph, tc.custom)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("profileFor(%s, %v) = %v, want an error about %q", tc.graph, tc.custom, err, tc.want)
		}
	}
}

// copySet copies a model set into a temporary directory.
func copySet(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeTrtexec appends its arguments to calls.log, prints what trtexec 10.3
// prints (its device lines for CUDA device 0 or 1, as --device picks), and
// writes to --saveEngine a plan header stamped 10.3.1 (the library, newer
// than the trtexec) followed by "plan:<onnx file>". Asked to time a plan
// (--loadEngine), it reports a median of 1 + 2 × batch ms, the batch read
// from the first input of --shapes.
const fakeTrtexec = `
onnx=""; plan=""; device=0; load=""; batch=""
for a in "$@"; do
  case "$a" in
    --onnx=*) onnx="${a#--onnx=}" ;;
    --saveEngine=*) plan="${a#--saveEngine=}" ;;
    --device=*) device="${a#--device=}" ;;
    --loadEngine=*) load="${a#--loadEngine=}" ;;
    --shapes=*) s="${a#--shapes=}"; s="${s#*:}"; batch="${s%%[x,]*}" ;;
  esac
done
echo "$@" >> "$(dirname "$0")/calls.log"
if [ -n "$load" ]; then
  ms=$((1 + 2 * batch))
  echo "[12/07/2026-10:00:00] [I] GPU Compute Time: min = 0.5 ms, max = 99 ms, mean = $ms.25 ms, median = $ms ms, percentile(90%) = $ms ms, percentile(95%) = $ms ms, percentile(99%) = $ms ms"
  exit 0
fi
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v100300] [b26] # trtexec $*"
echo "[12/07/2026-10:00:00] [I] TensorRT version: 10.3.0"
echo "[12/07/2026-10:00:00] [I] === Device Information ==="
if [ "$device" = 1 ]; then
  echo "[12/07/2026-10:00:00] [I] Selected Device: NVIDIA Fake GPU 7000"
  echo "[12/07/2026-10:00:00] [I] Selected Device ID: 1"
  echo "[12/07/2026-10:00:00] [I] Selected Device UUID: GPU-11111111-2222-3333-4444-555555555555"
  echo "[12/07/2026-10:00:00] [I] Compute Capability: 7.5"
else
  echo "[12/07/2026-10:00:00] [I] Selected Device: NVIDIA Fake GPU 9000"
  echo "[12/07/2026-10:00:00] [I] Selected Device ID: 0"
  echo "[12/07/2026-10:00:00] [I] Selected Device UUID: GPU-99999999-2222-3333-4444-555555555555"
  echo "[12/07/2026-10:00:00] [I] Compute Capability: 8.9"
fi
echo "[12/07/2026-10:00:00] [I] SMs: 128"
printf 'ftrt\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\012\003\001\000plan:%s' "$(basename "$onnx")" > "$plan"
echo "&&&& PASSED TensorRT.trtexec [TensorRT v100300] [b26]"
`

// fakePlanHeader is the header fakeTrtexec writes.
var fakePlanHeader = append([]byte("ftrt"), append(make([]byte, 20), 10, 3, 1, 0)...)

// fakeNvidiaSMI lists two GPUs in PCI order, the reverse of CUDA's here.
const fakeNvidiaSMI = `echo "GPU 0: NVIDIA Fake GPU 7000 (UUID: GPU-11111111-2222-3333-4444-555555555555)"
echo "GPU 1: NVIDIA Fake GPU 9000 (UUID: GPU-99999999-2222-3333-4444-555555555555)"
`

func TestBuildRecordsEveryPlanInTheManifest(t *testing.T) {
	bin := t.TempDir()
	writeScript(t, bin, "trtexec", fakeTrtexec)
	writeScript(t, bin, "nvidia-smi", fakeNvidiaSMI)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := copySet(t, tinyDir)
	before, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"--buckets", "dit=2,8", dir}, &out, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}

	set, err := engines.Open(dir)
	if err != nil {
		t.Fatalf("the updated manifest does not load: %v", err)
	}
	for _, name := range engines.RequiredGraphs {
		p := set.Graphs[name].Plan
		if p == nil {
			t.Fatalf("%s: no plan recorded", name)
		}
		content := append(slices.Clone(fakePlanHeader), "plan:"+name+".onnx"...)
		sum := sha256.Sum256(content)
		if got, _ := os.ReadFile(filepath.Join(dir, p.File)); !bytes.Equal(got, content) {
			t.Errorf("%s: plan file %s holds %q", name, p.File, got)
		}
		if p.File != "plans/"+name+".plan" || p.TensorRT != "10.3.1" || p.ComputeCapability != "8.9" ||
			p.GPU != "NVIDIA Fake GPU 9000" || p.Precision != "fp16" || p.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: plan record %+v", name, *p)
		}
		want, _ := profileFor(&set.Manifest, name, map[string][]int{"dit": {2, 8}}[name])
		if !reflect.DeepEqual(p.Profiles, want.record()) || !slices.Equal(p.BatchBuckets, want.buckets) {
			t.Errorf("%s: recorded profiles %v buckets %v, want %v %v", name, p.Profiles, p.BatchBuckets, want.record(), want.buckets)
		}
		if _, err := os.Stat(filepath.Join(dir, "plans", name+".trtexec.log")); err != nil {
			t.Errorf("%s: no trtexec log: %v", name, err)
		}
	}
	if got := set.Graphs[engines.DiT].Plan.BatchBuckets; !slices.Equal(got, []int{2, 8}) {
		t.Errorf("dit buckets %v, want the --buckets override", got)
	}

	// Everything but the plan records is as it was, in the same order.
	after, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if stripPlans(t, after) != stripPlans(t, before) {
		t.Errorf("the build changed more than the plan records")
	}
	calls, _ := os.ReadFile(filepath.Join(bin, "calls.log"))
	if n := strings.Count(string(calls), "--fp16"); n != 4 {
		t.Errorf("trtexec ran %d times with --fp16, want 4:\n%s", n, calls)
	}
	if !strings.Contains(string(calls), "--timingCacheFile="+filepath.Join(dir, "plans", "timing.cache")) {
		t.Errorf("trtexec did not get the shared timing cache:\n%s", calls)
	}
}

func TestTimeWritesEveryBucketOfEveryPlan(t *testing.T) {
	bin := t.TempDir()
	writeScript(t, bin, "trtexec", fakeTrtexec)
	writeScript(t, bin, "nvidia-smi", fakeNvidiaSMI)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := copySet(t, tinyDir)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--time", "--buckets", "dit=2,8", dir}, &out, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	timings, err := engines.ReadTimings(filepath.Join(dir, "plans", engines.TimingsFile))
	if err != nil {
		t.Fatal(err)
	}
	set, err := engines.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if timings.ModelSet != set.Name || timings.GPU != "NVIDIA Fake GPU 9000" || timings.TensorRT != "10.3.1" {
		t.Errorf("timings of %q on %q, TensorRT %q", timings.ModelSet, timings.GPU, timings.TensorRT)
	}
	for _, name := range engines.RequiredGraphs {
		var batches []int
		for _, bt := range timings.Graphs[name] {
			batches = append(batches, bt.Batch)
			if want := float64(1 + 2*bt.Batch); bt.MedianMS != want || bt.MeanMS != want+0.25 {
				t.Errorf("%s batch %d: median %v mean %v, want %v and %v", name, bt.Batch, bt.MedianMS, bt.MeanMS, want, want+0.25)
			}
		}
		if want := set.Graphs[name].Plan.BatchBuckets; !slices.Equal(batches, want) {
			t.Errorf("%s timed at batches %v, want its buckets %v", name, batches, want)
		}
	}
	calls, _ := os.ReadFile(filepath.Join(bin, "calls.log"))
	if !strings.Contains(string(calls), "--useCudaGraph") || !strings.Contains(string(calls), "--loadEngine="+filepath.Join(dir, "plans", "dit.plan")) {
		t.Errorf("no CUDA-graph timing run of the dit plan:\n%s", calls)
	}
}

func TestComputeTimeReadsTrtexecSummary(t *testing.T) {
	tests := []struct {
		name         string
		line         string
		mean, median float64
		ok           bool
	}{
		{"TensorRT 10", "[12/07/2026-10:00:00] [I] GPU Compute Time: min = 40.9 ms, max = 44.1 ms, mean = 42.3281 ms, median = 42.25 ms, percentile(90%) = 42.9 ms", 42.3281, 42.25, true},
		{"exponent", "GPU Compute Time: min = 1e-2 ms, max = 2e-2 ms, mean = 1.5e-2 ms, median = 1.4e-2 ms", 0.015, 0.014, true},
		{"no summary", "[I] Throughput: 23.6 qps", 0, 0, false},
		{"zero", "GPU Compute Time: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mean, median, err := computeTime([]byte(tc.line))
			if (err == nil) != tc.ok || (tc.ok && (mean != tc.mean || median != tc.median)) {
				t.Errorf("got %v %v %v", mean, median, err)
			}
		})
	}
}

// stripPlans re-indents a manifest without its graphs' plan records.
func stripPlans(t *testing.T, raw []byte) string {
	t.Helper()
	top, err := parseObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	graphs, err := top.child("graphs")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range graphs.keys {
		g, err := graphs.child(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := g.vals["plan"]; ok {
			delete(g.vals, "plan")
			g.keys = slices.DeleteFunc(g.keys, func(k string) bool { return k == "plan" })
		}
		graphs.set(name, g.marshal())
	}
	top.set("graphs", graphs.marshal())
	out, err := indent(top.marshal())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestManifestRoundTripIsByteIdentical(t *testing.T) {
	for _, set := range []string{"tiny", "tiny-turbo"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "engines", set, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := stripPlans(t, raw); got != string(raw) {
			t.Errorf("%s: parse and re-indent changed the manifest", set)
		}
	}
}

func TestSetPlanReplacesAnEarlierRecord(t *testing.T) {
	raw := []byte(`{"name": "x", "graphs": {"dit": {"onnx": "dit.onnx", "plan": {"file": "old.plan"}, "max_batch": 2}}, "z": 1.50}`)
	out, err := setPlan(raw, "dit", engines.Plan{File: "plans/dit.plan", GPU: "A<B>&C"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "old.plan") || !strings.Contains(s, `"A<B>&C"`) || !strings.Contains(s, `"z": 1.50`) {
		t.Errorf("setPlan produced\n%s", s)
	}
	if strings.Index(s, `"onnx"`) > strings.Index(s, `"plan"`) || strings.Index(s, `"plan"`) > strings.Index(s, `"max_batch"`) {
		t.Errorf("setPlan moved keys:\n%s", s)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`[]`, `{"graphs": []}`, `{"graphs": {}}`, `{"graphs": {"dit": {}}} x`} {
		if _, err := setPlan([]byte(bad), "dit", engines.Plan{}); err == nil {
			t.Errorf("setPlan(%s) succeeded", bad)
		}
	}
}

func TestMissingToolsAreNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("TENSORRT_ROOT", "")
	var out bytes.Buffer
	err := run(context.Background(), []string{copySet(t, tinyDir)}, &out, &out)
	if err == nil {
		t.Fatal("build without trtexec and nvidia-smi succeeded")
	}
	for _, s := range []string{"trtexec not found", "install TensorRT 10", "nvidia-smi not found", "NVIDIA GPU"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}

	// trtexec present, no GPU.
	bin := t.TempDir()
	writeScript(t, bin, "trtexec", fakeTrtexec)
	t.Setenv("PATH", bin)
	err = run(context.Background(), []string{copySet(t, tinyDir)}, &out, &out)
	if err == nil || strings.Contains(err.Error(), "trtexec not found") || !strings.Contains(err.Error(), "nvidia-smi not found") {
		t.Errorf("with trtexec only: %v", err)
	}
}

func TestTrtexecFoundUnderTensorRTRoot(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, filepath.Join(root, "bin"), "trtexec", fakeTrtexec)
	bin := t.TempDir()
	writeScript(t, bin, "nvidia-smi", fakeNvidiaSMI)
	got, err := findTools("trtexec", filepath.Join(bin, "nvidia-smi"), trtexecDirs(root))
	if err != nil {
		t.Fatal(err)
	}
	if got.trtexec != filepath.Join(root, "bin", "trtexec") {
		t.Errorf("trtexec = %q", got.trtexec)
	}
}

// NVIDIA's Debian/Ubuntu packages install trtexec off PATH, in
// /usr/src/tensorrt/bin; a stand-in folder plays it here.
func TestTrtexecFoundWherePackagesInstallIt(t *testing.T) {
	if dirs := trtexecDirs(""); !slices.Equal(dirs, []string{"/usr/src/tensorrt/bin"}) {
		t.Errorf("trtexecDirs(\"\") = %v, want the packages' folder", dirs)
	}
	if dirs := trtexecDirs("/opt/trt"); !slices.Equal(dirs, []string{"/opt/trt/bin", "/usr/src/tensorrt/bin"}) {
		t.Errorf("trtexecDirs(/opt/trt) = %v, want $TENSORRT_ROOT/bin first", dirs)
	}

	t.Setenv("PATH", t.TempDir())
	packaged := filepath.Join(t.TempDir(), "usr", "src", "tensorrt", "bin")
	if err := os.MkdirAll(packaged, 0o755); err != nil {
		t.Fatal(err)
	}
	nvidiaSMI := filepath.Join(t.TempDir(), "nvidia-smi")
	writeScript(t, filepath.Dir(nvidiaSMI), "nvidia-smi", fakeNvidiaSMI)
	_, err := findTools("trtexec", nvidiaSMI, []string{"/nonexistent/bin", packaged})
	if err == nil || !strings.Contains(err.Error(), packaged) {
		t.Errorf("findTools without trtexec = %v, want an error naming %s", err, packaged)
	}
	writeScript(t, packaged, "trtexec", fakeTrtexec)
	got, err := findTools("trtexec", nvidiaSMI, []string{"/nonexistent/bin", packaged})
	if err != nil {
		t.Fatal(err)
	}
	if got.trtexec != filepath.Join(packaged, "trtexec") {
		t.Errorf("trtexec = %q, want the packaged one", got.trtexec)
	}
	if !slices.Equal(got.trtexecEnv, os.Environ()) {
		t.Errorf("a packaged trtexec (no lib/ beside it) got a changed environment")
	}
}

// A tarball's trtexec runs with the tarball's lib/ first on
// LD_LIBRARY_PATH: libnvinfer opens its builder resource library by name.
func TestTarballTrtexecRunsWithItsLibDir(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"bin", "lib"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "lib", "libnvinfer.so.10"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeScript(t, filepath.Join(root, "bin"), "trtexec", `echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >> "$(dirname "$0")/calls.log"
`+fakeTrtexec)
	smi := t.TempDir()
	writeScript(t, smi, "nvidia-smi", fakeNvidiaSMI)
	t.Setenv("PATH", filepath.Join(root, "bin")+string(os.PathListSeparator)+smi+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("LD_LIBRARY_PATH", "/elsewhere")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"--graphs", "dit", copySet(t, tinyDir)}, &out, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	calls, _ := os.ReadFile(filepath.Join(root, "bin", "calls.log"))
	want := "LD_LIBRARY_PATH=" + filepath.Join(root, "lib") + ":/elsewhere\n"
	if !strings.HasPrefix(string(calls), want) {
		t.Errorf("trtexec ran with\n%s\nwant %q", calls, want)
	}
}

func TestTrtexecFailureShowsItsOutputAndRecordsNothing(t *testing.T) {
	bin := t.TempDir()
	writeScript(t, bin, "trtexec", "echo '[E] ModelImporter: unsupported operator FooBar'\nexit 3\n")
	writeScript(t, bin, "nvidia-smi", fakeNvidiaSMI)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := copySet(t, tinyDir)
	before, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	var out bytes.Buffer
	err := run(context.Background(), []string{dir}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "unsupported operator FooBar") ||
		!strings.Contains(err.Error(), "conditioner") {
		t.Fatalf("build = %v, want trtexec's failure with its output", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if !bytes.Equal(before, after) {
		t.Error("a failed build changed the manifest")
	}
}

func TestTrtexecVersionFromItsOutput(t *testing.T) {
	cases := []struct {
		out, want string
	}{
		{"[11/22/2025-08:00:00] [I] TensorRT version: 10.3.0\n", "10.3.0"},
		{"&&&& RUNNING TensorRT.trtexec [TensorRT v100300] [b26] # trtexec --onnx=x\n", "10.3.0"},
		{"&&&& PASSED TensorRT.trtexec [TensorRT v101302] [b8]\n", "10.13.2"},
		{"[I] TensorRT version: 10.16.0\n&&&& PASSED TensorRT.trtexec [TensorRT v101600]\n", "10.16.0"},
	}
	for _, tc := range cases {
		got, err := trtexecVersion([]byte(tc.out))
		if err != nil || got != tc.want {
			t.Errorf("trtexecVersion(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
	if _, err := trtexecVersion([]byte("nothing useful")); err == nil {
		t.Error("no version found, but no error")
	}
}

func TestBuiltOnReadsTrtexecsDeviceLines(t *testing.T) {
	out := []byte(`[I] === Device Information ===
[I] Available Devices:
[I]   Device 0: "NVIDIA H100 80GB HBM3" UUID: GPU-aaaa
[I]   Device 1: "NVIDIA GeForce RTX 4090" UUID: GPU-bbbb
[I] Selected Device: NVIDIA GeForce RTX 4090
[I] Selected Device ID: 1
[I] Selected Device UUID: GPU-bbbb
[I] Compute Capability: 8.9
[I] SMs: 128
`)
	g, err := builtOn(out)
	if err != nil || g != (gpu{name: "NVIDIA GeForce RTX 4090", uuid: "GPU-bbbb", computeCapability: "8.9"}) {
		t.Errorf("builtOn = %+v, %v", g, err)
	}
	for _, bad := range []string{"", "[I] Selected Device: X\n", "[I] Compute Capability: 8.9\n", "Cannot find device ID 3!\n"} {
		if g, err := builtOn([]byte(bad)); err == nil {
			t.Errorf("builtOn(%q) = %+v, want an error", bad, g)
		}
	}
}

func TestPlanVersionReadsTheHeader(t *testing.T) {
	header := func(tag string, serialization byte, v ...byte) []byte {
		b := append([]byte(tag), serialization, 0, 0, 0)
		return append(append(b, make([]byte, 16)...), v...)
	}
	cases := []struct {
		plan []byte
		want string // "" for an error
	}{
		{header("ftrt", 0, 10, 8, 0, 43), "10.8.0"},
		{append(header("ftrt", 0, 10, 16, 1, 0), "rest of the plan"...), "10.16.1"},
		{header("ftrt", 0, 10, 8, 0), ""}, // 27 bytes
		{header("ftrt", 1, 10, 8, 0, 43), ""},
		{header("onnx", 0, 10, 8, 0, 43), ""},
		{nil, ""},
	}
	for _, tc := range cases {
		got, err := planVersion(tc.plan)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("planVersion(% x) = %q, %v; want %q", tc.plan, got, err, tc.want)
		}
	}
}

// --device counts as CUDA does (here under CUDA_VISIBLE_DEVICES=1,0 the
// reverse of nvidia-smi's PCI order): the record names the card trtexec
// built on, not nvidia-smi's device of the same index.
func TestDeviceRecordFollowsCUDANumbering(t *testing.T) {
	bin := t.TempDir()
	writeScript(t, bin, "trtexec", fakeTrtexec)
	writeScript(t, bin, "nvidia-smi", fakeNvidiaSMI)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("CUDA_VISIBLE_DEVICES", "1,0")
	dir := copySet(t, tinyDir)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--graphs", "dit", "--device", "1", dir}, &out, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	set, err := engines.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := set.Graphs[engines.DiT].Plan
	if p == nil || p.GPU != "NVIDIA Fake GPU 7000" || p.ComputeCapability != "7.5" {
		t.Errorf("plan record %+v, want trtexec's device 1 (NVIDIA Fake GPU 7000, compute 7.5)", p)
	}
	if !strings.Contains(out.String(), "trtexec was compiled with TensorRT 10.3.0, its library wrote the plan as 10.3.1") {
		t.Errorf("the version mismatch is not reported:\n%s", out.String())
	}
}

func TestNoGPUListedStopsTheBuild(t *testing.T) {
	bin := t.TempDir()
	writeScript(t, bin, "trtexec", fakeTrtexec)
	writeScript(t, bin, "nvidia-smi", "echo 'No devices were found'\nexit 6\n")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	err := run(context.Background(), []string{copySet(t, tinyDir)}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "No devices were found") {
		t.Errorf("build without a GPU = %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(bin, "calls.log")); statErr == nil {
		t.Error("trtexec ran without a GPU")
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"trtexec", "--onnx=/a b/c.onnx", "it's", "", "--fp16"})
	want := `trtexec '--onnx=/a b/c.onnx' 'it'\''s' '' --fp16`
	if got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}

func TestFlagErrors(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{},
		{"a", "b"},
		{"--plan-dir", "../elsewhere", tinyDir},
		{"--plan-dir", "/abs", tinyDir},
		{"--buckets", "dit", tinyDir},
		{"--buckets", "dit=1,x", tinyDir},
		{"--dry-run", "--graphs", "nope", tinyDir},
	} {
		if err := run(context.Background(), args, &out, &out); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func FuzzSetPlan(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join(tinyDir, "manifest.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw, "dit")
	f.Add([]byte(`{"graphs": {"dit": {}}}`), "dit")
	f.Add([]byte(`{"graphs": {"dit": {"plan": 1}}, "graphs": 2}`), "dit")
	f.Add([]byte(`{"a": [1, {"b": "\u00e9"}], "graphs": {"x": {"onnx": "x.onnx"}}}`), "x")
	f.Fuzz(func(t *testing.T, manifest []byte, graph string) {
		out, err := setPlan(manifest, graph, engines.Plan{File: "plans/" + graph + ".plan", BatchBuckets: []int{1, 2}})
		if err != nil {
			return
		}
		var m struct {
			Graphs map[string]struct {
				Plan *engines.Plan `json:"plan"`
			} `json:"graphs"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("setPlan produced invalid JSON: %v\n%s", err, out)
		}
		if p := m.Graphs[graph].Plan; p == nil || p.File != "plans/"+graph+".plan" {
			t.Fatalf("setPlan lost the plan of %q:\n%s", graph, out)
		}
	})
}

// Paint sets: paint_unet is optimized for its maximum (step-level batching
// fills it) with buckets of whole jobs (3 rows under 2.1's 3-way guidance),
// and the attention graphs' builds print the engine's layers, where an
// operator checks that the multi-view attention was fused.
func TestPaintProfilesAndLayerInfo(t *testing.T) {
	set, err := engines.Open(filepath.Join("..", "..", "engines", "tiny-paint-2.1"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := profileFor(&set.Manifest, engines.PaintUNet, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := p.record()["sample"]
	if !slices.Equal(rec.Opt, []int64{6, 2, 6, 4, 8, 8}) || !slices.Equal(rec.Min, []int64{1, 2, 6, 4, 8, 8}) {
		t.Errorf("sample profile %v / %v / %v", rec.Min, rec.Opt, rec.Max)
	}
	if !slices.Equal(p.buckets, []int{3, 6}) || !p.layerInfo {
		t.Errorf("buckets %v layer info %v, want [3 6] true", p.buckets, p.layerInfo)
	}
	vae, err := profileFor(&set.Manifest, engines.VAEEncoder, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vae.layerInfo || vae.record()["image"].Opt[0] != 1 {
		t.Errorf("vae_encoder: layer info %v, opt %v", vae.layerInfo, vae.record()["image"].Opt)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--dry-run", "--graphs", "paint_unet,vae_decoder", set.Dir}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "--profilingVerbosity=detailed --dumpLayerInfo") ||
		strings.Contains(lines[1], "--dumpLayerInfo") {
		t.Errorf("dry run printed\n%s", out.String())
	}
}
