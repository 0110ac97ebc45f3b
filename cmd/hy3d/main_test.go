package main

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/tensor"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), stdio{strings.NewReader(""), &out, &errb}, args)
	return code, out.String(), errb.String()
}

func needORT(t *testing.T) {
	t.Helper()
	rt, err := ort.NewRuntime(ort.Options{})
	if errors.Is(err, tensor.ErrUnavailable) {
		t.Skipf("ONNX Runtime not installed (make deps): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
}

func writePicture(t *testing.T, dir string) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 123, 97))
	for y := 20; y < 80; y++ {
		for x := 30; x < 95; x++ {
			if (x-62)*(x-62)+(y-50)*(y-50) < 30*30 {
				img.SetNRGBA(x, y, color.NRGBA{180, 40, 40, 255})
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "picture.png")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateWritesTheMeshAndPrintsTheTimingBreakdown(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	pic := writePicture(t, dir)
	tests := []struct {
		name, out string
		extra     []string
		magic     []byte
	}{
		{"glb by default", "model.glb", nil, []byte("glTF")},
		{"format from the extension", "model.obj", []string{"--decode", "dense"}, []byte("v ")},
		{"format flag wins", "model.bin", []string{"--format", "ply"}, []byte("ply\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, tt.out)
			args := append([]string{"generate", "-i", pic, "-o", out, "--steps", "2", "--resolution", "32", "--seed", "4"}, tt.extra...)
			code, stdout, stderr := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, stage := range []string{"preprocess", "condition", "sample", "decode", "surface", "clean", "export", "total"} {
				if !strings.Contains(stdout, "  "+stage+" ") {
					t.Errorf("breakdown lacks %s:\n%s", stage, stdout)
				}
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data[:min(len(data), 200)], tt.magic) {
				t.Errorf("%s does not look like its format: %q", tt.out, data[:min(len(data), 16)])
			}
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".model*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// The embedded default is guidance-distilled, where guidance 0 is a real
// input: leaving --guidance out means the set's scale, as on the server.
func TestGenerateGuidanceDefaultsToTheSetsScale(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	pic := writePicture(t, dir)
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"left out", nil, "guidance 5,"},
		{"zero given", []string{"--guidance", "0"}, "guidance 0,"},
		{"scale given", []string{"--guidance", "2.5"}, "guidance 2.5,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"generate", "-i", pic, "-o", filepath.Join(dir, "m.stl"), "--steps", "2", "--resolution", "32"}, tt.extra...)
			code, stdout, stderr := runCLI(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !strings.Contains(stdout, tt.want) {
				t.Errorf("breakdown lacks %q:\n%s", tt.want, stdout)
			}
		})
	}
}

func TestGenerateFailsWithOneClearLine(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.png")
	if err := os.WriteFile(junk, []byte("this is not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.glb")
	tests := []struct {
		name    string
		args    []string
		code    int
		mention string
		ort     bool
	}{
		{"no arguments", []string{"generate"}, exitUsage, "-i", false},
		{"unknown flag", []string{"generate", "--colour", "red"}, exitUsage, "colour", false},
		{"stray argument", []string{"generate", "-i", junk, "-o", out, "extra"}, exitUsage, "extra", false},
		{"unknown format", []string{"generate", "-i", junk, "-o", out, "--format", "fbx"}, exitUsage, "fbx", false},
		{"unknown decode mode", []string{"generate", "-i", junk, "-o", out, "--decode", "sparse"}, exitUsage, "sparse", false},
		{"resolution out of range", []string{"generate", "-i", junk, "-o", out, "--resolution", "5000"}, exitUsage, "resolution", false},
		{"missing picture", []string{"generate", "-i", filepath.Join(dir, "none.png"), "-o", out}, exitError, "none.png", false},
		{"not a picture", []string{"generate", "-i", junk, "-o", out, "--backend", "ort"}, exitError, "unsupported image format", true},
		{"unknown backend", []string{"generate", "-i", junk, "-o", out, "--backend", "cuda"}, exitError, "cuda", false},
		{"unknown command", []string{"generat"}, exitUsage, "generat", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ort {
				needORT(t)
			}
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "hy3d") || !strings.Contains(lines[0], tt.mention) {
				t.Errorf("stderr %q: want one line mentioning %q", stderr, tt.mention)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written by a failed run", out)
			}
		})
	}
}

func TestHelpListsTheCommands(t *testing.T) {
	code, stdout, _ := runCLI(t, "help")
	if code != exitOK || !strings.Contains(stdout, "generate") {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "generate", "-h")
	if code != exitOK || !strings.Contains(stdout, "-resolution") {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := runCLI(t); code != exitUsage || !strings.Contains(stderr, "generate") {
		t.Fatalf("no arguments: exit %d, stderr %q", code, stderr)
	}
}
