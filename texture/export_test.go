package texture

import (
	"bytes"
	"context"
	goimage "image"
	"image/color"
	_ "image/jpeg" // decoders for TestEncodedTexturesDecode
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmuntal/gltf"

	"github.com/hy3d/hy3d/mesh/meshtest"
)

func TestWriteGLBPassesValidator(t *testing.T) {
	m := torus(32, 16, 1, 0.4)
	a, err := BuildAtlas(context.Background(), m, DefaultAtlasOptions(256))
	if err != nil {
		t.Fatal(err)
	}
	base := NewImage(256, 256, 3)
	mr := NewImage(256, 256, 2)
	for p := 0; p < 256*256; p++ {
		base.Pix[3*p], base.Pix[3*p+1], base.Pix[3*p+2] = float32(p%256)/255, 0.5, 1.2 // 1.2 is clamped
		mr.Pix[2*p], mr.Pix[2*p+1] = 0.25, 0.75
	}
	for _, tc := range []struct {
		name string
		mat  Material
	}{
		{"png base colour", Material{BaseColor: base, Format: PNG}},
		{"jpeg base colour + metallic-roughness", Material{BaseColor: base, MetallicRoughness: &mr, Format: JPEG}},
		{"png base colour + metallic-roughness", Material{BaseColor: base, MetallicRoughness: &mr, Format: PNG}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteGLB(&buf, m, a, tc.mat); err != nil {
				t.Fatal(err)
			}
			report := meshtest.RequireValidGLB(t, buf.Bytes())
			if report.NumWarnings > 0 {
				t.Errorf("validator warnings: %s", report)
			}
			var doc gltf.Document
			if err := gltf.NewDecoder(bytes.NewReader(buf.Bytes())).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			wantImages := 1
			if tc.mat.MetallicRoughness != nil {
				wantImages = 2
			}
			if len(doc.Images) != wantImages {
				t.Fatalf("%d images, want %d", len(doc.Images), wantImages)
			}
			for _, img := range doc.Images {
				if img.MimeType != tc.mat.Format.MimeType() {
					t.Errorf("image %s has MIME type %s, want %s", img.Name, img.MimeType, tc.mat.Format.MimeType())
				}
			}
			pbr := doc.Materials[0].PBRMetallicRoughness
			if (pbr.MetallicRoughnessTexture != nil) != (tc.mat.MetallicRoughness != nil) {
				t.Errorf("metallicRoughnessTexture present %v", pbr.MetallicRoughnessTexture != nil)
			}
		})
	}
}

func TestWriteOBJLayout(t *testing.T) {
	m := torus(16, 8, 1, 0.4)
	a, err := BuildAtlas(context.Background(), m, DefaultAtlasOptions(128))
	if err != nil {
		t.Fatal(err)
	}
	mr := NewImage(128, 128, 2)
	dir := t.TempDir()
	files, err := WriteOBJ(dir, "model", m, a, Material{BaseColor: NewImage(128, 128, 3), MetallicRoughness: &mr, Format: JPEG})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"model.obj", "model.mtl", "model.jpg", "model_metallic.jpg", "model_roughness.jpg"}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	for i, f := range files {
		if filepath.Base(f) != want[i] {
			t.Errorf("file %d is %s, want %s", i, f, want[i])
		}
	}
	mtl, err := os.ReadFile(filepath.Join(dir, "model.mtl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"map_Kd model.jpg", "map_Pm model_metallic.jpg", "map_Pr model_roughness.jpg"} {
		if !strings.Contains(string(mtl), line) {
			t.Errorf("mtl lacks %q:\n%s", line, mtl)
		}
	}
	obj, err := os.ReadFile(filepath.Join(dir, "model.obj"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(obj), "\n") {
		if tag, _, ok := strings.Cut(line, " "); ok {
			counts[tag]++
		}
	}
	if counts["v"] != a.VertexCount() || counts["vt"] != a.VertexCount() || counts["f"] != m.TriangleCount() {
		t.Errorf("obj has %d v, %d vt, %d f; want %d, %d, %d", counts["v"], counts["vt"], counts["f"],
			a.VertexCount(), a.VertexCount(), m.TriangleCount())
	}
	if _, err := WriteOBJ(dir, "../escape", m, a, Material{BaseColor: NewImage(128, 128, 3), Format: PNG}); err == nil {
		t.Error("a name with a path was accepted")
	}
}

// TestEncodedTexturesDecode decodes every texture image the exports write
// and checks its size, its layout (RGB, glTF's packed metallic-roughness,
// grey) and its values: exact for PNG, within JPEG's error on smooth
// content.
func TestEncodedTexturesDecode(t *testing.T) {
	const w, h = 96, 300 // tall enough for JPEG strips encoded on separate threads
	base := NewImage(w, h, 3)
	mr := NewImage(w, h, 2)
	for p := 0; p < w*h; p++ {
		x := float32(p%w) / (w - 1)
		base.Pix[3*p], base.Pix[3*p+1], base.Pix[3*p+2] = x, 0.5, 1.2 // 1.2 is clamped to 1
		mr.Pix[2*p], mr.Pix[2*p+1] = 0.25, 0.75*x
	}
	// want gives the expected 8-bit components of pixel p.
	type image struct {
		name   string
		encode func(Material, *bytes.Buffer) error
		want   func(p int) []float64
	}
	images := []image{
		{"base colour", func(m Material, b *bytes.Buffer) error { return m.encodeBaseColor(b) },
			func(p int) []float64 { return []float64{255 * float64(base.Pix[3*p]), 127.5, 255} }},
		{"metallic-roughness", func(m Material, b *bytes.Buffer) error { return m.encodeMetallicRoughness(b) },
			func(p int) []float64 { return []float64{255, 255 * float64(mr.Pix[2*p+1]), 63.75} }},
		{"roughness grey", func(m Material, b *bytes.Buffer) error { return m.encodeGrey(b, 1) },
			func(p int) []float64 { return []float64{255 * float64(mr.Pix[2*p+1])} }},
	}
	for _, format := range []ImageFormat{PNG, JPEG} {
		tolerance := 0.51 // rounding
		if format == JPEG {
			tolerance = 6
		}
		for _, im := range images {
			t.Run(string(format)+" "+im.name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := im.encode(Material{BaseColor: base, MetallicRoughness: &mr, Format: format}, &buf); err != nil {
					t.Fatal(err)
				}
				decoded, kind, err := goimage.Decode(&buf)
				if err != nil {
					t.Fatal(err)
				}
				if kind != string(format) || decoded.Bounds().Dx() != w || decoded.Bounds().Dy() != h {
					t.Fatalf("decoded a %s of %v", kind, decoded.Bounds())
				}
				worst := 0.0
				for p := 0; p < w*h; p++ {
					want := im.want(p)
					var got []float64
					if len(want) == 1 {
						got = []float64{float64(color.GrayModel.Convert(decoded.At(p%w, p/w)).(color.Gray).Y)}
					} else {
						r, g, b, _ := decoded.At(p%w, p/w).RGBA()
						got = []float64{float64(r >> 8), float64(g >> 8), float64(b >> 8)}
					}
					for k := range want {
						worst = max(worst, math.Abs(got[k]-want[k]))
					}
				}
				if worst > tolerance {
					t.Errorf("largest error %.1f levels, want at most %.1f", worst, tolerance)
				}
			})
		}
	}
}
