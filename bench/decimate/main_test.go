package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSphereField writes an n³ raw float32 field of a sphere (positive
// inside) centred at (c, c, cz) with radius r, in the layout field.Read reads.
func writeSphereField(t *testing.T, dir string, n int, c, cz, r float64) {
	t.Helper()
	raw := make([]byte, 0, 4*n*n*n)
	for x := range n {
		for y := range n {
			for z := range n {
				d := math.Sqrt(sq(float64(x)-c) + sq(float64(y)-c) + sq(float64(z)-cz))
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(r-d)))
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("field_v1_%d.raw", n)), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sq(x float64) float64 { return x * x }

// The benchmark reports, never crashes: zero-area triangles (marching cubes
// makes them where the field is exactly 0 at a grid point, as both spheres'
// fields are at a few points, and as an open surface's field is along the
// box) once turned the Hausdorff distance into NaN and the JSON encoder into
// an error after both decimators had run.
func TestDecimateReportsFiniteMetrics(t *testing.T) {
	const n = 48
	tests := []struct {
		name     string
		cz, r    float64
		boundary bool
	}{
		{name: "closed sphere", cz: 24, r: 18},
		{name: "sphere cut by the box", cz: 8, r: 22, boundary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSphereField(t, dir, n, 24, tt.cz, tt.r)
			var table bytes.Buffer
			err := run([]string{"-dir", dir, "-size", fmt.Sprint(n), "-faces", "1500", "-runs", "1",
				"-samples", "2000", "-meshlab=false"}, &table)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !strings.Contains(table.String(), "hy3d Simplify") {
				t.Fatalf("no table row for hy3d:\n%s", table.String())
			}
			f, err := os.Open(filepath.Join(dir, "results.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lines := bufio.NewScanner(f)
			rows := 0
			for lines.Scan() {
				var r row
				if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
					t.Fatalf("results.jsonl: %v", err)
				}
				rows++
				if (r.BoundaryEdges > 0) != tt.boundary {
					t.Errorf("boundary edges %d, want open=%v", r.BoundaryEdges, tt.boundary)
				}
				if r.HausdorffPct <= 0 || r.HausdorffPct > 5 || r.MeanDistPct <= 0 || r.MeanDistPct > r.HausdorffPct {
					t.Errorf("distances %g%% / %g%% of the diagonal, want 0 < mean ≤ max ≤ 5", r.MeanDistPct, r.HausdorffPct)
				}
			}
			if rows != 1 {
				t.Fatalf("%d rows in results.jsonl, want 1", rows)
			}
		})
	}
}

func TestPointTriangle(t *testing.T) {
	a, b, c := vec{0, 0, 0}, vec{2, 0, 0}, vec{0, 2, 0}
	tests := []struct {
		name    string
		p       vec
		a, b, c vec
		want    float64
	}{
		{"above the face", vec{0.5, 0.5, 3}, a, b, c, 3},
		{"nearest a vertex", vec{-1, -1, 0}, a, b, c, math.Sqrt2},
		{"nearest an edge", vec{1, -2, 0}, a, b, c, 2},
		{"beyond the hypotenuse", vec{2, 2, 0}, a, b, c, math.Sqrt2},
		{"two corners on one point", vec{1, 1, 0}, a, a, b, 1},
		{"all corners on one point", vec{3, 4, 0}, a, a, a, 5},
		{"collinear corners, nearest the middle", vec{1, 1, 0}, a, vec{1, 0, 0}, b, 1},
		{"collinear corners, beyond an end", vec{3, 0, 0}, a, vec{1, 0, 0}, b, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pointTriangle(tt.p, tt.a, tt.b, tt.c)
			if math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("pointTriangle = %v, want %v", got, tt.want)
			}
		})
	}
}
