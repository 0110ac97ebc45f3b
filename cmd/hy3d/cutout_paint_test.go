package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// writeLoudPicture writes an opaque picture (no alpha: the object must be
// cut out) of a blue disc on a magenta background.
func writeLoudPicture(t *testing.T, dir string) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 128, 128))
	for y := 0; y < 128; y++ {
		for x := 0; x < 128; x++ {
			c := color.NRGBA{255, 0, 255, 255}
			if (x-64)*(x-64)+(y-64)*(y-64) < 36*36 {
				c = color.NRGBA{40, 90, 200, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "loud.png")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hy3d generate --texture and hy3d texture paint with the picture as the
// shape stage cut it out, so a loud background never reaches the texture:
// no texel is magenta (red and blue over 120, green under 100: no blend of
// the blue object with white is), while the object's blue covers texels.
func TestPaintingUsesTheCutOutPicture(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	pic := writeLoudPicture(t, dir)
	shape := filepath.Join(dir, "shape.glb")
	if code, _, stderr := runCLI(t, "generate", "-i", pic, "-o", shape, "--steps", "2", "--resolution", "32", "--threads", "2"); code != exitOK {
		t.Fatalf("generate: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"generate", []string{"generate", "-i", pic, "-o", filepath.Join(dir, "generate.obj"), "--texture", "--steps", "2",
			"--resolution", "32", "--paint-steps", "2", "--texture-size", "128", "--threads", "2"}},
		{"texture", []string{"texture", "-i", pic, "-m", shape, "-o", filepath.Join(dir, "texture.obj"),
			"--steps", "2", "--texture-size", "128", "--threads", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, tc.args...); code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			f, err := os.Open(filepath.Join(dir, tc.name+".png"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tex, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			b := tex.Bounds()
			magenta, blue := 0, 0
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					c := color.NRGBAModel.Convert(tex.At(x, y)).(color.NRGBA)
					if c.R > 120 && c.B > 120 && c.G < 100 {
						magenta++
					}
					if int(c.B) > int(c.R)+60 {
						blue++
					}
				}
			}
			t.Logf("%d magenta and %d blue texels of %d", magenta, blue, b.Dx()*b.Dy())
			if magenta != 0 {
				t.Errorf("%d texels carry the background's magenta", magenta)
			}
			if blue < b.Dx()*b.Dy()/10 {
				t.Errorf("only %d texels carry the object's blue", blue)
			}
		})
	}
}
