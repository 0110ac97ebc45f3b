"""The tiny paint sets (engines/tiny-paint-2.0, -2.0-turbo, -2.1) and the
oracle sets (engines/tiny-paint-2.0-oracle, -2.1-oracle): Hunyuan3D-Paint's
graphs at toy width with the exact contract of docs/paint-contract.md.

Topology, as in Tencent's UNet2p5DConditionModel on an SD-2.x UNet, only
narrow: a 4-level UNet (latent 8×8 at a 64-pixel view: levels 8², 4², 2², 1²)
with one transformer block in each of the three upper down levels, in the
middle block and in each of the three upper up levels (K = 7 reference
layers, named like Tencent's: down_0_0_0 … mid_0_0 … up_3_0_0). Every main
block runs self-attention (2.1: one set of projections per material) →
reference attention (queries of all N views of a row attend to that row's
reference features; 2.1: the albedo stream's queries, one value/output
projection per material) → multi-view attention over all N·L tokens of a
row (2.1: per material, with 3-D RoPE from the voxel-index inputs) → text
cross-attention to learned tokens (2.0: scaled by text_scale) → (2.1) DINO
cross-attention → feed-forward. The reference UNet has the same trunk and
stores each block's norm1 output: those are paint_ref's outputs.

The oracle sets keep that graph but zero the UNet's output convolution and
add a closed-form noise prediction instead, so that every sampler step
drives the views towards a known image (see OracleNoise and the contract
doc): the VAE is an exact 8×8 average-pool / nearest-upsample with a linear
colour↔latent map, the upscaler is nearest ×4.
"""

import math
from typing import Dict, List

import torch
from torch import nn
import torch.nn.functional as F

from . import paint as P
from .layers import attention


def dims(x: torch.Tensor, *axes: int):
    """Static sizes of x's axes as plain ints: under tracing, sizes are
    traced values, and every reshape built from them costs Shape/Gather/
    Concat nodes (most of a tiny graph's bytes); only the batch stays open."""
    return [int(x.shape[a]) for a in axes]


def split_heads(x, heads):
    t, c = dims(x, 1, 2)
    return x.reshape(-1, t, heads, c // heads).transpose(1, 2)


def merge_heads(x):
    h, t, d = dims(x, 1, 2, 3)
    return x.transpose(1, 2).reshape(-1, t, h * d)

CHANNELS = (16, 16, 16, 32)
HEAD_DIM = 16  # RoPE splits it 6 | 6 | 4 (x | y | z), as 64 splits 24 | 24 | 16
TEXT_TOKENS = 77
TEXT_DIM = 16
TEMB = 32
GROUPS = 4
VIEW_SIZE = 64
VIEWS = 6

# Oracle colour↔latent map: latent channels 0..2 = RGB/SCALE (RGB in [−1, 1]),
# channel 3 = their mean, so that scaled latents (× vae_scale_factor) are the
# colours themselves.
ORACLE_SCALE = P.SD_VAE_SCALE_FACTOR
# The MR views' target: metallic 0, roughness 0.75 (R = metallic, G = roughness, in [0, 1]).
ORACLE_MR = (0.0, 0.75, 0.0)


def _init_(module: nn.Module, std: float = 0.05):
    for name, p in module.named_parameters():
        with torch.no_grad():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.normal_(0.0, 1.0 / math.sqrt(fan_in))
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()


class Attn(nn.Module):
    """q/k/v/out projections (diffusers' Attention layout); extra value and
    output projections per extra material when materials > 1."""

    def __init__(self, dim, ctx_dim=None, extra_values=0):
        super().__init__()
        ctx_dim = ctx_dim or dim
        self.heads = dim // HEAD_DIM
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx_dim, dim, bias=False)
        self.to_v = nn.Linear(ctx_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.extra_v = nn.ModuleList([nn.Linear(ctx_dim, dim, bias=False) for _ in range(extra_values)])
        self.extra_out = nn.ModuleList([nn.Linear(dim, dim) for _ in range(extra_values)])

    def forward(self, x, ctx=None, rope=None):
        ctx = x if ctx is None else ctx
        q, k = split_heads(self.to_q(x), self.heads), split_heads(self.to_k(ctx), self.heads)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        outs = []
        for v_proj, out in zip([self.to_v, *self.extra_v], [self.to_out, *self.extra_out]):
            outs.append(out(merge_heads(attention(q, k, split_heads(v_proj(ctx), self.heads)))))
        return outs if self.extra_v else outs[0]


def rope_tables(voxels: int, head_dim: int = HEAD_DIM):
    """cos/sin tables of 2.1's 3-D RoPE for one voxel resolution: x and y
    share a (head_dim/8·3)-dim table, z a (head_dim/8·2)-dim one, each
    frequency repeated twice (interleaved pairs), θ = 10000."""
    def table(dim):
        freqs = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float32)[: dim // 2] / dim))
        ang = torch.outer(torch.arange(voxels, dtype=torch.float32), freqs)
        pair = lambda t: torch.stack([t, t], dim=-1).flatten(-2)  # noqa: E731
        return pair(ang.cos()), pair(ang.sin())

    return table(head_dim // 8 * 3), table(head_dim // 8 * 2)


def rope_cos_sin(index: torch.Tensor, voxels: int, head_dim: int = HEAD_DIM):
    """voxel indices [B, T, 3] (float, integer values) → cos, sin [B, T, head_dim]
    by gathering from constant tables; indices are clamped into range."""
    (xy_cos, xy_sin), (z_cos, z_sin) = rope_tables(voxels, head_dim)
    i = torch.clamp(torch.round(index), 0, voxels - 1).long()
    cos = torch.cat([xy_cos[i[..., 0]], xy_cos[i[..., 1]], z_cos[i[..., 2]]], dim=-1)
    sin = torch.cat([xy_sin[i[..., 0]], xy_sin[i[..., 1]], z_sin[i[..., 2]]], dim=-1)
    return cos, sin


def apply_rope(x, rope):
    """Rotate interleaved pairs of x [B, H, T, d] by (cos, sin) [B, T, d]."""
    cos, sin = rope[0].unsqueeze(1), rope[1].unsqueeze(1)
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos + rotated * sin


class Block(nn.Module):
    """One Basic2p5DTransformerBlock at toy width (see the module comment)."""

    def __init__(self, dim, version, main):
        super().__init__()
        self.main, self.version = main, version
        m = len(P.MATERIALS[version]) if main else 1
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = nn.ModuleList([Attn(dim) for _ in range(m)])
        if main:
            self.attn_ref = Attn(dim, extra_values=m - 1)
            self.attn_mv = Attn(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attn(dim, TEXT_DIM)
        if main and version == "2.1":
            self.attn_dino = Attn(dim, TEXT_DIM)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x, c):
        """x [rows, L, C] with rows = B·M·N (b, material, view); c: the call's
        context (layout, ref features, text, rope, dino, store)."""
        l, d = dims(x, 1, 2)
        mats, n = c["materials"], c["views"]
        h = self.norm1(x)
        if mats == 1:
            a = self.attn1[0](h)
        else:
            hm = h.reshape(-1, mats, n, l, d)
            a = torch.stack([self.attn1[i](hm[:, i].reshape(-1, l, d)).reshape(-1, n, l, d)
                             for i in range(mats)], dim=1).reshape(-1, l, d)
        x = x + a
        if not self.main:
            c["store"].append(h.reshape(-1, n * l, d))  # '(b n) l c -> b (n l) c'
            x = x + self.attn2(self.norm2(x), c["text"])
            return x + self.ff(self.norm3(x))

        ref = c["ref"][c["layer"]]
        c["layer"] += 1
        hb = h.reshape(-1, mats, n * l, d)
        r = self.attn_ref(hb[:, 0], ref)  # albedo queries attend to the reference
        r = torch.stack(r, dim=1) if mats > 1 else r.unsqueeze(1)
        x = x + (r * c["ref_scale"][:, None, None, None]).reshape(-1, l, d)

        mv_in = h.reshape(-1, n * l, d)  # '(b m n) l c -> (b m) (n l) c'
        rope = c["rope"].get(l) if c["rope"] else None
        x = x + self.attn_mv(mv_in, rope=rope).reshape(-1, l, d)

        h2 = self.norm2(x)
        x = x + self.attn2(h2, c["text"])
        if self.version == "2.1":
            x = x + self.attn_dino(h2, c["dino"])
        return x + self.ff(self.norm3(x))


class ResBlock(nn.Module):
    """ResnetBlock2D; kernel 1 at the 1×1 level, where a 3×3 kernel sees only its centre."""

    def __init__(self, cin, cout, kernel=3):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(GROUPS, cin), nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.temb = nn.Linear(TEMB, cout)
        self.n2, self.c2 = nn.GroupNorm(GROUPS, cout), nn.Conv2d(cout, cout, kernel, padding=kernel // 2)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x))) + self.temb(F.silu(temb))[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class SpatialBlock(nn.Module):
    """Transformer2DModel's shell: GroupNorm, proj_in, the block, proj_out, residual."""

    def __init__(self, dim, version, main):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, dim)
        self.proj_in, self.proj_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.block = Block(dim, version, main)

    def forward(self, x, c):
        d, hh, ww = dims(x, 1, 2, 3)
        t = self.proj_in(self.norm(x).reshape(-1, d, hh * ww).transpose(1, 2))
        t = self.proj_out(self.block(t, c))
        return x + t.transpose(1, 2).reshape(-1, d, hh, ww)


class TinyUNet(nn.Module):
    """The SD-2.x layout at toy size: CrossAttnDown ×3 + Down, mid with
    attention, Up + CrossAttnUp ×3, one resnet (and block) per level."""

    LAYERS = ["down_0_0_0", "down_1_0_0", "down_2_0_0", "mid_0_0", "up_1_0_0", "up_2_0_0", "up_3_0_0"]

    def __init__(self, version, main, in_channels):
        super().__init__()
        ch = CHANNELS
        self.conv_in = nn.Conv2d(in_channels, ch[0], 3, padding=1)
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], TEMB), nn.SiLU(), nn.Linear(TEMB, TEMB))
        self.down_res = nn.ModuleList([ResBlock(ch[max(i - 1, 0)], ch[i], 1 if i == 3 else 3) for i in range(4)])
        self.down_attn = nn.ModuleList([SpatialBlock(ch[i], version, main) for i in range(3)])
        self.downsample = nn.ModuleList([nn.Conv2d(ch[i], ch[i], 3, stride=2, padding=1) for i in range(3)])
        self.mid_res = nn.ModuleList([ResBlock(ch[3], ch[3], 1), ResBlock(ch[3], ch[3], 1)])
        self.mid_attn = SpatialBlock(ch[3], version, main)
        self.up_res = nn.ModuleList([ResBlock(ch[3 - i] * 2, ch[3 - i], 1 if i == 0 else 3) for i in range(4)])
        self.up_attn = nn.ModuleList([SpatialBlock(ch[3 - i], version, main) for i in (1, 2, 3)])
        self.upsample = nn.ModuleList([nn.Conv2d(ch[3 - i], ch[2 - i], 3, padding=1) for i in range(3)])
        self.norm_out = nn.GroupNorm(GROUPS, ch[0])
        self.conv_out = nn.Conv2d(ch[0], P.LATENT_CHANNELS, 3, padding=1)
        self.text = nn.Parameter(torch.zeros(len(P.MATERIALS[version]) if main else 1, TEXT_TOKENS, TEXT_DIM))

    def forward(self, x, temb, c):
        skips = []
        h = self.conv_in(x)
        for i in range(4):
            h = self.down_res[i](h, temb)
            if i < 3:
                h = self.down_attn[i](h, c)
                skips.append(h)
                h = self.downsample[i](h)
            else:
                skips.append(h)
        h = self.mid_attn(self.mid_res[0](h, temb), c)
        h = self.mid_res[1](h, temb)
        for i in range(4):
            h = self.up_res[i](torch.cat([h, skips.pop()], dim=1), temb)
            if i > 0:
                h = self.up_attn[i - 1](h, c)
            if i < 3:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))

    def embed_time(self, t):
        return self.time_mlp(P.sinusoid(t, CHANNELS[0]))


def _layer_shapes(view_size: int) -> Dict[str, tuple]:
    h = view_size // P.VAE_FACTOR
    side = {0: h, 1: h // 2, 2: h // 4, 3: h // 8}
    level = {"down_0_0_0": 0, "down_1_0_0": 1, "down_2_0_0": 2, "mid_0_0": 3,
             "up_1_0_0": 2, "up_2_0_0": 1, "up_3_0_0": 0}
    return {name: (side[level[name]] ** 2, CHANNELS[level[name]]) for name in TinyUNet.LAYERS}


class TinyPaintRef(nn.Module):
    """paint_ref: ref_latents [B, R, 4, h, w] → the reference UNet's norm1
    features per layer [B, R·L_k, C_k], run at t = 0 with its learned tokens."""

    def __init__(self, version):
        super().__init__()
        self.unet = TinyUNet(version, main=False, in_channels=P.LATENT_CHANNELS)

    def forward(self, ref_latents):
        r, ch, h, w = dims(ref_latents, 1, 2, 3, 4)
        x = ref_latents.reshape(-1, ch, h, w)
        temb = self.unet.embed_time(torch.zeros_like(x[:, 0, 0, 0]))
        store: List[torch.Tensor] = []
        c = {"materials": 1, "views": r, "store": store,
             "text": self.unet.text[0] + torch.zeros_like(x[:, :1, :1, 0])}
        self.unet(x, temb, c)  # the tail after the last block is dead code: the export drops it
        return tuple(store)


class TinyPaintUNet(nn.Module):
    """paint_unet of 2.0 or 2.1 (names and shapes: tools/hy3d_export/paint.py)."""

    def __init__(self, version, views=VIEWS, view_size=VIEW_SIZE):
        super().__init__()
        self.version, self.views, self.view_size = version, views, view_size
        self.unet = TinyUNet(version, main=True, in_channels=3 * P.LATENT_CHANNELS)
        if version == "2.0":
            self.camera = nn.Embedding(P.CAMERA_CLASSES, TEMB)
        else:
            self.dino_proj = nn.Linear(P.DINO_DIM, 4 * TEXT_DIM)
            self.dino_norm = nn.LayerNorm(TEXT_DIM)

    def forward(self, sample, normal, position, timestep, *rest):
        n, mats = self.views, len(P.MATERIALS[self.version])
        if self.version == "2.0":
            camera, ref_scale, text_scale, *refs = rest
            rope, dino = None, None
        else:
            ref_scale, dino_in, *more = rest
            rope_idx, refs = more[:4], more[4:]
            dino = self.dino_norm(self.dino_proj(dino_in).reshape(-1, 4 * P.DINO_TOKENS, TEXT_DIM))
            rope = {}
            for k, (g, voxels) in enumerate(P.rope_levels(self.view_size)):
                cos, sin = rope_cos_sin(rope_idx[k], voxels)
                rope[g * g] = (P.repeat_rows(cos, mats), P.repeat_rows(sin, mats))
        h = int(sample.shape[-1])
        x = sample.reshape(-1, mats, n, P.LATENT_CHANNELS, h, h)
        cond = torch.cat([normal, position], dim=2).unsqueeze(1).expand(-1, mats, n, 2 * P.LATENT_CHANNELS, h, h)
        x = torch.cat([x, cond], dim=3).reshape(-1, 3 * P.LATENT_CHANNELS, h, h)
        temb = self.unet.embed_time(P.repeat_rows(timestep, mats * n))
        if self.version == "2.0":
            ids = torch.clamp(torch.round(camera), 0, P.CAMERA_CLASSES - 1 - P.CAMERA_OFFSET).long()
            temb = temb + self.camera(ids.reshape(-1) + P.CAMERA_OFFSET)
            text = P.repeat_rows(self.unet.text[0] * text_scale[:, None, None], n)
        else:
            rows = self.unet.text.unsqueeze(0) + torch.zeros_like(ref_scale)[:, None, None, None]
            text = P.repeat_rows(rows.reshape(-1, TEXT_TOKENS, TEXT_DIM), n)
            dino = P.repeat_rows(dino, mats * n)
        c = {"materials": mats, "views": n, "ref": list(refs), "layer": 0, "ref_scale": ref_scale,
             "text": text, "rope": rope, "dino": dino}
        out = self.unet(x, temb, c)
        return out.reshape([-1] + dims(sample, *range(1, sample.dim())))


class TinyDelight(nn.Module):
    """delight: sample [B, 8, h, w] (scaled noisy latents ‖ unscaled image
    latents), timestep [B] → noise_pred [B, 4, h, w]. A plain UNet."""

    def __init__(self):
        super().__init__()
        self.unet = TinyUNet("2.0", main=False, in_channels=2 * P.LATENT_CHANNELS)

    def forward(self, sample, timestep):
        c = {"materials": 1, "views": 1, "store": [],
             "text": self.unet.text[0] + torch.zeros_like(sample[:, :1, :1, 0])}
        return self.unet(sample, self.unet.embed_time(timestep), c)


class TinyVAEEncoder(nn.Module):
    """image [B, 3, H, W] in [−1, 1] → moments [B, 8, H/8, W/8] (mean ‖ logvar)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.SiLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.SiLU(),
                                 nn.Conv2d(16, 16, 3, 2, 1), nn.SiLU(), nn.Conv2d(16, 2 * P.LATENT_CHANNELS, 1))

    def forward(self, image):
        return self.net(image)


class TinyVAEDecoder(nn.Module):
    """latent [B, 4, h, w] (÷ vae_scale_factor) → image [B, 3, 8h, 8w]."""

    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(P.LATENT_CHANNELS, 16, 3, padding=1)
        self.ups = nn.ModuleList([nn.Conv2d(16, 16, 3, padding=1) for _ in range(3)])
        self.conv_out = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, latent):
        h = self.conv_in(latent)
        for conv in self.ups:
            h = F.silu(conv(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        return self.conv_out(h)


class TinyDINOv2(nn.Module):
    """pixel_values [B, 3, 224, 224] → last_hidden_state [B, 257, 1536]:
    patch-14 embedding, CLS and positions, one ViT layer, a widening Linear."""

    def __init__(self, dim=32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 14, 14)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, P.DINO_TOKENS, dim))
        self.norm1, self.attn = nn.LayerNorm(dim), Attn(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.out = nn.Linear(dim, P.DINO_DIM)

    def forward(self, pixel_values):
        d = self.cls.shape[-1]
        x = self.patch(pixel_values).reshape(-1, d, P.DINO_TOKENS - 1).transpose(1, 2)
        x = torch.cat([self.cls + torch.zeros_like(x[:, :1, :1]), x], dim=1) + self.pos
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.out(x)


class TinyUpscaler(nn.Module):
    """image [B, 3, H, W] (BGR, [0, 1]) → upscaled [B, 3, 4H, 4W] (BGR): conv,
    LeakyReLU, nearest ×2, conv, nearest ×2, conv."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, image):
        h = F.leaky_relu(self.c1(image), 0.2)
        h = F.leaky_relu(self.c2(F.interpolate(h, scale_factor=2.0, mode="nearest")), 0.2)
        return self.c3(F.interpolate(h, scale_factor=2.0, mode="nearest"))


# ---------------------------------------------------------------------------
# the oracle


def oracle_colour_to_latent() -> torch.Tensor:
    """[4, 3]: latent = M·rgb / ORACLE_SCALE (rgb in [−1, 1])."""
    m = torch.zeros(4, 3)
    m[0, 0] = m[1, 1] = m[2, 2] = 1.0
    m[3] = 1.0 / 3
    return m / ORACLE_SCALE


class OracleVAEEncoder(nn.Module):
    """moments = (M·avgpool₈(image), logvar −30): sampling is the mean."""

    def __init__(self):
        super().__init__()
        self.register_buffer("m", oracle_colour_to_latent())

    def forward(self, image):
        pooled = F.avg_pool2d(image, P.VAE_FACTOR)
        mean = torch.einsum("oc,bchw->bohw", self.m, pooled)
        return torch.cat([mean, torch.full_like(mean, -30.0)], dim=1)


class OracleVAEDecoder(nn.Module):
    """image = nearest₈(latent channels 0..2 · ORACLE_SCALE)."""

    def forward(self, latent):
        return F.interpolate(latent[:, :3] * ORACLE_SCALE, scale_factor=float(P.VAE_FACTOR), mode="nearest")


class OracleUpscaler(nn.Module):
    def forward(self, image):
        return F.interpolate(image, scale_factor=float(P.UPSCALE), mode="nearest")


class OracleNoise(nn.Module):
    """ε that makes the sampler's clean-sample estimate equal x0: the UNet
    sees x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (the scheduler's scaled model input), so
    ε = (x_t − √ᾱ_t·x0)/√(1−ᾱ_t), with ᾱ_t of SD-2.x's schedule looked up at
    round(t)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("alphas", P.alphas_cumprod())

    def forward(self, x_t, timestep, x0, per_row):
        i = torch.clamp(torch.round(timestep), 0, self.alphas.numel() - 1).long()
        a = self.alphas[i]
        shape = [-1] + [1] * (x_t.dim() - 1)
        return (x_t - a.sqrt().reshape(shape) * x0) / (1 - a).sqrt().reshape(shape)


class OraclePaintRef(nn.Module):
    """TinyPaintRef whose first output carries, in channels 0..3, the
    reference latent itself (token (y, x) of the first reference view)."""

    def __init__(self, ref: TinyPaintRef):
        super().__init__()
        self.ref = ref

    def forward(self, ref_latents):
        out = list(self.ref(ref_latents))
        r, c, h, w = dims(ref_latents, 1, 2, 3, 4)
        tokens = ref_latents.reshape(-1, r, c, h * w).transpose(2, 3).reshape(-1, r * h * w, c)
        out[0] = torch.cat([tokens, out[0][..., c:]], dim=-1)
        return tuple(out)


class OraclePaintUNet(nn.Module):
    """TinyPaintUNet with its output convolution zeroed, plus OracleNoise
    towards the reference latent (albedo) and the ORACLE_MR latent (MR)."""

    def __init__(self, unet: TinyPaintUNet):
        super().__init__()
        self.unet = unet
        with torch.no_grad():
            unet.unet.conv_out.weight.zero_()
            unet.unet.conv_out.bias.zero_()
        self.noise = OracleNoise()
        rgb = torch.tensor(ORACLE_MR) * 2 - 1
        self.register_buffer("mr_latent", (oracle_colour_to_latent() @ rgb) * ORACLE_SCALE)

    def forward(self, sample, normal, position, timestep, *rest):
        net = self.unet(sample, normal, position, timestep, *rest)
        refs = rest[3:] if self.unet.version == "2.0" else rest[6:]
        h, n, c = int(sample.shape[-1]), self.unet.views, P.LATENT_CHANNELS
        ref = refs[0][:, : h * h, :c].transpose(1, 2).reshape(-1, 1, c, h, h)
        if self.unet.version == "2.0":
            x0 = ref.expand(-1, n, c, h, h)
        else:
            mr = self.mr_latent.reshape(1, 1, c, 1, 1) + torch.zeros_like(ref)
            x0 = torch.stack([ref, mr], dim=1).expand(-1, 2, n, c, h, h)
        return net + self.noise(sample, timestep, x0, None)


class OracleDelight(nn.Module):
    """Delighting that returns the picture: x0 = the image latent (sample
    channels 4..7, unscaled) × vae_scale_factor."""

    def __init__(self, delight: TinyDelight):
        super().__init__()
        self.delight = delight
        with torch.no_grad():
            delight.unet.conv_out.weight.zero_()
            delight.unet.conv_out.bias.zero_()
        self.noise = OracleNoise()

    def forward(self, sample, timestep):
        x0 = sample[:, P.LATENT_CHANNELS:] * P.SD_VAE_SCALE_FACTOR
        return self.delight(sample, timestep) + self.noise(sample[:, : P.LATENT_CHANNELS], timestep, x0, None)


# ---------------------------------------------------------------------------
# sets


class TinyPaintSet:
    """The modules of one tiny (or oracle) paint set."""

    def __init__(self, version: str, oracle: bool = False, seed: int = 0, views: int = VIEWS,
                 view_size: int = VIEW_SIZE):
        self.version, self.oracle = version, oracle
        self.profile = P.Profile(version, views, view_size)
        self.layers = _layer_shapes(view_size)
        torch.manual_seed(seed)
        self.paint_ref = TinyPaintRef(version)
        self.paint_unet = TinyPaintUNet(version, views, view_size)
        for m in (self.paint_ref, self.paint_unet):
            _init_(m)
            # learned tokens: small random, like trained embeddings
            with torch.no_grad():
                m.unet.text.normal_(0.0, 1.0)
        self.vae_encoder, self.vae_decoder = TinyVAEEncoder(), TinyVAEDecoder()
        _init_(self.vae_encoder)
        _init_(self.vae_decoder)
        self.delight = None
        if version == "2.0":
            self.delight = TinyDelight()
            _init_(self.delight)
        else:
            self.dinov2, self.upscaler = TinyDINOv2(), TinyUpscaler()
            _init_(self.dinov2)
            _init_(self.upscaler)
        # a small output: 15–50 sampler steps stay finite
        for unet in [self.paint_unet.unet] + ([self.delight.unet] if self.delight else []):
            with torch.no_grad():
                unet.conv_out.weight.mul_(0.1)
        if oracle:
            self.paint_ref = OraclePaintRef(self.paint_ref)
            self.paint_unet = OraclePaintUNet(self.paint_unet)
            self.vae_encoder, self.vae_decoder = OracleVAEEncoder(), OracleVAEDecoder()
            if self.delight is not None:
                self.delight = OracleDelight(self.delight)
            else:
                self.upscaler = OracleUpscaler()
        for m in self.modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def modules(self):
        ms = [self.paint_ref, self.paint_unet, self.vae_encoder, self.vae_decoder]
        if self.delight is not None:
            ms.append(self.delight)
        if self.version == "2.1":
            ms += [self.dinov2, self.upscaler]
        return ms
