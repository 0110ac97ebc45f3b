package texture

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	goimage "image"
	"io"
	"strings"
	"testing"

	"github.com/hy3d/hy3d/mesh"
)

// WriteOBJZip's archive unzips with the standard library; its OBJ parses
// back to the mesh's triangles and names an MTL that is in the archive, and
// every texture the MTL names is in the archive and decodes at the
// texture's size.
func TestWriteOBJZipIsSelfContained(t *testing.T) {
	m := torus(16, 8, 1, 0.4)
	a, err := BuildAtlas(context.Background(), m, DefaultAtlasOptions(64))
	if err != nil {
		t.Fatal(err)
	}
	mr := NewImage(64, 64, 2)
	for _, tc := range []struct {
		name     string
		mat      Material
		textures int
	}{
		{"png albedo", Material{BaseColor: NewImage(64, 64, 3), Format: PNG}, 1},
		{"jpeg pbr", Material{BaseColor: NewImage(64, 64, 3), MetallicRoughness: &mr, Format: JPEG}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteOBJZip(&buf, "model", m, a, tc.mat); err != nil {
				t.Fatal(err)
			}
			zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{}
			for _, f := range zr.File {
				r, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				data, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				files[f.Name] = data
			}
			obj, ok := files["model.obj"]
			if !ok {
				t.Fatalf("no model.obj in %d files", len(files))
			}
			parsed, err := mesh.ParseOBJ(bytes.NewReader(obj))
			if err != nil {
				t.Fatal(err)
			}
			if parsed.TriangleCount() != m.TriangleCount() {
				t.Errorf("OBJ has %d triangles, want %d", parsed.TriangleCount(), m.TriangleCount())
			}
			mtls := references(obj, "mtllib")
			if len(mtls) != 1 {
				t.Fatalf("OBJ names MTLs %v, want one", mtls)
			}
			mtl, ok := files[mtls[0]]
			if !ok {
				t.Fatalf("OBJ names %s, not in the zip", mtls[0])
			}
			var textures []string
			for _, tag := range []string{"map_Kd", "map_Pm", "map_Pr"} {
				textures = append(textures, references(mtl, tag)...)
			}
			if len(textures) != tc.textures {
				t.Fatalf("MTL names textures %v, want %d", textures, tc.textures)
			}
			for _, name := range textures {
				data, ok := files[name]
				if !ok {
					t.Fatalf("MTL names %s, not in the zip", name)
				}
				img, _, err := goimage.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
					t.Errorf("%s is %v, want 64x64", name, b)
				}
			}
			if want := 2 + tc.textures; len(files) != want {
				t.Errorf("%d files in the zip, want %d", len(files), want)
			}
		})
	}
	if err := WriteOBJZip(io.Discard, "a/b", m, a, Material{BaseColor: NewImage(64, 64, 3), Format: PNG}); err == nil {
		t.Error("a name with a path was accepted")
	}
}

// references are the arguments of the lines of text that start with tag.
func references(text []byte, tag string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), tag+" "); ok {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	return out
}
