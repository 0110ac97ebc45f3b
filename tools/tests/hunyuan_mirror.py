"""Small modules with the structure of Tencent's Hunyuan3D shape models,
written for hy3d's tests of tools/hy3d_export/hunyuan.py (the real classes
need the operator's checkout and weights). Their module and attribute layout
follows Tencent's classes as checked in docs/operators.md ("Checked against
Hunyuan3D's code"): 2.0/2mini's Hunyuan3DDiT (double- and single-stream
blocks, LastLayer), 2.1's HunYuanDiTPlain (time token, U-Net skips, MoE in
the last blocks) and the ShapeVAE both share. What they reproduce, because
the exporter depends on it:

* attention through torch's scaled_dot_product_attention, in the VAE and 2.0
  DiT through a module global bound at import time (here to a kernel that
  cannot be traced, like SageAttention or flash kernels);
* 2.1's DiT channel grouping: cat(q, k, v) viewed as [1, −1, heads, 3·d] and
  split per head, and cat(k, v) likewise in its cross-attention;
* the VAE's per-head qkv and kv splits, the attention processor slot
  (geo_decoder.cross_attn_decoder.attn.attention.attn_processor, which
  FlashVDM swaps for a top-k processor) and the kv cache flag one level up;
* RMSNorm: 2.0's own class (weight named scale) and torch.nn.RMSNorm in 2.1;
* 2.1's MoE block with host-side routing in eval mode, experts shaped like
  diffusers' FeedForward;
* LayerNorms without affine parameters (Flux-style blocks);
* the call conventions: model(x, σ, {"main": cond}, guidance=...) with σ in
  [0, 1] (2.0 scales it by time_factor 1000 inside, 2.1 does not),
  vae.post_kl/transformer/geo_decoder(queries=, latents=),
  conditioner.main_image_encoder.model(image).last_hidden_state.
"""

import math
import types

import torch
import torch.nn.functional as F
from torch import nn

from hy3d_export.hunyuan import install_compat

install_compat()


def _untraceable_kernel(q, k, v, *args, **kwargs):
    raise RuntimeError("fused attention kernel called during export")


# the module global the exporter must replace
scaled_dot_product_attention = _untraceable_kernel


# ---------------------------------------------------------------- norms


class RMSNorm(nn.Module):
    """2.0's RMSNorm: float32 statistics, weight named scale, eps 1e-6."""

    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype) * self.scale


# ---------------------------------------------------------------- 2.1 DiT


class Attention21(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = torch.cat((self.to_q(x), self.to_k(x), self.to_v(x)), dim=-1)
        split = qkv.shape[-1] // self.heads // 3
        qkv = qkv.view(1, -1, self.heads, split * 3)
        q, k, v = torch.split(qkv, split, dim=-1)
        q = q.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = k.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)
        q, k = self.q_norm(q), self.k_norm(k)
        with torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=True):
            x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, -1)
        return self.out_proj(x)


class CrossAttention21(nn.Module):
    def __init__(self, dim, ctx_dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx_dim, dim, bias=False)
        self.to_v = nn.Linear(ctx_dim, dim, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, y):
        b, s1, _ = x.shape
        s2 = y.shape[1]
        q = self.to_q(x)
        kv = torch.cat((self.to_k(y), self.to_v(y)), dim=-1)
        split = kv.shape[-1] // self.heads // 2
        kv = kv.view(1, -1, self.heads, split * 2)
        k, v = torch.split(kv, split, dim=-1)
        q = self.q_norm(q.view(b, s1, self.heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(k.view(b, s2, self.heads, self.head_dim)).transpose(1, 2)
        v = v.view(b, s2, self.heads, self.head_dim).transpose(1, 2)
        ctx = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, s1, -1)
        return self.out_proj(ctx)


class GELUProj(nn.Module):
    """diffusers' GELU activation module: a projection, then exact gelu."""

    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x):
        return F.gelu(self.proj(x))


class FeedForward(nn.Module):
    """diffusers' FeedForward(activation_fn="gelu"), which 2.1's MoE experts
    and shared experts are: net = [GELU(proj), Dropout, Linear]."""

    def __init__(self, dim, inner):
        super().__init__()
        self.net = nn.ModuleList([GELUProj(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class MLP(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, inner), nn.Linear(inner, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class MoEGate(nn.Module):
    def __init__(self, dim, experts, top_k):
        super().__init__()
        self.top_k, self.n_routed_experts = top_k, experts
        self.scoring_func = "softmax"
        self.norm_topk_prob = False
        self.weight = nn.Parameter(torch.randn(experts, dim) / math.sqrt(dim))

    def forward(self, h):
        scores = F.linear(h.view(-1, h.shape[-1]), self.weight).softmax(dim=-1)
        w, idx = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)
        return idx, w, None


class MoEBlock(nn.Module):
    """Eval mode routes on the host: counts per expert go through numpy."""

    def __init__(self, dim, experts=4, top_k=2):
        super().__init__()
        self.moe_top_k = top_k
        self.experts = nn.ModuleList([FeedForward(dim, 2 * dim) for _ in range(experts)])
        self.gate = MoEGate(dim, experts, top_k)
        self.shared_experts = FeedForward(dim, 2 * dim)

    def forward(self, h):
        identity, shape = h, h.shape
        idx, w, _ = self.gate(h)
        y = self.moe_infer(h.view(-1, shape[-1]), idx.view(-1), w.view(-1, 1)).view(*shape)
        return y + self.shared_experts(identity)

    @torch.no_grad()
    def moe_infer(self, x, flat_idx, flat_w):
        cache = torch.zeros_like(x)
        order = flat_idx.argsort()
        ends = flat_idx.bincount().cpu().numpy().cumsum(0)
        tokens = order // self.moe_top_k
        for i, end in enumerate(ends):
            start = 0 if i == 0 else ends[i - 1]
            if start == end:
                continue
            t = tokens[start:end]
            out = self.experts[i](x[t]) * flat_w[order[start:end]]
            cache.scatter_reduce_(0, t.view(-1, 1).repeat(1, x.shape[-1]), out, reduce="sum")
        return cache


class Block21(nn.Module):
    """2.1's block: in the second half of the depth a U-Net style skip
    (cat(skip, x) → skip_linear → skip_norm) comes first."""

    def __init__(self, dim, ctx_dim, heads, moe, skip):
        super().__init__()
        if skip:
            self.skip_linear = nn.Linear(2 * dim, dim)
            self.skip_norm = nn.LayerNorm(dim, eps=1e-6)
        else:
            self.skip_linear = None
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn1 = Attention21(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.attn2 = CrossAttention21(dim, ctx_dim, heads)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)
        self.use_moe = moe
        if moe:
            self.moe = MoEBlock(dim)
        else:
            self.mlp = MLP(dim, 4 * dim)

    def forward(self, x, c, cond, skip_value=None):
        if self.skip_linear is not None:
            x = self.skip_norm(self.skip_linear(torch.cat([skip_value, x], dim=-1)))
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), cond)
        h = self.norm3(x)
        return x + (self.moe(h) if self.use_moe else self.mlp(h))


class DiT21(nn.Module):
    """2.1's HunYuanDiTPlain: σ embedded unscaled (sin first), the time
    embedding prepended as one token, skips from the first half of the depth
    into the second, MoE in the last num_moe_layers blocks, the time token
    dropped after the final norm. guidance_cond_proj_dim is None for every
    released checkpoint."""

    def __init__(self, channels=8, dim=32, ctx_dim=16, heads=2, depth=3, num_moe_layers=1):
        super().__init__()
        self.guidance_cond_proj_dim = None
        self.x_embedder = nn.Linear(channels, dim)
        self.t_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.blocks = nn.ModuleList([Block21(dim, ctx_dim, heads, moe=depth - i <= num_moe_layers,
                                             skip=i > depth // 2) for i in range(depth)])
        self.norm_final = nn.LayerNorm(dim, eps=1e-6)
        self.linear = nn.Linear(dim, channels)
        self.dim, self.depth = dim, depth

    def forward(self, x, t, contexts, **kwargs):
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        c = self.t_mlp(torch.cat([torch.sin(args), torch.cos(args)], dim=-1)).unsqueeze(1)
        h = torch.cat([c, self.x_embedder(x)], dim=1)
        skips = []
        for i, blk in enumerate(self.blocks):
            h = blk(h, c, contexts["main"], skip_value=None if i <= self.depth // 2 else skips.pop())
            if i < self.depth // 2:
                skips.append(h)
        return self.linear(self.norm_final(h)[:, 1:])


# ---------------------------------------------------------------- 2.0 DiT


def timestep_embedding(t, dim, time_factor=1000.0):
    t = time_factor * t
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def attention(q, k, v):
    """[B, H, L, D] → [B, L, H·D] through the module global."""
    x = scaled_dot_product_attention(q, k, v)
    return x.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)


def split_qkv(qkv, heads):
    """"B L (K H D) -> K B H L D" with K = 3."""
    b, n, c = qkv.shape
    return qkv.reshape(b, n, 3, heads, c // (3 * heads)).permute(2, 0, 3, 1, 4)


class MLPEmbedder(nn.Module):
    def __init__(self, in_dim, dim):
        super().__init__()
        self.in_layer, self.out_layer = nn.Linear(in_dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.out_layer(F.silu(self.in_layer(x)))


class QKNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.query_norm, self.key_norm = RMSNorm(dim), RMSNorm(dim)

    def forward(self, q, k):
        return self.query_norm(q), self.key_norm(k)


class Modulation(nn.Module):
    def __init__(self, dim, double):
        super().__init__()
        self.multiplier = 6 if double else 3
        self.lin = nn.Linear(dim, self.multiplier * dim)

    def forward(self, vec):
        return self.lin(F.silu(vec))[:, None, :].chunk(self.multiplier, dim=-1)


class StreamAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm = QKNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)


class DoubleStreamBlock(nn.Module):
    """Flux-style: latents and cond keep separate weights and modulation,
    attend jointly over [cond; latents]."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.img_mod, self.txt_mod = Modulation(dim, True), Modulation(dim, True)
        self.img_norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.txt_norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.img_norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.txt_norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.img_attn, self.txt_attn = StreamAttention(dim, heads), StreamAttention(dim, heads)
        self.img_mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(approximate="tanh"), nn.Linear(2 * dim, dim))
        self.txt_mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(approximate="tanh"), nn.Linear(2 * dim, dim))

    def _qkv(self, x, mod, norm, attn):
        q, k, v = split_qkv(attn.qkv((1 + mod[1]) * norm(x) + mod[0]), self.heads)
        q, k = attn.norm(q, k)
        return q, k, v

    def forward(self, img, txt, vec):
        im, tm = self.img_mod(vec), self.txt_mod(vec)
        iq, ik, iv = self._qkv(img, im, self.img_norm1, self.img_attn)
        tq, tk, tv = self._qkv(txt, tm, self.txt_norm1, self.txt_attn)
        a = attention(torch.cat((tq, iq), 2), torch.cat((tk, ik), 2), torch.cat((tv, iv), 2))
        ta, ia = a[:, :txt.shape[1]], a[:, txt.shape[1]:]
        img = img + im[2] * self.img_attn.proj(ia)
        img = img + im[5] * self.img_mlp((1 + im[4]) * self.img_norm2(img) + im[3])
        txt = txt + tm[2] * self.txt_attn.proj(ta)
        txt = txt + tm[5] * self.txt_mlp((1 + tm[4]) * self.txt_norm2(txt) + tm[3])
        return img, txt


class SingleStreamBlock(nn.Module):
    """One linear for qkv and the MLP input, one for proj and MLP output."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.linear1 = nn.Linear(dim, 3 * dim + 2 * dim)
        self.linear2 = nn.Linear(dim + 2 * dim, dim)
        self.norm = QKNorm(dim // heads)
        self.pre_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.modulation = Modulation(dim, False)

    def forward(self, x, vec):
        shift, scale, gate = self.modulation(vec)
        qkv, mlp = torch.split(self.linear1((1 + scale) * self.pre_norm(x) + shift), [3 * self.dim, 2 * self.dim], -1)
        q, k, v = split_qkv(qkv, self.heads)
        q, k = self.norm(q, k)
        out = self.linear2(torch.cat((attention(q, k, v), F.gelu(mlp, approximate="tanh")), 2))
        return x + gate * out


class LastLayer(nn.Module):
    def __init__(self, dim, channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, vec):
        shift, scale = self.adaLN_modulation(vec).chunk(2, dim=1)
        return self.linear((1 + scale[:, None]) * self.norm_final(x) + shift[:, None])


class DiT20(nn.Module):
    """2.0/2mini's Hunyuan3DDiT: σ·time_factor embedded (cos first), the
    guidance scale of distilled models embedded the same way and added."""

    def __init__(self, channels=8, dim=32, ctx_dim=16, heads=2, guidance_embed=False):
        super().__init__()
        self.guidance_embed = guidance_embed
        self.time_factor = 1000.0
        self.latent_in = nn.Linear(channels, dim)
        self.time_in = MLPEmbedder(256, dim)
        self.cond_in = nn.Linear(ctx_dim, dim)
        self.guidance_in = MLPEmbedder(256, dim) if guidance_embed else nn.Identity()
        self.double_blocks = nn.ModuleList([DoubleStreamBlock(dim, heads)])
        self.single_blocks = nn.ModuleList([SingleStreamBlock(dim, heads)])
        self.final_layer = LastLayer(dim, channels)

    def forward(self, x, t, contexts, **kwargs):
        latent = self.latent_in(x)
        vec = self.time_in(timestep_embedding(t, 256, self.time_factor))
        if self.guidance_embed:
            if kwargs.get("guidance") is None:
                raise ValueError("guidance-distilled model called without guidance")
            vec = vec + self.guidance_in(timestep_embedding(kwargs["guidance"], 256, self.time_factor))
        cond = self.cond_in(contexts["main"])
        for blk in self.double_blocks:
            latent, cond = blk(latent, cond, vec)
        h = torch.cat((cond, latent), 1)
        for blk in self.single_blocks:
            h = blk(h, vec)
        return self.final_layer(h[:, cond.shape[1]:], vec)


# ---------------------------------------------------------------- VAE (same in 2.0 and 2.1)


class CrossAttentionProcessor:
    def __call__(self, attn, q, k, v):
        return scaled_dot_product_attention(q, k, v)


class FlashVDMCrossAttentionProcessor:
    """Top-k attention with data-dependent Python, as FlashVDM's; like
    Tencent's, it falls back to full attention once topk is False."""

    def __init__(self):
        self.topk = True

    def __call__(self, attn, q, k, v):
        if self.topk:
            keep = max(1, int(k.shape[-2] // 3))
            sim = (q[:, :, ::100] @ k.transpose(-1, -2)).mean(-2)
            idx = torch.topk(sim, k=keep, dim=-1).indices.unsqueeze(-1)
            k = torch.gather(k, -2, idx.expand(-1, -1, -1, k.shape[-1]))
            v = torch.gather(v, -2, idx.expand(-1, -1, -1, v.shape[-1]))
        return F.scaled_dot_product_attention(q, k, v)


class MLPVAE(nn.Module):
    def __init__(self, width, expand=4):
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(width, width * expand), nn.Linear(width * expand, width)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class QKVMultiheadAttention(nn.Module):
    """Per-head split of c_qkv's output: head h owns [3dh, 3dh+3d)."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_norm = nn.LayerNorm(width // heads, eps=1e-6)
        self.k_norm = nn.LayerNorm(width // heads, eps=1e-6)

    def forward(self, qkv):
        bs, n, width = qkv.shape
        q, k, v = torch.split(qkv.view(bs, n, self.heads, -1), width // self.heads // 3, dim=-1)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (self.q_norm(q), self.k_norm(k), v))
        return scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(bs, n, -1)


class SelfAttentionVAE(nn.Module):
    """The VAE's MultiheadAttention: c_qkv (no bias in the released
    configs), the per-head split, c_proj."""

    def __init__(self, width, heads):
        super().__init__()
        self.c_qkv = nn.Linear(width, 3 * width, bias=False)
        self.c_proj = nn.Linear(width, width)
        self.attention = QKVMultiheadAttention(width, heads)

    def forward(self, x):
        return self.c_proj(self.attention(self.c_qkv(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = SelfAttentionVAE(width, heads)
        self.ln_1, self.ln_2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.mlp = MLPVAE(width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, n_ctx, width, heads, layers=1):
        super().__init__()
        self.n_ctx = n_ctx
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        for blk in self.resblocks:
            x = blk(x)
        return x


class QKVMultiheadCrossAttention(nn.Module):
    """Holds the attention processor slot FlashVDM swaps."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_norm = nn.LayerNorm(width // heads, eps=1e-6)
        self.k_norm = nn.LayerNorm(width // heads, eps=1e-6)
        self.attn_processor = CrossAttentionProcessor()

    def forward(self, q, kv):
        _, n_ctx, _ = q.shape
        bs, n_data, width = kv.shape
        q = q.view(bs, n_ctx, self.heads, -1)
        k, v = torch.split(kv.view(bs, n_data, self.heads, -1), width // self.heads // 2, dim=-1)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (self.q_norm(q), self.k_norm(k), v))
        out = self.attn_processor(self, q, k, v)
        return out.transpose(1, 2).reshape(bs, n_ctx, -1)


class CrossAttentionVAE(nn.Module):
    """MultiheadCrossAttention: holds the kv cache flag (a constructor
    argument Tencent's code never turns on; the exporter still clears it)."""

    def __init__(self, width, heads):
        super().__init__()
        self.c_q = nn.Linear(width, width, bias=False)
        self.c_kv = nn.Linear(width, 2 * width, bias=False)
        self.c_proj = nn.Linear(width, width)
        self.attention = QKVMultiheadCrossAttention(width, heads)
        self.kv_cache = False
        self.data = None

    def forward(self, x, data):
        q = self.c_q(x)
        if self.kv_cache:
            if self.data is None:
                self.data = self.c_kv(data)
            kv = self.data
        else:
            kv = self.c_kv(data)
        return self.c_proj(self.attention(q, kv))


class ResidualCrossAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = CrossAttentionVAE(width, heads)
        self.ln_1 = nn.LayerNorm(width, eps=1e-6)
        self.ln_2 = nn.LayerNorm(width, eps=1e-6)
        self.ln_3 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = MLPVAE(width)

    def forward(self, x, data):
        x = x + self.attn(self.ln_1(x), self.ln_2(data))
        return x + self.mlp(self.ln_3(x))


class FourierEmbedder(nn.Module):
    def __init__(self, num_freqs=4, include_pi=False):
        super().__init__()
        f = 2.0 ** torch.arange(num_freqs, dtype=torch.float32)
        self.register_buffer("frequencies", f * math.pi if include_pi else f, persistent=False)
        self.out_dim = 3 * (2 * num_freqs + 1)

    def forward(self, x):
        e = (x[..., None] * self.frequencies).view(*x.shape[:-1], -1)
        return torch.cat((x, e.sin(), e.cos()), dim=-1)


class GeoDecoder(nn.Module):
    """CrossAttentionDecoder: Fourier features → query_proj → one residual
    cross-attention block over the latents → ln_post → output_proj."""

    def __init__(self, fourier, width, heads):
        super().__init__()
        self.fourier_embedder = fourier
        self.query_proj = nn.Linear(fourier.out_dim, width)
        self.cross_attn_decoder = ResidualCrossAttentionBlock(width, heads)
        self.ln_post = nn.LayerNorm(width)
        self.output_proj = nn.Linear(width, 1)

    def set_cross_attention_processor(self, processor):
        self.cross_attn_decoder.attn.attention.attn_processor = processor

    def forward(self, queries=None, query_embeddings=None, latents=None):
        if query_embeddings is None:
            query_embeddings = self.query_proj(self.fourier_embedder(queries))
        return self.output_proj(self.ln_post(self.cross_attn_decoder(query_embeddings, latents)))


class ShapeVAE(nn.Module):
    def __init__(self, num_latents=16, embed_dim=8, width=32, heads=2, scale_factor=1.0039506):
        super().__init__()
        self.fourier_embedder = FourierEmbedder()
        self.post_kl = nn.Linear(embed_dim, width)
        self.transformer = Transformer(num_latents, width, heads)
        self.geo_decoder = GeoDecoder(self.fourier_embedder, width, heads)
        self.scale_factor = scale_factor
        self.latent_shape = (num_latents, embed_dim)

    def forward(self, latents):
        return self.transformer(self.post_kl(latents))

    def enable_flashvdm_decoder(self):
        """What FlashVDM decoding leaves in the geometry decoder."""
        self.geo_decoder.set_cross_attention_processor(FlashVDMCrossAttentionProcessor())


# ---------------------------------------------------------------- conditioner


class TinyDinov2(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.patch = nn.Conv2d(3, hidden, 14, 14)
        self.cls = nn.Parameter(torch.randn(1, 1, hidden))
        self.pos = nn.Parameter(torch.randn(1, 37 * 37 + 1, hidden) * 0.02)
        self.norm = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, pixel_values):
        x = self.patch(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return types.SimpleNamespace(last_hidden_state=self.norm(x))


class DinoImageEncoder(nn.Module):
    mean = [0.485, 0.456, 0.406]
    std = [0.229, 0.224, 0.225]

    def __init__(self, hidden=16):
        super().__init__()
        self.model = TinyDinov2(hidden)
        self.use_cls_token = True


class SingleImageEncoder(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.main_image_encoder = DinoImageEncoder(hidden)


# ---------------------------------------------------------------- schedulers


class FlowMatchEulerDiscreteScheduler:
    config = types.SimpleNamespace(num_train_timesteps=1000)


class ConsistencyFlowMatchEulerDiscreteScheduler:
    config = types.SimpleNamespace(num_train_timesteps=1000, pcm_timesteps=100)


def pipeline(kind: str, seed: int = 0):
    """A pipeline-shaped object: '2.0-turbo' (Flux-style DiT, embedded
    guidance, consistency), '2mini-fast' (embedded guidance, flow), '2.1'
    (MoE DiT, CFG, flow)."""
    torch.manual_seed(seed)
    if kind == "2.1":
        model, sched = DiT21(), FlowMatchEulerDiscreteScheduler()
    elif kind == "2.0-turbo":
        model, sched = DiT20(guidance_embed=True), ConsistencyFlowMatchEulerDiscreteScheduler()
    elif kind == "2mini-fast":
        model, sched = DiT20(guidance_embed=True), FlowMatchEulerDiscreteScheduler()
    else:
        raise ValueError(kind)
    vae = ShapeVAE()
    vae.enable_flashvdm_decoder()
    return types.SimpleNamespace(model=model.eval(), vae=vae.eval(), conditioner=SingleImageEncoder().eval(),
                                 scheduler=sched)
