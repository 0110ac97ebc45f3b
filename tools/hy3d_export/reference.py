"""A small PyTorch rendition of hy3d's pipeline over a model set's modules:
synthetic pictures, the flow-matching sampler (CFG or embedded guidance) and
dense field decoding. The generator uses it to report what the tiny models
do, and the tests use it to check that they yield closed surfaces that
depend on the picture.
"""

import math

import torch

from .tiny import IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD

PICTURES = ("disc", "square", "ell", "ring", "white")


def picture(kind: str, size: int = IMAGE_SIZE, colour=(0.8, 0.1, 0.1)) -> torch.Tensor:
    """A [3,size,size] picture in [0,1]: a shape on white filling the central
    85 % like Hunyuan3D's recentering (border ratio 0.15) leaves it."""
    idx = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y = -idx[:, None].expand(size, size)
    x = idx[None, :].expand(size, size)
    r = 0.85
    if kind == "disc":
        mask = x**2 + y**2 <= r**2
    elif kind == "square":
        mask = (x.abs() <= r) & (y.abs() <= r)
    elif kind == "ell":
        mask = ((x.abs() <= r) & (y.abs() <= r)) & ((x <= -0.2) | (y <= -0.2))
    elif kind == "ring":
        rr = x**2 + y**2
        mask = (rr <= r**2) & (rr >= 0.45**2)
    elif kind == "white":
        mask = torch.zeros(size, size, dtype=torch.bool)
    else:
        raise ValueError(kind)
    img = torch.ones(3, size, size)
    for c in range(3):
        img[c][mask] = colour[c]
    return img


def normalize(img: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (img - mean) / std


def flow_schedule(steps: int):
    if steps == 1:
        return [0.0, 1.0]
    return [i / (steps - 1) for i in range(steps - 1)] + [1.0, 1.0]


def consistency_schedule(steps: int, pcm: int):
    ratio = 1000 // pcm
    out = []
    for i in range(steps):
        k = math.floor(i * pcm / steps)
        t = 0 if k == 0 else k * ratio - 1
        out.append(t / 999)
    return out + [1.0]


@torch.no_grad()
def sample(tiny, image: torch.Tensor, steps: int = 30, guidance: float = 5.0, seed: int = 0,
           consistency: bool = False, pcm: int = 100) -> torch.Tensor:
    """Latents [1,L,C] for one normalized image [3,518,518]."""
    cond = tiny.conditioner(image[None])
    l, c = tiny.dit.pos_embed.shape[1], tiny.dit.final.out_features
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, l, c, generator=g)
    sig = consistency_schedule(steps, pcm) if consistency else flow_schedule(steps)
    for i in range(len(sig) - 1):
        t = torch.full((1,), sig[i])
        if tiny.dit.guidance_in is not None:
            v = tiny.dit(x, t, cond, torch.full((1,), guidance))
        else:
            vv = tiny.dit(x.repeat(2, 1, 1), t.repeat(2), torch.cat([cond, torch.zeros_like(cond)]))
            v = vv[1:] + guidance * (vv[:1] - vv[1:])
        x = x + (sig[i + 1] - sig[i]) * v
    return x


def grid_points(res: int, bounds: float = 1.01) -> torch.Tensor:
    """(res+1)³ points over [−bounds, bounds]³, x fastest... in (i,j,k) order."""
    a = torch.linspace(-bounds, bounds, res + 1)
    gx, gy, gz = torch.meshgrid(a, a, a, indexing="ij")
    return torch.stack([gx, gy, gz], dim=-1).reshape(-1, 3)


@torch.no_grad()
def decode_field(tiny, latents: torch.Tensor, res: int = 64, chunk: int = 65536) -> torch.Tensor:
    """Logits on the (res+1)³ grid, shaped [res+1]*3 (index order x, y, z)."""
    feats = tiny.vae_latents(latents / tiny.scale_factor)
    pts = grid_points(res)
    out = [tiny.vae_geometry(pts[i:i + chunk][None], feats)[0] for i in range(0, pts.shape[0], chunk)]
    return torch.cat(out).reshape(res + 1, res + 1, res + 1)


def field_stats(field: torch.Tensor) -> dict:
    boundary = torch.cat([
        field[0].flatten(), field[-1].flatten(), field[:, 0].flatten(),
        field[:, -1].flatten(), field[:, :, 0].flatten(), field[:, :, -1].flatten(),
    ])
    return {
        "occupied": float((field > 0).float().mean()),
        "min": float(field.min()),
        "max": float(field.max()),
        "boundary_max": float(boundary.max()),
    }
