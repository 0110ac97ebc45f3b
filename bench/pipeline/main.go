// Command pipeline measures hy3d's shape pipeline stage by stage on a model
// set (the embedded reference engines by default): for each resolution and
// decoding mode it runs whole generations and prints the best (or median)
// wall time of every stage, the points the geometry decoder evaluated (and their share of
// the dense grid) and the mesh sizes.
//
//	go run ./bench/pipeline                       # R = 128, 256, 384; dense and c2f
//	go run ./bench/pipeline -r 256 -modes c2f -runs 5
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hy3d/hy3d/engines"
	"github.com/hy3d/hy3d/mesh"
	"github.com/hy3d/hy3d/ort"
	"github.com/hy3d/hy3d/pipeline"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench/pipeline: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("engines", "", "model set folder (default: the embedded tiny set)")
	backend := flag.String("backend", pipeline.BackendAuto, "auto, trt or ort")
	resolutions := flag.String("r", "128,256,384", "comma-separated octree resolutions")
	modes := flag.String("modes", "dense,c2f", "comma-separated decode modes")
	runs := flag.Int("runs", 3, "measured generations per configuration (after one warm-up)")
	steps := flag.Int("steps", 0, "sampling steps (0: the set's default)")
	threads := flag.Int("threads", 0, "CPU threads (0: all cores)")
	median := flag.Bool("median", false, "report the median run instead of the best (the best is steadier on a shared machine)")
	flag.Parse()

	ctx := context.Background()
	var set *engines.Set
	var err error
	if *dir != "" {
		set, err = engines.Open(*dir)
	} else {
		set, err = engines.Tiny()
	}
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	loader, err := pipeline.OpenBackend(ctx, set, pipeline.BackendOptions{
		Kind: *backend, ORT: ort.Options{IntraOpThreads: *threads}, Logger: log,
	})
	if err != nil {
		return err
	}
	defer loader.Close()
	p, err := pipeline.New(ctx, pipeline.Config{Set: set, Loader: loader, Logger: log, Threads: *threads})
	if err != nil {
		return err
	}
	defer p.Close()

	picture, err := picture()
	if err != nil {
		return err
	}
	var rs []int
	for _, f := range strings.Split(*resolutions, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-r: %w", err)
		}
		rs = append(rs, r)
	}
	var ms []pipeline.DecodeMode
	for _, f := range strings.Split(*modes, ",") {
		m, err := pipeline.ParseDecodeMode(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}

	host, _ := os.Hostname()
	stat := "best"
	if *median {
		stat = "median"
	}
	fmt.Printf("model set %s (%s) on %s; %s, %d CPUs, GOMAXPROCS %d; %s of %d runs after a warm-up, per stage\n",
		set.Name, set.Family, p.Backend(), host, runtime.NumCPU(), runtime.GOMAXPROCS(0), stat, *runs)
	fmt.Printf("%-4s %-5s %9s %9s %9s %9s %9s %9s %9s %9s %11s %6s %8s %8s\n", "R", "mode",
		"prep", "cond", "sample", "decode", "surface", "clean", "export", "total", "points", "share", "verts", "faces")
	for _, r := range rs {
		for _, m := range ms {
			params := pipeline.Params{Steps: *steps, Resolution: r, Decode: m, Seed: 1}
			var all []pipeline.Timings
			var last *pipeline.Result
			for i := 0; i <= *runs; i++ {
				res, err := p.Generate(ctx, pipeline.Request{ID: "bench", Image: picture, Params: params, Formats: []mesh.Format{"glb"}})
				if err != nil {
					return fmt.Errorf("R=%d %s: %w", r, m, err)
				}
				if i > 0 { // the first run warms the engines up for these shapes
					all = append(all, res.Timings)
				}
				last = res
			}
			med := func(f func(pipeline.Timings) time.Duration) string {
				ds := make([]time.Duration, len(all))
				for i, t := range all {
					ds[i] = f(t)
				}
				slices.Sort(ds)
				d := ds[0]
				if *median {
					d = ds[len(ds)/2]
				}
				return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
			}
			c := last.Counts
			fmt.Printf("%-4d %-5s %9s %9s %9s %9s %9s %9s %9s %9s %11d %5.1f%% %8d %8d\n", r, m,
				med(func(t pipeline.Timings) time.Duration { return t.Preprocess }),
				med(func(t pipeline.Timings) time.Duration { return t.Condition }),
				med(func(t pipeline.Timings) time.Duration { return t.Sample }),
				med(func(t pipeline.Timings) time.Duration { return t.Decode }),
				med(func(t pipeline.Timings) time.Duration { return t.Surface }),
				med(func(t pipeline.Timings) time.Duration { return t.Clean }),
				med(func(t pipeline.Timings) time.Duration { return t.Export }),
				med(func(t pipeline.Timings) time.Duration { return t.Total }),
				c.PointsDecoded, 100*float64(c.PointsDecoded)/float64(c.PointsDense), c.SurfaceVerts, c.SurfaceFaces)
		}
	}
	return nil
}

// picture is a 512×512 RGBA object: a disc with a bar through it and a
// smaller disc on top, so the surface has thin and thick parts.
func picture() ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, 512, 512))
	c := color.NRGBA{190, 70, 50, 255}
	for y := 0; y < 512; y++ {
		for x := 0; x < 512; x++ {
			dx, dy := x-256, y-290
			if dx*dx+dy*dy < 120*120 || (dx > -220 && dx < 220 && dy > -14 && dy < 14) ||
				dx*dx+(y-130)*(y-130) < 55*55 {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
