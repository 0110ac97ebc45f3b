"""The peers bench/texture compares against.

inpaint IN MASK OUT N: OpenCV's Navier-Stokes inpainting (cv2.inpaint,
INPAINT_NS, radius 3), as Hunyuan3D-Paint runs it over every unpainted texel:
IN is an N x N 8-bit RGB texture (raw), MASK N x N bytes (255 = fill).
Writes the result to OUT (raw RGB) and prints the seconds cv2.inpaint took
(single call, after OpenCV's own thread pool is limited to one thread, as in
Hunyuan3D's measured runs).
"""

import sys
import time

import cv2
import numpy as np


def inpaint(src, mask_path, dst, n):
    image = np.fromfile(src, dtype=np.uint8).reshape(n, n, 3)
    mask = np.fromfile(mask_path, dtype=np.uint8).reshape(n, n)
    cv2.setNumThreads(1)
    start = time.perf_counter()
    out = cv2.inpaint(image, mask, 3, cv2.INPAINT_NS)
    seconds = time.perf_counter() - start
    out.tofile(dst)
    print(f"{seconds:.3f}")


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "inpaint":
        inpaint(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
