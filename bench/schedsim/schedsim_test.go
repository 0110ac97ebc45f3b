package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
		want     float64
	}{
		{"far apart: every job as alone", []float64{0, 10, 20}, 1000},
		{"together: the last waits for the others' GPU time", []float64{0, 0, 0, 0}, 1000 + 3*500},
		{"one overlap", []float64{0, 0.2, 10}, 1000 + 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fcfsReferenceP99(m, 8, tc.arrivals); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("p99 %v ms, want %v", got, tc.want)
			}
		})
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
	for _, pol := range []jobs.Policy{jobs.PolicyDispatch, jobs.PolicyContinuous} {
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

func TestPlotIsSVGWithBothPolicies(t *testing.T) {
	rows := []outcome{
		{Policy: jobs.PolicyDispatch, Load: 0.5, PerSecond: 1, P99MS: 900},
		{Policy: jobs.PolicyContinuous, Load: 0.5, PerSecond: 1.2, P99MS: 700},
		{Policy: jobs.PolicyDispatch, Load: 1, PerSecond: 1.4, P99MS: 3000},
		{Policy: jobs.PolicyContinuous, Load: 1, PerSecond: 2, P99MS: 1500},
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
	// Two panels, two policies each.
	if polylines != 4 || !strings.Contains(b.String(), "continuous batching + pipelining") {
		t.Errorf("%d polylines", polylines)
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
