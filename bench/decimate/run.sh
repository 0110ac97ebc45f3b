#!/usr/bin/env bash
# Decimation: hy3d (mesh.Simplify) against MeshLab's quadric edge collapse
# with Hunyuan3D's FaceReducer parameters (quadric.mlx), on the marching-cubes
# mesh of bench/marching_cubes' field (a torus, two spheres and a thin gyroid
# shell) at SIZE^3, decimated to FACES faces; prints the comparison table.
# Knobs (environment): SIZE=256 FACES=40000 RUNS=5 THREADS=2 SAMPLES=300000.
# Field, meshes and raw results go to bench/out/decimate.
set -euo pipefail
cd "$(dirname "$0")/../.."

size=${SIZE:-256}
out=bench/out/decimate
python=/usr/bin/python3  # Debian's, which has numpy

make native >&2
mkdir -p "$out"
"$python" bench/marching_cubes/fields.py "$out" "$size"
# The stamp keys Go's build cache on the native library (see Makefile).
go run -ldflags "-X main.nativeLibrarySHA256=$(sha256sum build/libhy3d.a | cut -c1-16)" ./bench/decimate -dir "$out" -size "$size" -faces "${FACES:-40000}" -runs "${RUNS:-5}" -threads "${THREADS:-2}" -samples "${SAMPLES:-300000}"
