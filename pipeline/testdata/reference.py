#!/usr/bin/python3
"""Golden values for pipeline/preprocess*_test.go.

Run by hand with Debian's python3-opencv (4.6, no IPP), python3-torch and
numpy; the tests hard-code what it prints and never run it.

  reference.py kernels            SHA-256 of cv2.resize outputs on seeded inputs
  reference.py torch              torch antialiased bilinear on seeded planes
  reference.py hunyuan FILE...    the whole Hunyuan3D preprocess of each PNG

The "hunyuan" mode restates, in our words, what Hunyuan3D's
ImageProcessorV2.recenter/load_image (hy3dgen/shapegen/preprocessors.py) and
the DINOv2 ImageEncoder transform (hy3dgen/shapegen/models/conditioner.py) do
to an RGBA picture, so the Go port can be compared pixel for pixel.
"""
import hashlib
import sys

import cv2
import numpy as np
import torch
import torch.nn.functional as F

MASK = (1 << 64) - 1


def seeded_bytes(seed, n):
    """Same generator as ppSeededBytes in the Go tests (64-bit LCG, top byte)."""
    out = bytearray(n)
    x = seed & MASK
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        out[i] = x >> 56
    return bytes(out)


KERNEL_CASES = [
    # (name, interpolation, cn, sw, sh, dw, dh, seed)
    ("area_fast_2x2_rgba", cv2.INTER_AREA, 4, 8, 6, 4, 3, 1),
    ("area_fast_3x2_rgba", cv2.INTER_AREA, 4, 9, 6, 3, 3, 2),
    ("area_fast_1x2_gray", cv2.INTER_AREA, 1, 5, 8, 5, 4, 3),
    ("area_generic_rgba", cv2.INTER_AREA, 4, 10, 7, 4, 3, 4),
    ("area_generic_rgb", cv2.INTER_AREA, 3, 13, 11, 5, 7, 5),
    ("area_generic_large_rgba", cv2.INTER_AREA, 4, 100, 37, 31, 12, 6),
    ("area_up_rgba", cv2.INTER_AREA, 4, 5, 4, 12, 9, 7),
    ("area_up_gray", cv2.INTER_AREA, 1, 7, 3, 20, 9, 8),
    ("area_up_y_only_rgba", cv2.INTER_AREA, 4, 6, 6, 6, 10, 9),
    ("area_mixed_rgba", cv2.INTER_AREA, 4, 10, 6, 7, 9, 10),
    ("area_up_large_rgba", cv2.INTER_AREA, 4, 40, 30, 170, 127, 11),
    ("cubic_tiny_gray", cv2.INTER_CUBIC, 1, 3, 2, 4, 3, 12),
    ("cubic_down_tail_rgb", cv2.INTER_CUBIC, 3, 5, 5, 3, 3, 13),
    ("cubic_odd_rgb", cv2.INTER_CUBIC, 3, 17, 9, 11, 23, 14),
    ("cubic_1px_rgb", cv2.INTER_CUBIC, 3, 1, 1, 4, 4, 15),
    ("cubic_up_512_rgb", cv2.INTER_CUBIC, 3, 300, 300, 512, 512, 16),
    ("cubic_down_512_rgb", cv2.INTER_CUBIC, 3, 700, 700, 512, 512, 17),
]


def kernels():
    for name, interp, cn, sw, sh, dw, dh, seed in KERNEL_CASES:
        a = np.frombuffer(seeded_bytes(seed, sw * sh * cn), np.uint8)
        a = a.reshape((sh, sw) if cn == 1 else (sh, sw, cn))
        out = cv2.resize(a, (dw, dh), interpolation=interp)
        print('{"%s", %s, %d, %d, %d, %d, %d, %d, "%s"},' % (
            name, "ppInterArea" if interp == cv2.INTER_AREA else "ppInterCubic",
            cn, sw, sh, dw, dh, seed, hashlib.sha256(out.tobytes()).hexdigest()))


def torch_planes():
    for sw, sh, dw, dh, seed in [(4, 3, 6, 5, 21), (6, 5, 4, 3, 22)]:
        a = np.frombuffer(seeded_bytes(seed, sw * sh), np.uint8).astype(np.float32) / 255
        t = torch.from_numpy(a.reshape(1, 1, sh, sw).copy())
        out = F.interpolate(t, size=(dh, dw), mode="bilinear", align_corners=False, antialias=True)
        vals = ", ".join("%.9g" % v for v in out.flatten().tolist())
        print("{%d, %d, %d, %d, %d, []float32{%s}}," % (sw, sh, dw, dh, seed, vals))


def hunyuan(path, border_ratio=0.15, canvas=512, size=518):
    rgba = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    H, W, _ = rgba.shape
    side = max(H, W)
    ys, xs = np.nonzero(rgba[..., 3])
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    h, w = y1 - y0, x1 - x0  # Hunyuan3D's extent leaves out the last row and column
    target = int(side * (1 - border_ratio))
    s = target / max(h, w)
    h2, w2 = int(h * s), int(w * s)
    oy, ox = (side - h2) // 2, (side - w2) // 2
    placed = np.zeros((side, side, 4), np.uint8)
    placed[oy:oy + h2, ox:ox + w2] = cv2.resize(rgba[y0:y1, x0:x1], (w2, h2), interpolation=cv2.INTER_AREA)
    m = placed[..., 3:].astype(np.float32) / 255
    white = np.full((side, side, 3), 255, np.uint8)
    rgb = (placed[..., :3] * m + white * (1 - m)).clip(0, 255).astype(np.uint8)
    img = cv2.resize(rgb, (canvas, canvas), interpolation=cv2.INTER_CUBIC)
    x = torch.tensor(img).float() / 255 * 2 - 1
    x = x.permute(2, 0, 1).unsqueeze(0)
    x = (x - (-1)) / (1 - (-1))
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x - mean) / std
    flat = x.flatten()
    idx = [0, 1, 517, 518 * 259 + 259, 518 * 518 + 1000, 2 * 518 * 518 + 518 * 300 + 200, flat.numel() - 1]
    print(path, "bbox", (x0, y0, x1 + 1, y1 + 1), "placed", (ox, oy, w2, h2))
    print('  hash "%s"' % hashlib.sha256(img.tobytes()).hexdigest())
    print("  samples", ", ".join("{%d, %.9g}" % (i, flat[i].item()) for i in idx))


if __name__ == "__main__":
    if sys.argv[1] == "kernels":
        kernels()
    elif sys.argv[1] == "torch":
        torch_planes()
    else:
        for p in sys.argv[2:]:
            hunyuan(p)
