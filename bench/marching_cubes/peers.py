"""The peers of hy3d's marching cubes, timed on the fields of fields.py, and
the comparison table.

  peers.py skimage DIR SIZES RUNS        scikit-image measure.marching_cubes (Lewiner)
  peers.py vtk DIR SIZES RUNS THREADS    VTK vtkFlyingEdges3D on THREADS SMP threads
  peers.py table RESULTS.jsonl...        the table (first file: the reference, hy3d)

The first two print one JSON object per field (the keys of
bench/marching_cubes/main.go's result): the best wall time over RUNS, the
output size, and its topology computed here the same way mesh.Analyze does.
"""

import json
import os
import sys
import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def load(directory, n):
    path = os.path.join(directory, "field_v1_%d.raw" % n)
    return np.fromfile(path, dtype=np.float32).reshape(n, n, n)


def topology(faces, vertex_count):
    """Edge use counts, winding agreement, Euler characteristic, components."""
    f = np.ascontiguousarray(faces, dtype=np.int64)
    degenerate = int(np.count_nonzero((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])))
    a = f.ravel()
    b = f[:, [1, 2, 0]].ravel()
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys, inverse, counts = np.unique(lo * vertex_count + hi, return_inverse=True, return_counts=True)
    forward = np.bincount(inverse, weights=(a < b).astype(np.float64), minlength=len(keys))
    used = np.unique(f)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(vertex_count, vertex_count))
    _, labels = connected_components(graph, directed=False)
    return {
        "faces": int(len(f)),
        "boundary_edges": int(np.count_nonzero(counts == 1)),
        "non_manifold_edges": int(np.count_nonzero(counts > 2)),
        # Two uses of an edge in the same direction: neighbours disagree on winding.
        "flipped_edges": int(np.count_nonzero((counts == 2) & (forward != 1))),
        "degenerate_faces": degenerate,
        "euler": int(len(used) - len(keys) + len(f)),
        "components": int(len(np.unique(labels[used]))),
    }


def best_of(runs, fn):
    """Best wall time of fn over runs (after one untimed warm-up), the last
    result, and the CPU time over wall time of the timed runs."""
    out = fn()
    best, wall, cpu = float("inf"), 0.0, 0.0
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        t1, c1 = time.perf_counter(), time.process_time()
        best = min(best, t1 - t0)
        wall += t1 - t0
        cpu += c1 - c0
    return best, out, cpu / wall


def run_skimage(directory, sizes, runs):
    from skimage import measure

    for n in sizes:
        volume = load(directory, n)
        seconds, (verts, faces, _, _), cpu_per_wall = best_of(
            runs, lambda: measure.marching_cubes(volume, level=0.0, method="lewiner"))
        emit("scikit-image", n, 1, seconds, runs, len(verts), faces, cpu_per_wall)


def run_vtk(directory, sizes, runs, threads):
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonCore import vtkSMPTools
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D

    vtkSMPTools.Initialize(threads)
    if vtkSMPTools.GetEstimatedNumberOfThreads() != threads:
        sys.exit("VTK SMP backend %s runs %d threads, not %d" % (
            vtkSMPTools.GetBackend(), vtkSMPTools.GetEstimatedNumberOfThreads(), threads))
    for n in sizes:
        volume = load(directory, n)
        image = vtkImageData()
        # VTK's x varies fastest: x, y, z are our k, j, i.
        image.SetDimensions(n, n, n)
        scalars = numpy_support.numpy_to_vtk(volume.ravel(), deep=False)
        image.GetPointData().SetScalars(scalars)
        fe = vtkFlyingEdges3D()
        fe.SetInputData(image)
        fe.SetValue(0, 0.0)
        # Geometry only, like the others: no normals, gradients or scalars.
        fe.ComputeNormalsOff()
        fe.ComputeGradientsOff()
        fe.ComputeScalarsOff()

        def extract():
            fe.Modified()
            fe.Update()
            return fe.GetOutput()

        seconds, poly, cpu_per_wall = best_of(runs, extract)
        faces = numpy_support.vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)
        emit("VTK FlyingEdges3D (%s)" % vtkSMPTools.GetBackend(), n, threads, seconds, runs,
             poly.GetNumberOfPoints(), faces, cpu_per_wall)


def emit(tool, n, threads, seconds, runs, vertex_count, faces, cpu_per_wall):
    result = {"tool": tool, "size": n, "threads": threads, "seconds": seconds, "runs": runs,
              "vertices": int(vertex_count), "cpu_per_wall": round(cpu_per_wall, 2)}
    result.update(topology(faces, vertex_count))
    print(json.dumps(result), flush=True)


def table(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    reference = {r["size"]: r["seconds"] for r in rows if r["tool"] == "hy3d"}
    header = ("field", "tool", "threads", "seconds", "vs hy3d", "faces", "boundary", "non-manifold",
              "flipped", "degenerate", "Euler", "components")
    lines = [header]
    for r in sorted(rows, key=lambda r: (r["size"], r["tool"] != "hy3d", r["tool"])):
        ratio = r["seconds"] / reference[r["size"]] if r["size"] in reference else float("nan")
        threads = str(r["threads"])
        if "cpu_per_wall" in r:
            threads += " (cpu/wall %.2f)" % r["cpu_per_wall"]
        lines.append(("%d^3" % r["size"], r["tool"], threads, "%.4f" % r["seconds"], "%.1fx" % ratio,
                      "{:,}".format(r["faces"]), str(r["boundary_edges"]), str(r["non_manifold_edges"]),
                      str(r["flipped_edges"]), str(r["degenerate_faces"]), str(r["euler"]),
                      str(r["components"])))
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    command = argv[1]
    if command == "table":
        table(argv[2:])
        return
    directory = argv[2]
    sizes = [int(s) for s in argv[3].split(",")]
    runs = int(argv[4])
    if command == "skimage":
        run_skimage(directory, sizes, runs)
    elif command == "vtk":
        run_vtk(directory, sizes, runs, int(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
