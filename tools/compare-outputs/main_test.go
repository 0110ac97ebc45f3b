package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/tensor"
	"github.com/hy3d/hy3d/verify"
)

// tinyCheck writes a check folder for the tiny set whose expected outputs
// are ONNX Runtime's own, so that it passes; edit perturbs the stored files
// and check.json before the test reads them.
func tinyCheck(t *testing.T) string {
	t.Helper()
	setDir, err := filepath.Abs(filepath.Join("..", "..", "engines", "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := engines.Open(setDir)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := ort.NewRuntime(ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	dir := t.TempDir()
	c := check{Format: checkFormat, Source: "ONNX Runtime itself", Set: setDir, Graphs: map[string]graphCheck{}}
	ctx := context.Background()
	for _, graph := range []string{engines.VAELatents, engines.DiT} {
		ins, err := verify.Inputs(&set.Manifest, graph, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := rt.Load(ctx, set, graph)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := sess.Run(ctx, ins)
		sess.Close()
		if err != nil {
			t.Fatal(err)
		}
		var g graphCheck
		for _, in := range ins {
			g.Inputs = append(g.Inputs, writeFloats(t, dir, graph+"."+in.Name, in.Shape, in.Data))
		}
		for _, o := range outs {
			g.Outputs = append(g.Outputs, writeFloats(t, dir, graph+"."+o.Name, o.Shape, o.Data))
		}
		c.Graphs[graph] = g
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "check.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFloats(t *testing.T, dir, name string, shape []int64, data []float32) storedTensor {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".f32"), tensor.EncodeRaw(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return storedTensor{Name: name[strings.IndexByte(name, '.')+1:], Shape: shape, File: name + ".f32"}
}

// nudge moves element i of a stored float32 file by delta·(1+|v|), a
// change both absolutely and relatively of about delta.
func nudge(t *testing.T, path string, i int, delta float32) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tensor.DecodeRaw(b)
	if err != nil {
		t.Fatal(err)
	}
	data[i] += delta * (1 + float32(math.Abs(float64(data[i]))))
	if err := os.WriteFile(path, tensor.EncodeRaw(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCompareOutputs(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		wantErr error  // nil: pass
		errText string // for other errors
		inTable []string
	}{
		{name: "identical outputs pass", inTable: []string{"dit", "velocity", "vae_latents", "features", "pass"}},
		{name: "a drift below the bounds passes", edit: func(t *testing.T, dir string) {
			nudge(t, filepath.Join(dir, "dit.velocity.f32"), 5, 5e-6)
		}},
		{name: "a drift of 2e-5 fails", wantErr: errFailed, inTable: []string{"FAIL", "1/"}, edit: func(t *testing.T, dir string) {
			nudge(t, filepath.Join(dir, "dit.velocity.f32"), 5, 2e-5)
		}},
		{name: "NaN fails", wantErr: errFailed, inTable: []string{"FAIL"}, edit: func(t *testing.T, dir string) {
			nudge(t, filepath.Join(dir, "vae_latents.features.f32"), 0, float32(math.NaN()))
		}},
		{name: "truncated file", errText: "bytes, want", edit: func(t *testing.T, dir string) {
			path := filepath.Join(dir, "dit.cond.f32")
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, b[:len(b)-4], 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "unknown format", errText: "format", edit: func(t *testing.T, dir string) {
			path := filepath.Join(dir, "check.json")
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, bytes.Replace(b, []byte(checkFormat), []byte("other/1"), 1), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tinyCheck(t)
			if tc.edit != nil {
				tc.edit(t, dir)
			}
			var out bytes.Buffer
			err := run(context.Background(), []string{dir}, &out)
			switch {
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("error %v, want one containing %q", err, tc.errText)
				}
			case !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil):
				t.Fatalf("error %v, want %v\n%s", err, tc.wantErr, out.String())
			}
			for _, want := range tc.inTable {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// A graph's own bounds in check.json replace the defaults, and --abs/--rel
// replace them again.
func TestCompareOutputsPerGraphBounds(t *testing.T) {
	dir := tinyCheck(t)
	path := filepath.Join(dir, "check.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c check
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	// Scale every dit output by 1 + 1.5e-5: beyond the default 1e-5 where
	// |x| > 2/3, within 2e-5 everywhere.
	out := c.Graphs[engines.DiT].Outputs[0]
	data, err := readFloats(filepath.Join(dir, out.File), out.Shape)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] *= 1 + 1.5e-5
	}
	if err := os.WriteFile(filepath.Join(dir, out.File), tensor.EncodeRaw(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{dir}, &bytes.Buffer{}); !errors.Is(err, errFailed) {
		t.Fatalf("default bounds: %v, want a failure", err)
	}
	g := c.Graphs[engines.DiT]
	g.Tolerance, g.Why = &verify.Tolerance{Abs: 2e-5, Rel: 2e-5}, "a deep graph"
	c.Graphs[engines.DiT] = g
	raw, _ = json.Marshal(c)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{dir}, &stdout); err != nil {
		t.Fatalf("the graph's own bounds: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "dit: bounds 2e-05 absolute, 2e-05 relative (check.json: a deep graph)") {
		t.Errorf("no note of the graph's bounds:\n%s", stdout.String())
	}
	if err := run(context.Background(), []string{"--abs", "1e-5", dir}, &bytes.Buffer{}); !errors.Is(err, errFailed) {
		t.Errorf("--abs given: %v, want the flag's bounds to fail", err)
	}
}

func TestCompareOutputsJSON(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--json", tinyCheck(t)}, &out); err != nil {
		t.Fatal(err)
	}
	var report struct {
		Pass    bool                `json:"pass"`
		Outputs []verify.Comparison `json:"outputs"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatal(err)
	}
	if !report.Pass || len(report.Outputs) != 2 || report.Outputs[0].Output != "velocity" || report.Outputs[0].Tolerance.Abs != 1e-5 {
		t.Errorf("%s", out.String())
	}
}
