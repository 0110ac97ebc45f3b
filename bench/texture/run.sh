#!/usr/bin/env bash
# Texture geometry: hy3d's atlas, views, bake, fill and export per stage on
# the marching-cubes mesh of bench/marching_cubes' field decimated to FACES
# (comma-separated budgets), at texture sizes TEX and views of VIEW pixels;
# the fill of the budgets in OPENCV is compared with OpenCV NS inpainting and
# their atlas with xatlas (npm xatlasjs from make bench-deps, in node).
# Knobs (environment): SIZE=256 FACES=40000,1000000 TEX=2048,4096 VIEW=2048
# THREADS=2 OPENCV=40000 RUNS=3 (stages report their best run). Field and results go to bench/out/texture.
set -euo pipefail
cd "$(dirname "$0")/../.."

size=${SIZE:-256}
out=bench/out/texture
python=/usr/bin/python3  # Debian's, which has numpy and cv2

make native >&2
mkdir -p "$out"
"$python" bench/marching_cubes/fields.py "$out" "$size"
# The stamp keys Go's build cache on the native library (see Makefile).
go run -ldflags "-X main.nativeLibrarySHA256=$(sha256sum build/libhy3d.a | cut -c1-16)" ./bench/texture \
  -dir "$out" -size "$size" -faces "${FACES:-40000,1000000}" -tex "${TEX:-2048,4096}" -view "${VIEW:-2048}" \
  -threads "${THREADS:-2}" -opencv "${OPENCV-40000}" -python "$python" -xatlas build/node-bench/node_modules/xatlasjs \
  -runs "${RUNS:-3}"
