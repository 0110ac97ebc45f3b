// Command decimate compares hy3d's decimation (mesh.Simplify, through cgo)
// with MeshLab's quadric edge collapse run with the parameters of
// Hunyuan3D's FaceReducer, on one marching-cubes mesh of the benchmark
// field (bench/marching_cubes/fields.py: a torus, two spheres and a thin
// gyroid shell). It prints one table: time and the ratio, the topology of
// both outputs, their symmetric Hausdorff distance to the input and their
// triangle quality. run.sh is the one command that prepares and runs it.
//
//	go run ./bench/decimate -dir bench/out/decimate -size 256 -faces 40000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hy3d/hy3d/bench/internal/field"
	"github.com/hy3d/hy3d/mesh"
)

// row is one tool's result; the JSON goes to the out directory.
type row struct {
	Tool             string  `json:"tool"`
	WallSeconds      float64 `json:"wall_seconds"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	Faces            int     `json:"faces"`
	NonManifoldEdges int     `json:"non_manifold_edges"`
	BoundaryEdges    int     `json:"boundary_edges"`
	FlippedEdges     int     `json:"flipped_edges"`
	DegenerateFaces  int     `json:"degenerate_faces"`
	DuplicateFaces   int     `json:"duplicate_faces"`
	Euler            int     `json:"euler"`
	Components       int     `json:"components"`
	HausdorffPct     float64 `json:"hausdorff_pct_of_diagonal"`
	MeanDistPct      float64 `json:"mean_distance_pct_of_diagonal"`
	MinQuality       float64 `json:"min_quality"`
	MeanQuality      float64 `json:"mean_quality"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench/decimate: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("decimate", flag.ContinueOnError)
	dir := flags.String("dir", "bench/out/decimate", "directory holding field_v1_<size>.raw; outputs go here too")
	size := flags.Int("size", 256, "grid size of the field")
	faces := flags.Int("faces", mesh.DefaultTargetFaces, "face budget")
	runs := flags.Int("runs", 5, "timed hy3d runs (the best is reported)")
	threads := flags.Int("threads", 2, "hy3d threads (MeshLab uses one)")
	samplesN := flags.Int("samples", 300000, "area samples per mesh for the Hausdorff distance (vertices are added)")
	meshlab := flags.Bool("meshlab", true, "run MeshLab (meshlabserver under xvfb-run)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()

	field, err := field.Read(filepath.Join(*dir, fmt.Sprintf("field_v1_%d.raw", *size)), *size)
	if err != nil {
		return err
	}
	input, err := mesh.MarchingCubes(ctx, field, 0, 2)
	if err != nil {
		return err
	}
	field = mesh.Grid{}
	inTop := mesh.Analyze(input)
	fmt.Fprintf(os.Stderr, "input: %d^3 field -> %d faces, %d vertices, Euler %d, %d components, %d non-manifold edges\n",
		*size, inTop.Faces, input.VertexCount(), inTop.Euler(), inTop.Components, inTop.NonManifoldEdges)
	inPath := filepath.Join(*dir, fmt.Sprintf("input_%d.ply", *size))
	if err := writeFile(inPath, input, mesh.FormatPLY); err != nil {
		return err
	}

	var rows []row
	out, wall, cpu, err := timeSimplify(ctx, input, *faces, *threads, *runs)
	if err != nil {
		return err
	}
	rows = append(rows, describe(fmt.Sprintf("hy3d Simplify, %d threads", *threads), out, input, wall, cpu, *samplesN))
	if err := writeFile(filepath.Join(*dir, "hy3d.ply"), out, mesh.FormatPLY); err != nil {
		return err
	}

	if *meshlab {
		ml, wall, cpu, err := runMeshLab(*dir, inPath, *faces)
		if err != nil {
			return err
		}
		rows = append(rows, describe("MeshLab quadric collapse", ml, input, wall, cpu, *samplesN))
	}

	jsonOut, err := os.Create(filepath.Join(*dir, "results.jsonl"))
	if err != nil {
		return err
	}
	defer jsonOut.Close()
	enc := json.NewEncoder(jsonOut)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	printTable(stdout, rows, inTop, *size, *faces, *runs)
	return nil
}

func writeFile(path string, m *mesh.Mesh, f mesh.Format) error {
	var buf bytes.Buffer
	if err := mesh.Export(&buf, m, f); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeSimplify reports the best wall time over the runs (after one untimed
// run) and the process CPU time of that same run.
func timeSimplify(ctx context.Context, in *mesh.Mesh, faces, threads, runs int) (*mesh.Mesh, float64, float64, error) {
	var out *mesh.Mesh
	bestWall, bestCPU := math.Inf(1), 0.0
	for r := -1; r < runs; r++ {
		runtime.GC()
		c0, t0 := cpuTime(syscall.RUSAGE_SELF), time.Now()
		m, err := mesh.Simplify(ctx, in, faces, 0, threads)
		wall, cpu := time.Since(t0).Seconds(), (cpuTime(syscall.RUSAGE_SELF) - c0).Seconds()
		if err != nil {
			return nil, 0, 0, err
		}
		out = m
		if r >= 0 && wall < bestWall {
			bestWall, bestCPU = wall, cpu
		}
	}
	return out, bestWall, bestCPU, nil
}

// runMeshLab decimates with meshlabserver and reports the time of the filter
// alone: the run with the script minus a run that only loads and saves (the
// same file, same X server start-up).
func runMeshLab(dir, inPath string, faces int) (*mesh.Mesh, float64, float64, error) {
	template, err := os.ReadFile("bench/decimate/quadric.mlx")
	if err != nil {
		return nil, 0, 0, err
	}
	script := filepath.Join(dir, "quadric.mlx")
	if err := os.WriteFile(script, bytes.ReplaceAll(template, []byte("TARGET_FACES"), []byte(strconv.Itoa(faces))), 0o644); err != nil {
		return nil, 0, 0, err
	}
	outPath := filepath.Join(dir, "meshlab.ply")
	baseWall, baseCPU, err := timeCommand(dir, "xvfb-run", "-a", "meshlabserver", "-i", inPath, "-o", filepath.Join(dir, "meshlab_copy.ply"))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("meshlab load+save: %w", err)
	}
	wall, cpu, err := timeCommand(dir, "xvfb-run", "-a", "meshlabserver", "-i", inPath, "-o", outPath, "-s", script)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("meshlab decimation: %w", err)
	}
	fmt.Fprintf(os.Stderr, "meshlab: %.2f s wall, %.2f s CPU with the filter; %.2f s, %.2f s loading and saving only\n",
		wall, cpu, baseWall, baseCPU)
	f, err := os.Open(outPath)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	m, err := mesh.ParsePLY(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("meshlab output: %w", err)
	}
	return m, wall - baseWall, cpu - baseCPU, nil
}

func timeCommand(dir, name string, args ...string) (wall, cpu float64, err error) {
	cmd := exec.Command(name, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	c0, t0 := cpuTime(syscall.RUSAGE_CHILDREN), time.Now()
	err = cmd.Run()
	wall, cpu = time.Since(t0).Seconds(), (cpuTime(syscall.RUSAGE_CHILDREN) - c0).Seconds()
	_ = os.WriteFile(filepath.Join(dir, "meshlab.log"), log.Bytes(), 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w (log in %s)", name, err, filepath.Join(dir, "meshlab.log"))
	}
	return wall, cpu, nil
}

func describe(tool string, m, input *mesh.Mesh, wall, cpu float64, samples int) row {
	top := mesh.Analyze(m)
	diag := diagonal(input)
	h, mean := hausdorff(m, input, samples)
	minQ, meanQ := quality(m)
	return row{
		Tool: tool, WallSeconds: wall, CPUSeconds: cpu, Faces: top.Faces,
		NonManifoldEdges: top.NonManifoldEdges, BoundaryEdges: top.BoundaryEdges, FlippedEdges: top.FlippedEdges,
		DegenerateFaces: top.DegenerateFaces, DuplicateFaces: duplicates(m), Euler: top.Euler(), Components: top.Components,
		HausdorffPct: 100 * h / diag, MeanDistPct: 100 * mean / diag, MinQuality: minQ, MeanQuality: meanQ,
	}
}

func diagonal(m *mesh.Mesh) float64 {
	lo, hi := vec{math.Inf(1), math.Inf(1), math.Inf(1)}, vec{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	for v := 0; v < m.VertexCount(); v++ {
		p := vertex(m, uint32(v))
		for i := range 3 {
			lo[i], hi[i] = min(lo[i], p[i]), max(hi[i], p[i])
		}
	}
	return dist(lo, hi)
}

// quality is the triangle quality vcglib uses, 2·area/longest edge² scaled
// so an equilateral triangle scores 1: the worst and the mean.
func quality(m *mesh.Mesh) (worst, mean float64) {
	worst = math.Inf(1)
	for f := 0; f < m.TriangleCount(); f++ {
		a, b, c := corners(m, f)
		n := cross(sub(b, a), sub(c, a))
		longest := max(dot(sub(b, a), sub(b, a)), dot(sub(c, a), sub(c, a)), dot(sub(c, b), sub(c, b)))
		q := 0.0
		if longest > 0 {
			q = math.Sqrt(dot(n, n)) / longest / (math.Sqrt(3) / 2)
		}
		worst = min(worst, q)
		mean += q
	}
	return worst, mean / float64(max(m.TriangleCount(), 1))
}

func duplicates(m *mesh.Mesh) int {
	keys := make([][3]uint32, m.TriangleCount())
	for f := range keys {
		k := [3]uint32(m.Indices[3*f : 3*f+3])
		sort.Slice(k[:], func(i, j int) bool { return k[i] < k[j] })
		keys[f] = k
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		if keys[i][1] != keys[j][1] {
			return keys[i][1] < keys[j][1]
		}
		return keys[i][2] < keys[j][2]
	})
	n := 0
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			n++
		}
	}
	return n
}

func printTable(w io.Writer, rows []row, in mesh.Topology, size, faces, runs int) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "decimation of a %d^3 marching-cubes mesh (%d faces, Euler %d, %d components) to %d faces\n",
		size, in.Faces, in.Euler(), in.Components, faces)
	fmt.Fprintf(w, "hy3d: best of %d runs; MeshLab: one run, minus a load+save-only run; load average %s\n",
		runs, strings.Join(strings.Fields(string(load))[:3], " "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tool\twall s\tCPU s\tfaces\tnon-manifold\tboundary\tflipped\tdegenerate\tduplicate\tEuler\tHausdorff %% diag\tmean dist %% diag\tmin quality\tmean quality\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.4f\t%.5f\t%.3f\t%.3f\t\n", r.Tool, r.WallSeconds, r.CPUSeconds,
			r.Faces, r.NonManifoldEdges, r.BoundaryEdges, r.FlippedEdges, r.DegenerateFaces, r.DuplicateFaces, r.Euler,
			r.HausdorffPct, r.MeanDistPct, r.MinQuality, r.MeanQuality)
	}
	tw.Flush()
	if len(rows) == 2 && rows[0].WallSeconds > 0 && rows[0].CPUSeconds > 0 {
		fmt.Fprintf(w, "MeshLab / hy3d: %.1fx wall time, %.1fx CPU time\n",
			rows[1].WallSeconds/rows[0].WallSeconds, rows[1].CPUSeconds/rows[0].CPUSeconds)
	}
}
