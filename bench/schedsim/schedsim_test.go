package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/jobs"
)

func TestCostModelArithmetic(t *testing.T) {
	m := costModel{Steps: 5, RowsPerJob: 2, Condition: linear{A: 2, B: 100}, DiT: linear{A: 4, B: 40},
		Decode: linear{A: 1, B: 99}, MeshMS: 200}
	// 102 + 5 × (4 + 2 × 40) + 100 + 200
	if got, want := m.alone(), 822*time.Millisecond; got != want {
		t.Errorf("alone %v, want %v", got, want)
	}
	// GPU per job at batches of 4: 2/4 + 100 + 5 × (4/4 + 80) + 1 + 99 = 605.5 ms; the CPU's 200 ms overlap.
	if got, want := m.capacity(4), 1000/605.5; got != want {
		t.Errorf("capacity %v, want %v", got, want)
	}
	m.MeshMS = 700 // now the CPU sets the pace
	if got, want := m.capacity(4), 1000/700.0; got != want {
		t.Errorf("CPU-bound capacity %v, want %v", got, want)
	}
}

func TestFCFSReference(t *testing.T) {
	// Alone 1 s; the GPU's 0.5 s per job at full batches sets the pace.
	m := costModel{Steps: 1, RowsPerJob: 1, Condition: linear{B: 100}, DiT: linear{B: 300}, Decode: linear{B: 100}, MeshMS: 500}
	tests := []struct {
		name     string
		arrivals []float64
		gpus     int
		want     float64
	}{
		{"far apart: every job as alone", []float64{0, 10, 20}, 1, 1000},
		{"together: the last waits for the others' GPU time", []float64{0, 0, 0, 0}, 1, 1000 + 3*500},
		{"one overlap", []float64{0, 0.2, 10}, 1, 1000 + 300},
		{"together on two GPUs: the last waits for one other", []float64{0, 0, 0, 0}, 2, 1000 + 500},
		// The third job waits 0.1 s for the first GPU, the fourth 0.15 s for the second.
		{"each job waits for the GPU free first", []float64{0, 0.1, 0.4, 0.45}, 2, 1000 + 150},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fcfsReferenceP99(m, 8, tc.arrivals, tc.gpus); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("p99 %v ms, want %v", got, tc.want)
			}
		})
	}
}

func TestSizingNeedsMoreGPUsForATighterTail(t *testing.T) {
	m := presets["hy3d-2mini-turbo-3090"]
	rows := sizing(m, 8, []float64{0.25, 0.8}, 50_000, 1)
	alone := float64(m.alone()) / float64(time.Millisecond)
	for _, r := range rows {
		if len(r.P99MS) != len(sizingGPUs) {
			t.Fatalf("%v: %d cells", r.Load, len(r.P99MS))
		}
		for i, p := range r.P99MS {
			if p < alone {
				t.Errorf("load %v, %d GPUs: p99 %.0f ms below a job alone", r.Load, sizingGPUs[i], p)
			}
			if i > 0 && p > r.P99MS[i-1] {
				t.Errorf("load %v: p99 %.0f ms on %d GPUs above %.0f on %d", r.Load, p, sizingGPUs[i], r.P99MS[i-1], sizingGPUs[i-1])
			}
		}
	}
	// The tail grows with the load on one GPU.
	if rows[1].P99MS[0] <= rows[0].P99MS[0] {
		t.Errorf("one GPU: p99 %.0f ms at 80 %% not above %.0f at 25 %%", rows[1].P99MS[0], rows[0].P99MS[0])
	}
	var out bytes.Buffer
	writeSizing(&out, m, 8, rows, 50_000)
	if !strings.Contains(out.String(), "| 80 % |") || strings.Count(out.String(), "\n|") != 4 {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestPoissonArrivalsKeepTheirRate(t *testing.T) {
	at := poissonArrivals(20_000, 4, 1)
	if !slices.IsSorted(at) {
		t.Fatal("arrival times go back")
	}
	if rate := float64(len(at)) / at[len(at)-1]; math.Abs(rate-4) > 0.15 {
		t.Errorf("rate %.3f per second, want 4", rate)
	}
}

func TestCostsFileReplacesThePreset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "costs.json")
	os.WriteFile(path, []byte(`{"name":"measured","steps":30,"rows_per_job":2,"dit":{"a_ms":3,"b_ms":20},"mesh_ms":50}`), 0o644)
	m, err := loadCosts(path)
	if err != nil || m.Name != "measured" || m.Steps != 30 || m.DiT.B != 20 || m.MeshMS != 50 {
		t.Fatalf("%+v %v", m, err)
	}
	os.WriteFile(path, []byte(`{"steps":0}`), 0o644)
	if _, err := loadCosts(path); err == nil {
		t.Error("a model without steps was accepted")
	}
}

func TestSimulationRunsEveryJobThroughTheEngine(t *testing.T) {
	m := costModel{Name: "quick", Steps: 3, RowsPerJob: 1, Condition: linear{B: 1}, DiT: linear{A: 1, B: 1},
		Decode: linear{B: 1}, MeshMS: 1}
	for _, pol := range []jobs.Policy{jobs.PolicyDispatch, jobs.PolicyContinuous, jobs.PolicyAdaptive} {
		o, err := simulate(context.Background(), simConfig{model: m, policy: pol, maxBatch: 4, workers: 2, scale: 1,
			jobs: 12, rate: 400, seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if o.Succeeded != 12 || o.Refused != 0 || o.P50MS <= 0 || o.P99MS < o.P50MS || o.PerSecond <= 0 ||
			o.MeanDiTBatch < 1 || o.MeanDiTBatch > 4 {
			t.Errorf("%s: %+v", pol, o)
		}
	}
}

func TestPlotIsSVGWithEveryPolicyAndTheReference(t *testing.T) {
	var rows []outcome
	for i, ps := range policies {
		rows = append(rows,
			outcome{Policy: ps.policy, Load: 0.5, PerSecond: 1 + float64(i)/10, P99MS: 900 - 100*float64(i), ReferenceP99MS: 650},
			outcome{Policy: ps.policy, Load: 1, PerSecond: 1.4 + float64(i)/5, P99MS: 3000 - 500*float64(i), ReferenceP99MS: 1200})
	}
	var b bytes.Buffer
	if err := writeSVG(&b, rows, 600, 2.4); err != nil {
		t.Fatal(err)
	}
	polylines := 0
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	// Two panels, a line per policy each, and the reference in the first.
	if want := 2*len(policies) + 1; polylines != want {
		t.Errorf("%d polylines, want %d", polylines, want)
	}
	for _, ps := range policies {
		if !strings.Contains(b.String(), ps.label) {
			t.Errorf("no legend for %s", ps.policy)
		}
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseConfig([]string{"-loads", "0.5, 1", "-jobs", "10"})
	if err != nil || len(cfg.loads) != 2 || cfg.loads[1] != 1 || cfg.jobs != 10 || cfg.workers != 2 {
		t.Errorf("%+v %v", cfg, err)
	}
	for _, bad := range [][]string{{"-loads", "0"}, {"-jobs", "0"}, {"-scale", "-1"}, {"extra"}} {
		if _, err := parseConfig(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestFitLinear(t *testing.T) {
	tests := []struct {
		name string
		ms   map[int]float64 // batch → median
		want linear
	}{
		{"exact line", map[int]float64{1: 5, 2: 7, 4: 11, 8: 19}, linear{A: 3, B: 2}},
		{"one bucket: all per row", map[int]float64{4: 8}, linear{B: 2}},
		{"no batch cost: fixed only", map[int]float64{1: 6, 8: 5}, linear{A: 5.5}},
		{"would-be negative fixed part: through the origin", map[int]float64{1: 1, 2: 4}, linear{B: 9.0 / 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bts []engines.BucketTiming
			for _, b := range []int{1, 2, 4, 8} {
				if ms, ok := tc.ms[b]; ok {
					bts = append(bts, engines.BucketTiming{Batch: b, MedianMS: ms, MeanMS: ms})
				}
			}
			got := fitLinear(bts)
			if math.Abs(got.A-tc.want.A) > 1e-9 || math.Abs(got.B-tc.want.B) > 1e-9 {
				t.Errorf("fit %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlanTimingsBecomeTheCostModel(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "engines", "tiny")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
	}
	// Record a dit plan under built/, as tools/build-engines --plan-dir built would.
	var manifest map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	manifest["graphs"].(map[string]any)["dit"].(map[string]any)["plan"] = map[string]any{"file": "built/dit.plan"}
	raw, _ = json.Marshal(manifest)
	os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644)
	if _, err := measuredModel(dir, 20_000, 100); err == nil {
		t.Fatal("a set without timings gave a cost model")
	}
	os.MkdirAll(filepath.Join(dir, "built"), 0o755)
	timings := &engines.Timings{ModelSet: "tiny", GPU: "NVIDIA Fake GPU", TensorRT: "10.3.1", Graphs: map[string][]engines.BucketTiming{
		"conditioner":  {{Batch: 1, MedianMS: 12}, {Batch: 2, MedianMS: 22}},
		"dit":          {{Batch: 2, MedianMS: 9}, {Batch: 4, MedianMS: 17}},
		"vae_latents":  {{Batch: 1, MedianMS: 4}},
		"vae_geometry": {{Batch: 1, MedianMS: 0.5}},
	}}
	if err := timings.Write(filepath.Join(dir, "built", engines.TimingsFile)); err != nil {
		t.Fatal(err)
	}
	m, err := measuredModel(dir, 20_000, 100)
	if err != nil {
		t.Fatal(err)
	}
	set, err := engines.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{"cfg": 2, "embedded": 1}[set.Manifest.Sampler.Guidance]
	chunks := math.Ceil(20_000 / float64(set.Manifest.Volume.ChunkPoints))
	want := costModel{Name: "tiny on NVIDIA Fake GPU (TensorRT 10.3.1)", Steps: set.Manifest.Sampler.Steps, RowsPerJob: rows,
		Condition: linear{A: 2, B: 10}, DiT: linear{A: 1, B: 4}, Decode: linear{B: 4 + chunks*0.5}, MeshMS: 100}
	if m.Name != want.Name || m.Steps != want.Steps || m.RowsPerJob != want.RowsPerJob || m.MeshMS != want.MeshMS ||
		math.Abs(m.Condition.A-2) > 1e-9 || math.Abs(m.Condition.B-10) > 1e-9 || math.Abs(m.DiT.A-1) > 1e-9 ||
		math.Abs(m.DiT.B-4) > 1e-9 || math.Abs(m.Decode.B-want.Decode.B) > 1e-9 {
		t.Errorf("cost model %+v, want %+v", m, want)
	}
}
