package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/mesh/meshtest"
)

// requireTexturedGLB checks a GLB with the Khronos validator and that its
// material has a base colour texture.
func requireTexturedGLB(t *testing.T, path string) {
	t.Helper()
	glb, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	meshtest.RequireValidGLB(t, glb)
	n := binary.LittleEndian.Uint32(glb[12:16])
	var doc struct {
		Materials []struct {
			PBR struct {
				BaseColorTexture *struct{} `json:"baseColorTexture"`
			} `json:"pbrMetallicRoughness"`
		} `json:"materials"`
		Images []any `json:"images"`
	}
	if err := json.Unmarshal(glb[20:20+n], &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Materials) != 1 || doc.Materials[0].PBR.BaseColorTexture == nil || len(doc.Images) == 0 {
		t.Fatalf("%s has no base colour texture: %+v", path, doc)
	}
}

// hy3d generate --texture runs shape then paint and writes a textured GLB
// the validator accepts, or OBJ + MTL + texture; the breakdown lists the
// paint stages after the shape ones.
func TestGenerateTextureWritesATexturedMesh(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	pic := writePicture(t, dir)
	for _, out := range []string{"textured.glb", "textured.obj"} {
		t.Run(out, func(t *testing.T) {
			path := filepath.Join(dir, out)
			code, stdout, stderr := runCLI(t, "generate", "-i", pic, "-o", path, "--texture", "--steps", "2",
				"--resolution", "32", "--paint-steps", "2", "--texture-size", "128", "--threads", "2")
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, stage := range []string{"sample", "atlas", "delight", "diffuse", "bake"} {
				if !strings.Contains(stdout, "  "+stage+" ") {
					t.Errorf("breakdown lacks %s:\n%s", stage, stdout)
				}
			}
			if strings.HasSuffix(out, ".glb") {
				requireTexturedGLB(t, path)
				return
			}
			for _, f := range []string{"textured.obj", "textured.mtl", "textured.png"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
		})
	}
}

// hy3d texture paints a mesh hy3d wrote (read back through the GLB reader)
// with a given paint set; wrong arguments are usage errors.
func TestTextureCommand(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	pic := writePicture(t, dir)
	shape := filepath.Join(dir, "shape.glb")
	if code, _, stderr := runCLI(t, "generate", "-i", pic, "-o", shape, "--steps", "2", "--resolution", "32"); code != exitOK {
		t.Fatalf("generate: exit %d, stderr %q", code, stderr)
	}
	out := filepath.Join(dir, "painted.glb")
	code, stdout, stderr := runCLI(t, "texture", "-i", pic, "-m", shape, "-o", out, "--texture-size", "128",
		"--paint-engines", filepath.Join("..", "..", "engines", "tiny-paint-2.0-turbo"), "--threads", "2")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "tiny-paint-2.0-turbo") || !strings.Contains(stdout, "10 steps") {
		t.Errorf("breakdown does not name the set and its 10 LCM steps:\n%s", stdout)
	}
	requireTexturedGLB(t, out)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no mesh", []string{"texture", "-i", pic, "-o", out}},
		{"untextured output format", []string{"texture", "-i", pic, "-m", shape, "-o", filepath.Join(dir, "x.stl")}},
		{"unknown mesh format", []string{"texture", "-i", pic, "-m", filepath.Join(dir, "x.abc"), "-o", out}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, tc.args...); code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
		})
	}
}
