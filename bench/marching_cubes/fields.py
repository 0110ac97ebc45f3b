"""Writes the marching cubes benchmark fields as raw float32 grids.

One field per size n: a torus, two spheres and a thin gyroid shell cut to a
ball, over [-1, 1]^3 sampled at n points per axis, as signed values in voxel
units (positive inside). The layout is C order over (i, j, k), i.e. value
(i, j, k) at index (i*n + j)*n + k, which is what hy3d, scikit-image
(volume[i, j, k]) and the Go benchmark read. mesh/marching_cubes_test.go's
benchmarkField samples the same shapes.

Usage: fields.py OUT_DIR SIZE...   (writes OUT_DIR/field_v1_SIZE.raw; bump the
version when the field changes, files of the current one are reused)
"""

import os
import sys

import numpy as np


def plane(n, i):
    """Values of plane i of the size-n field, as float32 (n, n)."""
    h = 2.0 / (n - 1)
    x = i * h - 1.0
    y, z = np.meshgrid(np.arange(n) * h - 1.0, np.arange(n) * h - 1.0, indexing="ij")
    torus = 0.14 - np.hypot(np.hypot(x, y) - 0.5, z + 0.35)
    sphere_a = 0.28 - np.sqrt((x + 0.55) ** 2 + (y - 0.5) ** 2 + (z - 0.45) ** 2)
    sphere_b = 0.22 - np.sqrt((x - 0.6) ** 2 + (y + 0.5) ** 2 + (z - 0.5) ** 2)
    # The gyroid sheet |g| < 0.2 (about two voxels thick at n = 256), inside
    # a ball of radius 0.55 centred at (0, -0.1, 0.3).
    gx, gy, gz = x, y + 0.1, z - 0.3
    s = 2 * np.pi / 0.25
    g = (np.sin(s * gx) * np.cos(s * gy) + np.sin(s * gy) * np.cos(s * gz)
         + np.sin(s * gz) * np.cos(s * gx))
    shell = np.minimum(0.2 - np.abs(g), 0.55 - np.sqrt(gx * gx + gy * gy + gz * gz))
    field = np.maximum(np.maximum(torus, sphere_a), np.maximum(sphere_b, shell))
    return (field / h).astype(np.float32)


def write(path, n):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(n):
            plane(n, i).tofile(f)
    os.replace(tmp, path)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    for size in argv[2:]:
        n = int(size)
        path = os.path.join(out, "field_v1_%d.raw" % n)
        if os.path.exists(path) and os.path.getsize(path) == 4 * n ** 3:
            continue
        write(path, n)
        print("wrote %s" % path, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
