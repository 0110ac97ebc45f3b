// Command marching_cubes times hy3d's marching cubes (mesh.MarchingCubes,
// through cgo, copy into Go slices included) on the raw float32 fields that
// fields.py writes, and prints one JSON object per field: best wall time
// over the runs, output size and topology. run.sh compares it with
// scikit-image and VTK.
//
//	go run ./bench/marching_cubes -dir bench/out/marching_cubes -sizes 256,384 -threads 2
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hy3d/hy3d/bench/internal/field"
	"github.com/hy3d/hy3d/mesh"
)

// nativeBuild identifies the native library linked in (run.sh sets it to a
// hash of build/libhy3d.a, which also makes Go relink when it changes).
var nativeBuild = "unknown"

// result is one line of output; peers.py reads the same keys.
type result struct {
	Tool             string  `json:"tool"`
	Size             int     `json:"size"`
	Threads          int     `json:"threads"`
	Seconds          float64 `json:"seconds"`
	Runs             int     `json:"runs"`
	Vertices         int     `json:"vertices"`
	Faces            int     `json:"faces"`
	BoundaryEdges    int     `json:"boundary_edges"`
	NonManifoldEdges int     `json:"non_manifold_edges"`
	FlippedEdges     int     `json:"flipped_edges"`
	DegenerateFaces  int     `json:"degenerate_faces"`
	Euler            int     `json:"euler"`
	Components       int     `json:"components"`
	NativeBuild      string  `json:"native_build"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench/marching_cubes: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "bench/out/marching_cubes", "directory holding field_v1_<size>.raw")
	sizes := flag.String("sizes", "256,384", "comma-separated grid sizes")
	threads := flag.Int("threads", 2, "marching cubes threads")
	runs := flag.Int("runs", 10, "timed runs per field (the best is reported)")
	flag.Parse()
	enc := json.NewEncoder(os.Stdout)
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("size %q: %w", s, err)
		}
		g, err := field.Read(filepath.Join(*dir, fmt.Sprintf("field_v1_%d.raw", n)), n)
		if err != nil {
			return err
		}
		r, err := measure(g, *threads, *runs)
		if err != nil {
			return err
		}
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	}
	return nil
}

func measure(g mesh.Grid, threads, runs int) (result, error) {
	ctx := context.Background()
	best := math.Inf(1)
	var m *mesh.Mesh
	// One untimed run first: it pages in the field and the library.
	for r := -1; r < runs; r++ {
		m = nil
		runtime.GC()
		start := time.Now()
		out, err := mesh.MarchingCubes(ctx, g, 0, threads)
		elapsed := time.Since(start).Seconds()
		if err != nil {
			return result{}, err
		}
		m = out
		if r >= 0 {
			best = min(best, elapsed)
		}
	}
	top := mesh.Analyze(m)
	return result{
		Tool: "hy3d", Size: g.NX, Threads: threads, Seconds: best, Runs: runs,
		Vertices: m.VertexCount(), Faces: top.Faces,
		BoundaryEdges: top.BoundaryEdges, NonManifoldEdges: top.NonManifoldEdges,
		FlippedEdges: top.FlippedEdges, DegenerateFaces: top.DegenerateFaces,
		Euler: top.Euler(), Components: top.Components, NativeBuild: nativeBuild,
	}, nil
}
