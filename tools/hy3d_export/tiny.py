"""The constructed reference models of engines/tiny, engines/tiny-turbo and
engines/silhouette (the embedded default).

They follow the structure of Hunyuan3D's shape models, only small: a
DINOv2-like patch encoder, a DiT with timestep embedding, adaLN modulation,
self-attention and q/k-normalized cross-attention to the image tokens, and a
ShapeVAE (post_kl + transformer, then a geometry decoder: Fourier features of
the query point → cross-attention to the latent tokens → MLP → one logit).

Random weights would give a field without a surface, so the weights that
matter are constructed; everything else is small random noise that flows
through the same graph without changing the outcome. The construction:

* Image. The conditioner's patch embedding measures how much object each
  14×14 patch holds (objectness = mean over the patch of Σ_c (1 − p_c), p in
  [0, 1]: 0 on white, 3 on black) and its positional embedding writes the
  patch centre (u, v) ∈ [−1, 1]² as (cos u, sin u, cos v, sin v).
* Latent tokens. Each of the L = 8×8 latent tokens (engines/silhouette: 512
  on a 16×16 quincunx, see Design) stands for a blob at a
  fixed place (X, Y, 0): the centres of an 8×8 grid over the image, image
  right = +X, image up = +Y, depth Z = 0. The DiT gives every token the same
  unit-norm (cos X, sin X, cos Y, sin Y) query, so after q/k RMSNorm one
  cross-attention head weighs patches by a von Mises kernel around the
  token's place: its output is the local objectness m. A second head with a
  zero query averages over the whole image: objectness (M) and a channel that
  is 1 in every token of a real picture and 0 in the all-zero unconditional
  embedding (R).
* Denoising. The DiT predicts the clean latent x̂ = sf·(κ·relu(m − m0) − 1 +
  2b)·u (u a fixed ±1 vector; the dead zone m0 keeps CFG from promoting a
  token that holds a sliver of object; b is a default blob on the centre
  tokens that the MLP switches on only for an empty picture: M ≈ 0 and R = 1,
  so the unconditional branch has none and CFG does not pinch the centre of
  every shape) and the graph turns the prediction into a flow velocity,
  v = (x̂ − x)/max(1 − σ, 0.05). Euler from noise at σ = 0 then lands on x̂
  whatever the step count: x_σ = (1 − σ)·noise + σ·x̂ is the exact solution
  while 1 − σ ≥ 0.05, and the seed only leaves a small remainder.
* VAE. vae_latents reads the presence a = u·z/C of each token (z already ÷
  scale_factor) and squashes it with a LayerNorm-built soft sign, a√2/√(1+a²),
  so that classifier-free guidance (which extrapolates presence to ±9) does
  not inflate the shape. Its self-attention blurs presence over about two
  tokens into a depth channel (≈ 1.4 deep inside the silhouette, lower near
  the edge). Features also carry the token's place.
* Geometry. The decoder's query is (cos X, sin X, cos Y, sin Y, cos Z) of the
  point (frequency-1 Fourier features); keys are the tokens' places, so the
  attention logit of token j is β(cos(X−X_j) + cos(Y−Y_j) + λ_j·(cos Z − 1))
  with λ_j falling with the token's depth, so the shape is thicker in the
  middle. A learned null token with the constant logit β(2 − δ) and value −1
  wins far from every token and at |Z| large, which closes the surface well
  inside the box.
  The attention output o is a smooth vote: > 0 near present tokens, < 0
  near absent ones and in the background. ln_post + the output projection map
  o to the logit through another monotone soft sign, so the zero level set is
  o's and |∇logit| is well away from 0 there.

The result is an inflated, rounded version of the picture's silhouette (8×8
tokens: coarse, but different pictures give clearly different shapes: a disc
gives a pillow, a ring a torus; the silhouette set's 512 tokens, 0.075 apart
instead of 0.21, follow the outline closely). An empty (white) picture gives the default
blob: a small lump (≈ 0.4 across) at the centre. The seed changes the mesh
only slightly (the sampler lands on x̂ and noise only leaks in through the
small random weights).
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

from .layers import MLP, CrossAttention, SelfAttention, attention, timestep_embedding

IMAGE_SIZE = 518
PATCH = 14
GRID = IMAGE_SIZE // PATCH  # 37
COND_TOKENS = GRID * GRID + 1  # 1370, DINOv2's patch tokens plus CLS
COND_DIM = 64
LATENT_CHANNELS = 64
DIT_HIDDEN = 64
DIT_HEADS = 4
FEATURE_WIDTH = 32
QUERY_WIDTH = 16
FOURIER_FREQS = (1.0, 2.0)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Hunyuan3D-2.0's scale factor: not 1, so the pipeline's division matters.
SCALE_FACTOR = 0.99909
SCALE_FACTOR_TURBO = 1.01881  # 2mini's, for the turbo set

# Construction constants (see the module comment).
PRESENCE_GAIN = 1.5  # κ: presence a = κ·relu(m − m0) − 1
PRESENCE_DEAD_ZONE = 0.3  # m0
EMPTY_THRESHOLD = 0.05  # mean objectness below which the default blob appears
VAE_BLUR_KERNEL = 20.0  # β of the VAE's depth blur: σ ≈ 0.22, one token spacing
LOGIT_GAIN = 3.0
MIN_DENOM = 0.05  # v = (x̂ − x)/max(1 − σ, MIN_DENOM)


@dataclass(frozen=True)
class Design:
    """What differs between the constructed sets: where the latent tokens
    sit and the kernel widths that go with their spacing.

    layout "grid" puts side×side tokens at the centres of a grid over the
    image; "quincunx" puts two side×side grids, offset by half a cell both
    ways (a square lattice turned 45°, √2 finer than one grid). The kernels
    are β of a von Mises kernel, σ ≈ 1/√β in image units."""

    layout: str = "grid"
    side: int = 8
    dit_kernel: float = 100.0  # the DiT's image kernel: σ ≈ 0.1
    geo_kernel: float = 60.0  # the geometry decoder's: σ ≈ 0.13
    geo_depth: tuple = (1.4, 0.85)  # λ = λ0 − λ1·depth: weight of (cos Z − 1), smaller = thicker
    geo_reach: float = 0.006  # δ: null logit = β(2 − δ)
    dit_depth: int = 2

    @property
    def tokens(self) -> int:
        return self.side * self.side * (2 if self.layout == "quincunx" else 1)

    def token_places(self):
        """(X, Y) of the latent tokens, image right = +X, image up = +Y."""
        half = 0.85
        cell = 2 * half / self.side
        offsets = {"grid": (0.5,), "quincunx": (0.25, 0.75)}[self.layout]
        xs, ys = [], []
        for off in offsets:
            coords = [-half + cell * (i + off) for i in range(self.side)]
            for r in range(self.side):
                for c in range(self.side):
                    xs.append(coords[c])
                    ys.append(coords[self.side - 1 - r])
        return torch.tensor(xs), torch.tensor(ys)


# engines/tiny and engines/tiny-turbo: 8×8 tokens, the fast test sets.
TINY = Design()
# engines/silhouette: Hunyuan3D-2mini's 512 latent tokens as a 16×16
# quincunx (nearest tokens 0.075 apart instead of 0.21), kernels narrowed to
# match, the geometry kernel's depth weights scaled so the inflation keeps
# its thickness, and one DiT block (the construction uses only the first).
SILHOUETTE = Design(layout="quincunx", side=16, dit_kernel=400.0, geo_kernel=400.0,
                    geo_depth=(1.4 * 60 / 400, 0.85 * 60 / 400), geo_reach=0.0009, dit_depth=1)


def patch_places():
    """(u, v) of the conditioner's patch centres, row-major, image up = +v."""
    idx = torch.arange(GRID, dtype=torch.float32)
    centre = (idx + 0.5) / GRID * 2 - 1
    v = (-centre)[:, None].expand(GRID, GRID).reshape(-1)
    u = centre[None, :].expand(GRID, GRID).reshape(-1)
    return u, v


def _trig(x, y):
    return torch.stack([torch.cos(x), torch.sin(x), torch.cos(y), torch.sin(y)], dim=-1)


def _noise_(t: torch.Tensor, std: float):
    with torch.no_grad():
        t.normal_(0.0, std)
    return t


def _small_(module: nn.Module, std: float):
    """Small random matrices, zero vectors (biases, norm weights, gains):
    the undesigned part of every construction starts from here."""
    for p in module.parameters():
        if p.dim() > 1:
            _noise_(p, std)
        else:
            with torch.no_grad():
                p.zero_()
    return module


# ---------------------------------------------------------------------------
# conditioner


class ViTBlock(nn.Module):
    """DINOv2 block: pre-norm attention and MLP, each behind a LayerScale."""

    def __init__(self, dim, heads, mlp_ratio=2, ls_init=0.01):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads)
        self.ls1 = nn.Parameter(torch.full((dim,), ls_init))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, dim * mlp_ratio)
        self.ls2 = nn.Parameter(torch.full((dim,), ls_init))

    def forward(self, x):
        x = x + self.ls1 * self.attn(self.norm1(x))
        return x + self.ls2 * self.mlp(self.norm2(x))


class TinyConditioner(nn.Module):
    """image [B,3,518,518] (ImageNet-normalized) → cond [B,1370,D].

    Like DINOv2's last hidden state, minus the final LayerNorm: the tiny DiT
    reads objectness as an absolute value, which a per-token norm would erase.
    """

    OBJ = 0  # objectness channel
    POS = slice(1, 5)  # (cos u, sin u, cos v, sin v)
    ONE = 5  # 1 in every token: tells a picture from the all-zero unconditional embedding
    CONSTRUCTED_CHANNELS = 6  # channels 0..5 carry the constructed weights above, the rest small noise

    def __init__(self, dim=COND_DIM, depth=2, heads=4):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, PATCH, PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, COND_TOKENS, dim))
        self.blocks = nn.ModuleList([ViTBlock(dim, heads) for _ in range(depth)])

    def forward(self, image):
        x = self.patch_embed(image).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return x

    @torch.no_grad()
    def construct(self):
        d = self.cls_token.shape[-1]
        for blk in self.blocks:
            ls = (blk.ls1.clone(), blk.ls2.clone())
            _small_(blk, 0.02)
            blk.ls1.copy_(ls[0])
            blk.ls2.copy_(ls[1])
            blk.norm1.weight.fill_(1)
            blk.norm2.weight.fill_(1)
        _noise_(self.patch_embed.weight, 0.002)
        self.patch_embed.bias.zero_()
        _noise_(self.cls_token, 0.02)
        _noise_(self.pos_embed, 0.02)
        # objectness: Σ_c (1 − p_c) averaged over the patch, p = x·std + mean.
        w = self.patch_embed.weight
        w[: self.CONSTRUCTED_CHANNELS].zero_()
        for c in range(3):
            w[self.OBJ, c] = -IMAGENET_STD[c] / (PATCH * PATCH)
        self.patch_embed.bias[self.OBJ] = sum(1 - m for m in IMAGENET_MEAN)
        u, v = patch_places()
        self.cls_token[0, 0, : self.CONSTRUCTED_CHANNELS] = 0
        self.pos_embed[0, :, : self.CONSTRUCTED_CHANNELS] = 0
        self.pos_embed[0, 1:, self.POS] = _trig(u, v)
        self.pos_embed[0, :, self.ONE] = 1
        assert d > self.CONSTRUCTED_CHANNELS


# ---------------------------------------------------------------------------
# DiT


class MLPEmbedder(nn.Module):
    def __init__(self, in_dim, hidden):
        super().__init__()
        self.in_layer = nn.Linear(in_dim, hidden)
        self.silu = nn.SiLU()
        self.out_layer = nn.Linear(hidden, hidden)

    def forward(self, x):
        return self.out_layer(self.silu(self.in_layer(x)))


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Hunyuan3D-2.1-style block: adaLN self-attention, cross-attention to
    the image tokens (q/k RMSNorm), adaLN MLP."""

    def __init__(self, dim, heads, mlp_ratio=2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn1 = SelfAttention(dim, heads, qk_norm=True)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn2 = CrossAttention(dim, dim, heads, qk_norm=True)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(dim, dim * mlp_ratio)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, ctx, vec):
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN(vec).chunk(6, dim=-1)
        x = x + g1[:, None] * self.attn1(modulate(self.norm1(x), sh1, sc1))
        x = x + self.attn2(self.norm2(x), ctx)
        return x + g2[:, None] * self.mlp(modulate(self.norm3(x), sh2, sc2))


class TinyDiT(nn.Module):
    """latents [B,L,C], timestep [B] (σ), cond [B,T,D] (, guidance [B]) →
    velocity [B,L,C].

    The network predicts the clean latent and the graph converts it to the
    flow velocity the sampler integrates (see the module comment)."""

    # hidden-stream channels of the construction
    POS = slice(0, 8)  # ρ·(cos X, sin X, cos Y, sin Y, and their negatives)
    LOCAL = (8, 9)  # ±μ·m
    GLOBAL = (10, 11)  # ±μ·M
    BLOB = (12, 13)  # ±μ·b
    PRESENT = (14, 15)  # ±μ·relu(m − m0)
    REAL = (16, 17)  # ±μ·R: 1 for a picture, 0 for the zero unconditional embedding
    FILL = slice(18, None)  # constant ±1: keeps the LayerNorms near-linear
    RHO = 2.0
    MU = 0.3

    def __init__(self, guidance_embed=False, dim=DIT_HIDDEN, heads=DIT_HEADS, design=TINY,
                 channels=LATENT_CHANNELS, cond_dim=COND_DIM, scale_factor=SCALE_FACTOR):
        super().__init__()
        self.design = design
        depth = design.dit_depth
        self.guidance_embed = guidance_embed
        self.scale_factor = scale_factor
        self.latent_in = nn.Linear(channels, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, design.tokens, dim))
        self.time_in = MLPEmbedder(256, dim)
        self.guidance_in = MLPEmbedder(256, dim) if guidance_embed else None
        self.cond_in = nn.Linear(cond_dim, dim)
        self.blocks = nn.ModuleList([DiTBlock(dim, heads) for _ in range(depth)])
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_mod = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.final = nn.Linear(dim, channels)
        self.register_buffer("presence_dir", torch.zeros(channels))

    def forward(self, latents, timestep, cond, guidance=None):
        vec = self.time_in(timestep_embedding(timestep, 256, 1000.0))
        if self.guidance_in is not None:
            vec = vec + self.guidance_in(timestep_embedding(guidance, 256, 1000.0))
        h = self.latent_in(latents) + self.pos_embed
        ctx = self.cond_in(cond)
        for blk in self.blocks:
            h = blk(h, ctx, vec)
        shift, scale = self.final_mod(vec).chunk(2, dim=-1)
        x0 = self.final(modulate(self.norm_final(h), shift, scale))
        denom = torch.clamp(1.0 - timestep, min=MIN_DENOM)
        return (x0 - latents) / denom[:, None, None]

    @torch.no_grad()
    def construct(self, presence_dir: torch.Tensor):
        dim = self.pos_embed.shape[-1]
        c_obj, c_pos = TinyConditioner.OBJ, TinyConditioner.POS
        self.presence_dir.copy_(presence_dir)
        _small_(self, 0.02)
        _noise_(self.latent_in.weight, 0.01 / math.sqrt(self.latent_in.in_features))
        # The designed channels are read with large gains (the MLP's switches,
        # the final layer), so neither x nor the timestep's modulation may
        # leak into them: shifts and scales are zero there, x enters the filler.
        designed = self.FILL.start
        self.latent_in.weight[:designed].zero_()
        for blk in self.blocks:
            w = blk.adaLN[1].weight.view(6, dim, dim)
            for i in (0, 1, 3, 4):  # shift1, scale1, shift2, scale2
                w[i, :designed].zero_()
        self.final_mod[1].weight.view(2, dim, dim)[:, :designed].zero_()
        for blk in self.blocks:
            blk.attn1.q_norm.weight.fill_(1)
            blk.attn1.k_norm.weight.fill_(1)
            blk.attn2.q_norm.weight.fill_(1)
            blk.attn2.k_norm.weight.fill_(1)
            # adaLN biases: gates open (1) for the MLP, ajar for self-attention.
            b = blk.adaLN[1].bias.view(6, dim)
            b.zero_()
            b[2].fill_(0.05)
            b[5].fill_(1.0)
        # token places and the constant filler
        xs, ys = self.design.token_places()
        pos = torch.zeros(self.design.tokens, dim)
        trig = _trig(xs, ys)
        pos[:, self.POS] = self.RHO * torch.cat([trig, -trig], dim=-1)
        fill = torch.ones(dim - self.FILL.start)
        fill[1::2] = -1
        pos[:, self.FILL] = fill
        self.pos_embed[0] = pos
        std = math.sqrt((4 * self.RHO**2 + fill.numel()) / dim)  # LayerNorm's std at m = M = b = 0

        # cond_in copies objectness and the patch places into the first channels.
        ci = self.cond_in
        ci.weight[:6].zero_()
        ci.bias[:6].zero_()
        ci.weight[5, TinyConditioner.ONE] = 1.0
        ci.weight[0:4, c_pos] = torch.eye(4)
        ci.weight[4, c_obj] = 1.0

        # block 0, cross-attention: head 0 local (kernel), head 1 global (uniform).
        ca = self.blocks[0].attn2
        hd = dim // DIT_HEADS
        for lin in (ca.to_q, ca.to_k, ca.to_v):
            lin.weight[: 2 * hd].zero_()
            lin.bias[: 2 * hd].zero_()
        ca.to_q.weight[0:4, 0:4] = torch.eye(4) * std / self.RHO
        ca.to_k.weight[0:4, 0:4] = torch.eye(4)
        ca.to_v.weight[0, 4] = 1.0
        ca.to_v.weight[hd, 4] = 1.0
        ca.to_v.weight[hd + 1, 5] = 1.0
        gamma = math.sqrt(self.design.dit_kernel / 2)  # logit = 2γ²(cos ΔX + cos ΔY)
        ca.q_norm.weight[0:4] = gamma
        ca.k_norm.weight[0:4] = gamma
        # Only the designed paths write into the designed channels.
        for blk in self.blocks:
            for lin in (blk.attn1.proj, blk.attn2.proj, blk.mlp.fc2):
                lin.weight[: self.FILL.start].zero_()
                lin.bias[: self.FILL.start].zero_()
        ca.proj.weight[:, : 2 * hd].zero_()
        ca.proj.weight[self.LOCAL[0], 0] = self.MU
        ca.proj.weight[self.LOCAL[1], 0] = -self.MU
        ca.proj.weight[self.GLOBAL[0], hd] = self.MU
        ca.proj.weight[self.GLOBAL[1], hd] = -self.MU
        ca.proj.weight[self.REAL[0], hd + 1] = self.MU
        ca.proj.weight[self.REAL[1], hd + 1] = -self.MU

        mlp = self.blocks[0].mlp
        k = 100.0
        mlp.fc2.weight[:, :2] = 0
        # MLP unit 0: presence with a dead zone, p = relu(m − m0). Without it
        # CFG, which extrapolates from the unconditional −1, would turn a
        # token that holds a sliver of object into a present one.
        mlp.fc1.weight[0].zero_()
        mlp.fc1.weight[0, self.LOCAL[0]] = k * std / self.MU
        mlp.fc1.bias[0] = -k * PRESENCE_DEAD_ZONE
        mlp.fc2.weight[self.PRESENT[0], 0] = self.MU / k
        mlp.fc2.weight[self.PRESENT[1], 0] = -self.MU / k
        # MLP unit 1: default blob b = relu((M0 − M) + η·(cos X + cos Y − 2 + r0²/2) + (R − 1))/peak,
        # on where the picture (R = 1, not the zero unconditional embedding,
        # whose blob would pinch every shape under CFG) is empty (M ≈ 0) and
        # (cos X + cos Y) says the token is central.
        r0sq = 0.06
        xs_abs = float(xs.abs().min())
        centre = 0.5 * (r0sq - 2 * xs_abs**2)  # the centre tokens' margin, ≈ (r0² − r²)/2
        eta = EMPTY_THRESHOLD / centre
        peak = 2 * EMPTY_THRESHOLD  # z/k at the centre tokens when M = 0
        mlp.fc1.weight[1].zero_()
        mlp.fc1.weight[1, self.GLOBAL[0]] = -k * std / self.MU
        mlp.fc1.weight[1, 0] = k * eta * std / self.RHO
        mlp.fc1.weight[1, 2] = k * eta * std / self.RHO
        mlp.fc1.weight[1, self.REAL[0]] = k * std / self.MU
        mlp.fc1.bias[1] = k * (EMPTY_THRESHOLD + eta * (r0sq / 2 - 2) - 1)
        mlp.fc2.weight[self.BLOB[0], 1] = self.MU / (k * peak)
        mlp.fc2.weight[self.BLOB[1], 1] = -self.MU / (k * peak)

        # final layer: x̂ = sf·u·(κ·relu(m − m0) − 1 + 2b)
        fin = self.final
        sf_u = self.scale_factor * presence_dir
        fin.weight[:, : self.FILL.start].zero_()
        fin.weight[:, self.PRESENT[0]] = sf_u * PRESENCE_GAIN * std / self.MU
        fin.weight[:, self.BLOB[0]] = sf_u * 2.0 * std / self.MU
        fin.bias.copy_(-sf_u)


# ---------------------------------------------------------------------------
# VAE


class VAEBlock(nn.Module):
    def __init__(self, dim, heads=2, mlp_ratio=4):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, qk_norm=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TinyVAELatents(nn.Module):
    """latents [B,L,C] (÷ scale_factor) → features [B,L,W]: post_kl, a
    learned place embedding, one transformer block.

    The block's self-attention blurs presence over about two tokens (depth:
    ≈ 1 deep inside the silhouette, lower near its edge) so that the decoder
    can make the shape thicker in the middle: inflated, not extruded."""

    POS = slice(0, 8)
    RAW = (8, 9)  # ±a
    PRESENCE = (10, 11)  # ±softsign(a)
    DEPTH = (12, 13)  # ±μ·(presence blurred over neighbouring tokens)
    CONSTRUCTED_CHANNELS = 14  # channels 0..13 carry the constructed weights above, the rest small noise
    MU = 0.3

    def __init__(self, channels=LATENT_CHANNELS, width=FEATURE_WIDTH, design=TINY):
        super().__init__()
        self.design = design
        self.post_kl = nn.Linear(channels, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, design.tokens, width))
        self.block = VAEBlock(width)

    def forward(self, latents):
        return self.block(self.post_kl(latents) + self.pos_embed)

    @torch.no_grad()
    def construct(self, presence_dir: torch.Tensor):
        width = self.pos_embed.shape[-1]
        c = presence_dir.numel()
        _small_(self, 0.01)
        _noise_(self.post_kl.weight, 0.003 / math.sqrt(c))
        self.block.ln_1.weight.fill_(1)
        self.block.ln_2.weight.fill_(1)
        pk = self.post_kl
        pk.weight[: self.CONSTRUCTED_CHANNELS].zero_()
        pk.weight[self.RAW[0]] = presence_dir / c
        pk.weight[self.RAW[1]] = -presence_dir / c
        xs, ys = self.design.token_places()
        trig = _trig(xs, ys)
        rho = math.sqrt(0.5)  # 4ρ² = 2: LayerNorm then computes 4a/√(1+a²)
        self.pos_embed.zero_()
        self.pos_embed[0, :, self.POS] = rho * torch.cat([trig, -trig], dim=-1)
        for lin in (self.block.attn.proj, self.block.mlp.fc2):
            lin.weight[: self.CONSTRUCTED_CHANNELS].zero_()
            lin.bias[: self.CONSTRUCTED_CHANNELS].zero_()
        # attention head 0: kernel over token places (q/k RMSNorm makes the
        # trig vectors unit length whatever LayerNorm did), value = LN(x)_a·√2/4,
        # the same soft sign of a as below.
        attn = self.block.attn
        hd = width // 2
        qkv = attn.qkv
        for part in range(3):
            qkv.weight[part * width: part * width + hd].zero_()
            qkv.bias[part * width: part * width + hd].zero_()
        qkv.weight[0:4, 0:4] = torch.eye(4)
        qkv.weight[width: width + 4, 0:4] = torch.eye(4)
        qkv.weight[2 * width, self.RAW[0]] = math.sqrt(2) / 4
        gamma = math.sqrt(VAE_BLUR_KERNEL / 2)
        attn.q_norm.weight[0:4] = gamma
        attn.k_norm.weight[0:4] = gamma
        attn.proj.weight[:, :hd] = 0
        attn.proj.weight[self.DEPTH[0], 0] = self.MU
        attn.proj.weight[self.DEPTH[1], 0] = -self.MU
        # MLP unit 0 passes LN(x)_a = 4a/√(1+a²) through GELU's linear range.
        w, off = 0.5, 5.0
        mlp = self.block.mlp
        mlp.fc1.weight[0].zero_()
        mlp.fc1.weight[0, self.RAW[0]] = w
        mlp.fc1.bias[0] = off
        mlp.fc2.weight[:, 0] = 0
        gain = math.sqrt(2) / 4 / w
        mlp.fc2.weight[self.PRESENCE[0], 0] = gain
        mlp.fc2.weight[self.PRESENCE[1], 0] = -gain
        mlp.fc2.bias[self.PRESENCE[0]] = -gain * off
        mlp.fc2.bias[self.PRESENCE[1]] = gain * off
        assert width > self.CONSTRUCTED_CHANNELS


class FourierEmbedder(nn.Module):
    """[x, sin(f·x), cos(f·x)] per coordinate and frequency (Hunyuan3D's
    layout: the frequency index runs fastest), without π: the tiny decoder
    needs frequency 1 to be monotone across the whole box."""

    def __init__(self, freqs=FOURIER_FREQS):
        super().__init__()
        self.register_buffer("freqs", torch.tensor(freqs, dtype=torch.float32))

    @property
    def out_dim(self):
        return 3 + 6 * self.freqs.numel()

    def forward(self, x):
        e = (x[..., None] * self.freqs).flatten(-2)
        return torch.cat([x, torch.sin(e), torch.cos(e)], dim=-1)

    def index(self, kind, coord, freq=0):
        n = self.freqs.numel()
        base = {"sin": 3, "cos": 3 + 3 * n}[kind]
        return base + coord * n + freq


class TinyGeometryDecoder(nn.Module):
    """queries [B,Q,3], features [B,L,W] → logits [B,Q]."""

    Q_POS = slice(0, 12)  # (cos X, sin X, cos Y, sin Y, cos Z, sin Z) and negatives
    O = (12, 13)  # ±o, the attention vote
    HEAD = 6

    def __init__(self, width=FEATURE_WIDTH, qwidth=QUERY_WIDTH, design=TINY):
        super().__init__()
        self.design = design
        self.fourier = FourierEmbedder()
        self.query_proj = nn.Linear(self.fourier.out_dim, qwidth)
        self.ln_1 = nn.LayerNorm(qwidth, eps=1e-6)
        self.to_q = nn.Linear(qwidth, self.HEAD)
        self.to_k = nn.Linear(width, self.HEAD)
        self.to_v = nn.Linear(width, self.HEAD)
        self.null_k = nn.Parameter(torch.zeros(1, 1, self.HEAD))
        self.null_v = nn.Parameter(torch.zeros(1, 1, self.HEAD))
        self.proj = nn.Linear(self.HEAD, qwidth)
        self.ln_2 = nn.LayerNorm(qwidth, eps=1e-6)
        self.mlp = MLP(qwidth, qwidth // 2)
        self.ln_post = nn.LayerNorm(qwidth, eps=1e-6)
        self.output_proj = nn.Linear(qwidth, 1)

    def forward(self, queries, features):
        x = self.query_proj(self.fourier(queries))
        b = features.shape[0]
        k = torch.cat([self.to_k(features), self.null_k.expand(b, -1, -1)], dim=1)
        v = torch.cat([self.to_v(features), self.null_v.expand(b, -1, -1)], dim=1)
        x = x + self.proj(attention(self.to_q(self.ln_1(x)), k, v))
        x = x + self.mlp(self.ln_2(x))
        return self.output_proj(self.ln_post(x)).squeeze(-1)

    @torch.no_grad()
    def construct(self):
        qwidth = self.query_proj.out_features
        _small_(self, 0.01)
        for ln in (self.ln_1, self.ln_2, self.ln_post):
            ln.weight.fill_(1)
        fe = self.fourier
        qp = self.query_proj
        qp.weight.zero_()
        for i, coord in enumerate(range(3)):
            qp.weight[2 * i, fe.index("cos", coord)] = 1
            qp.weight[2 * i + 1, fe.index("sin", coord)] = 1
            qp.weight[6 + 2 * i, fe.index("cos", coord)] = -1
            qp.weight[6 + 2 * i + 1, fe.index("sin", coord)] = -1
        ln_std = math.sqrt(6 / qwidth)
        scale = math.sqrt(self.HEAD)  # undoes attention's 1/√d
        beta, (lam0, lam1) = self.design.geo_kernel, self.design.geo_depth
        self.to_q.weight.zero_()
        self.to_q.bias.zero_()
        for i in range(5):  # cos X, sin X, cos Y, sin Y, cos Z
            self.to_q.weight[i, i] = ln_std
        self.to_q.bias[5] = 1.0
        rho = math.sqrt(0.5)
        self.to_k.weight.zero_()
        self.to_k.bias.zero_()
        for i in range(4):
            self.to_k.weight[i, i] = beta * scale / rho
        # token j: β·λ_j·(cos Z − 1) with λ_j = λ0 − λ1·depth_j
        depth = TinyVAELatents.DEPTH[0]
        mu = TinyVAELatents.MU
        self.to_k.bias[4] = beta * lam0 * scale
        self.to_k.weight[4, depth] = -beta * lam1 * scale / mu
        self.to_k.bias[5] = -beta * lam0 * scale
        self.to_k.weight[5, depth] = beta * lam1 * scale / mu
        self.null_k.zero_()
        self.null_k[0, 0, 5] = beta * (2 - self.design.geo_reach) * scale
        self.to_v.weight.zero_()
        self.to_v.bias.zero_()
        self.to_v.weight[0, TinyVAELatents.PRESENCE[0]] = 1.0
        self.null_v.zero_()
        self.null_v[0, 0, 0] = -1.0
        self.proj.weight.zero_()
        self.proj.bias.zero_()
        self.proj.weight[self.O[0], 0] = 1.0
        self.proj.weight[self.O[1], 0] = -1.0
        self.mlp.fc2.weight[:14].zero_()
        self.mlp.fc2.bias.zero_()
        self.output_proj.weight.zero_()
        self.output_proj.bias.zero_()
        self.output_proj.weight[0, self.O[0]] = LOGIT_GAIN


# ---------------------------------------------------------------------------
# model sets


class TinySet:
    """The four constructed modules of one tiny model set."""

    def __init__(self, turbo: bool = False, seed: int = 0, design: Design = TINY):
        g = torch.Generator().manual_seed(seed)
        presence_dir = torch.where(torch.rand(LATENT_CHANNELS, generator=g) < 0.5, -1.0, 1.0)
        torch.manual_seed(seed + 1)
        self.turbo = turbo
        self.design = design
        self.scale_factor = SCALE_FACTOR_TURBO if turbo else SCALE_FACTOR
        self.conditioner = TinyConditioner()
        self.conditioner.construct()
        torch.manual_seed(seed + 2)
        self.dit = TinyDiT(guidance_embed=turbo, scale_factor=self.scale_factor, design=design)
        self.dit.construct(presence_dir)
        torch.manual_seed(seed + 3)
        self.vae_latents = TinyVAELatents(design=design)
        self.vae_latents.construct(presence_dir)
        torch.manual_seed(seed + 4)
        self.vae_geometry = TinyGeometryDecoder(design=design)
        self.vae_geometry.construct()
        for m in self.modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def modules(self):
        return [self.conditioner, self.dit, self.vae_latents, self.vae_geometry]
