// Command cutout measures the no-alpha, no-matting cut-out against known
// masks: synthetic photos (internal/synthpic) of five shapes at three sizes
// in four colours, one close to the backdrop's, on solid, gradient, noisy
// (camera noise, JPEG) and textured backdrops. It prints the mean and worst
// IoU per backdrop for the border-colour matte hy3d used before (baseline.go)
// and for the graph cut of package cutout. Its speed is measured by
// `go test -bench Alpha1024 ./cutout`.
//
//	go run ./bench/cutout                 # 512² pictures, all backdrops
//	go run ./bench/cutout -size 1024 -v   # one line per picture too
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/hy3d/hy3d/cutout"
	"github.com/hy3d/hy3d/internal/synthpic"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench/cutout: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	size := flag.Int("size", 512, "picture side in pixels")
	verbose := flag.Bool("v", false, "print every picture's IoU")
	only := flag.String("backdrop", "", "measure one backdrop kind only")
	flag.Parse()
	fmt.Printf("| backdrop (%d² pictures) | pictures | border colour (before): mean IoU | worst | graph cut: mean IoU | worst |\n", *size)
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, kind := range synthpic.Backdrops {
		if *only != "" && kind != *only {
			continue
		}
		var old, cut []float64
		for _, sc := range synthpic.Suite(kind, *size, *size) {
			img, mask, err := sc.Render()
			if err != nil {
				return err
			}
			before := borderColourMatte(img)
			after, err := cutout.Alpha(context.Background(), img)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.Name(), err)
			}
			old = append(old, synthpic.IoU(before, mask))
			cut = append(cut, synthpic.IoU(after, mask))
			if *verbose {
				fmt.Printf("  %-36s before %.3f  after %.3f\n", sc.Name(), old[len(old)-1], cut[len(cut)-1])
			}
		}
		fmt.Printf("| %s | %d | %.3f | %.3f | %.3f | %.3f |\n", kind, len(old), mean(old), slices.Min(old), mean(cut), slices.Min(cut))
	}
	return nil
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
