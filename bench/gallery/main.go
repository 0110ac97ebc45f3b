// Command gallery makes the README's table of what the embedded default
// model set does: a handful of pictures (a shaded sphere on transparency,
// and photos without alpha on plain, gradient, noisy and textured
// backdrops, which go through the cut-out), each generated at the set's
// default settings on ONNX Runtime and drawn by a small z-buffer renderer
// (render.go). It writes the pictures and renders as PNG into -out and
// prints the Markdown table. (Timings are bench/pipeline's business.)
//
//	go run ./bench/gallery -out docs/gallery
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/image/draw"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/internal/synthpic"
	"github.com/hy3d/hy3d/pipeline"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench/gallery: %v\n", err)
		os.Exit(1)
	}
}

// entry is one row of the table.
type entry struct {
	name, caption string
	picture       func() (*image.NRGBA, error)
}

func entries() []entry {
	scene := func(sc synthpic.Scene) func() (*image.NRGBA, error) {
		return func() (*image.NRGBA, error) {
			img, _, err := sc.Render()
			return img, err
		}
	}
	const side = 384
	return []entry{
		{"sphere", "shaded red sphere, PNG with alpha", func() (*image.NRGBA, error) { return sphere(side), nil }},
		{"box", "brown box on a grey noisy backdrop (JPEG-compressed), no alpha", scene(synthpic.Scene{W: side, H: side,
			Backdrop: synthpic.Noisy, Base: [3]float64{150, 150, 152}, Shape: "box", Size: 0.6, Colour: [3]float64{140, 95, 55}, Seed: 1})},
		{"ring", "blue ring on white, no alpha", scene(synthpic.Scene{W: side, H: side,
			Backdrop: synthpic.Solid, Base: [3]float64{238, 238, 235}, Shape: "ring", Size: 0.7, Colour: [3]float64{30, 45, 110}, Seed: 2})},
		{"figure", "figure on a tiled, blotchy backdrop, no alpha", scene(synthpic.Scene{W: side, H: side,
			Backdrop: synthpic.Textured, Base: [3]float64{178, 190, 205}, Shape: "figure", Size: 0.75, Colour: [3]float64{190, 40, 35}, Seed: 3})},
		{"ell", "red L on a gradient backdrop, no alpha", scene(synthpic.Scene{W: side, H: side,
			Backdrop: synthpic.Gradient, Base: [3]float64{238, 238, 235}, Shape: "ell", Size: 0.65, Colour: [3]float64{190, 40, 35}, Seed: 4})},
	}
}

func run() error {
	out := flag.String("out", "docs/gallery", "folder for the PNGs")
	dir := flag.String("engines", "", "model set folder (default: the embedded default set)")
	size := flag.Int("size", 240, "side of the PNGs in pixels")
	flag.Parse()

	ctx := context.Background()
	set, err := engines.Default()
	if *dir != "" {
		set, err = engines.Open(*dir)
	}
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	loader, err := pipeline.OpenBackend(ctx, set, pipeline.BackendOptions{Kind: pipeline.BackendORT, Logger: log})
	if err != nil {
		return err
	}
	defer loader.Close()
	p, err := pipeline.New(ctx, pipeline.Config{Set: set, Loader: loader, Logger: log})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}

	fmt.Printf("| picture | mesh (model set %s, default settings) | |\n| --- | --- | --- |\n", set.Name)
	for _, e := range entries() {
		pic, err := e.picture()
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, pic); err != nil {
			return err
		}
		res, err := p.Generate(ctx, pipeline.Request{ID: e.name, Image: buf.Bytes()})
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		thumb := image.NewNRGBA(image.Rect(0, 0, *size, *size))
		draw.Draw(thumb, thumb.Rect, checkerboard(*size), image.Point{}, draw.Src)
		draw.CatmullRom.Scale(thumb, thumb.Rect, pic, pic.Rect, draw.Over, nil)
		picFile, meshFile := e.name+"-picture.png", e.name+"-mesh.png"
		if err := writePNG(filepath.Join(*out, picFile), thumb); err != nil {
			return err
		}
		shot := render(res.Mesh, view{yaw: -0.55, pitch: 0.35, extent: 1.05}, *size, 3)
		if err := writePNG(filepath.Join(*out, meshFile), shot); err != nil {
			return err
		}
		note := fmt.Sprintf("%s; %d faces", e.caption, res.Mesh.TriangleCount())
		if len(res.Warnings) > 1 {
			note += "; warned: " + strings.Join(res.Warnings[1:], "; ")
		}
		fmt.Printf("| ![%s](%s) | ![%s mesh](%s) | %s |\n", e.name, filepath.Join(*out, picFile), e.name, filepath.Join(*out, meshFile), note)
	}
	return nil
}

// sphere is a shaded red ball on transparency with a soft edge.
func sphere(side int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	r := 0.36 * float64(side)
	c := float64(side) / 2
	for y := range side {
		for x := range side {
			dx, dy := (float64(x)+0.5-c)/r, (float64(y)+0.5-c)/r
			d2 := dx*dx + dy*dy
			if d2 >= 1 {
				continue
			}
			nz := math.Sqrt(1 - d2)
			lit := 0.25 + 0.75*max(0, -0.4*dx-0.5*dy+0.77*nz)
			a := min(1, (1-math.Sqrt(d2))*r)
			img.SetNRGBA(x, y, color.NRGBA{uint8(220 * lit), uint8(40 * lit), uint8(35 * lit), uint8(255 * a)})
		}
	}
	return img
}

// checkerboard shows transparency behind a thumbnail.
func checkerboard(side int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			v := uint8(250)
			if (x/12+y/12)%2 == 1 {
				v = 225
			}
			img.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	return img
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
