#!/usr/bin/env bash
# Marching cubes: hy3d against scikit-image (Lewiner, what Hunyuan3D calls)
# and VTK Flying Edges, on the same fields (a torus, two spheres and a thin
# gyroid shell) at 256^3 and 384^3; each tool in its own process; prints the
# comparison table. Knobs (environment): SIZES=256,384 THREADS=2 RUNS=10
# PEER_RUNS=5. Fields and raw results go to bench/out/marching_cubes.
set -euo pipefail
cd "$(dirname "$0")/../.."

sizes=${SIZES:-256,384}
threads=${THREADS:-2}
runs=${RUNS:-10}
peer_runs=${PEER_RUNS:-5}
out=bench/out/marching_cubes
python=/usr/bin/python3  # Debian's, which has scikit-image and VTK

make native >&2
mkdir -p "$out"
"$python" bench/marching_cubes/fields.py "$out" ${sizes//,/ }
# Go caches links without looking at build/libhy3d.a: stamping the binary
# with the library's hash makes it relink whenever the library changed.
native=$(sha256sum build/libhy3d.a | cut -c1-16)
go run -ldflags "-X main.nativeBuild=$native" ./bench/marching_cubes \
  -dir "$out" -sizes "$sizes" -threads "$threads" -runs "$runs" >"$out/hy3d.jsonl"
"$python" bench/marching_cubes/peers.py skimage "$out" "$sizes" "$peer_runs" >"$out/skimage.jsonl"
"$python" bench/marching_cubes/peers.py vtk "$out" "$sizes" "$peer_runs" "$threads" >"$out/vtk.jsonl"
echo "marching cubes, best of $runs (hy3d) / $peer_runs (peers) runs; machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" bench/marching_cubes/peers.py table "$out/hy3d.jsonl" "$out/skimage.jsonl" "$out/vtk.jsonl"
