"""Small modules with the structure of Tencent's Hunyuan3D shape models,
written for hy3d's tests of tools/hy3d_export/hunyuan.py (the real classes
need the operator's checkout and weights). What they reproduce, because the
exporter depends on it:

* attention through torch's scaled_dot_product_attention, in the VAE and 2.0
  DiT through a module global bound at import time (here to a kernel that
  cannot be traced, like SageAttention or flash kernels);
* 2.1's DiT channel grouping: cat(q, k, v) viewed as [.., heads, 3·d] and
  split per head, and cat(k, v) likewise in its cross-attention;
* the VAE's per-head kv split, its attention processor slot (FlashVDM swaps
  in a top-k processor) and kv cache;
* RMSNorm: 2.0's own class (weight named scale) and torch.nn.RMSNorm in 2.1;
* 2.1's MoE block with host-side routing in eval mode;
* LayerNorms without affine parameters (Flux-style blocks);
* the call conventions: model(x, t, {"main": cond}, guidance=...),
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


class FeedForward(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Linear(inner, dim))

    def forward(self, x):
        return self.net(x)


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
    def __init__(self, dim, ctx_dim, heads, moe):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn1 = Attention21(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.attn2 = CrossAttention21(dim, ctx_dim, heads)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)
        self.use_moe = moe
        if moe:
            self.moe = MoEBlock(dim)
        else:
            self.mlp = FeedForward(dim, 4 * dim)

    def forward(self, x, cond):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), cond)
        h = self.norm3(x)
        return x + (self.moe(h) if self.use_moe else self.mlp(h))


class DiT21(nn.Module):
    """2.1's plain DiT: σ embedded unscaled, a time token in front."""

    def __init__(self, channels=8, dim=32, ctx_dim=16, heads=2):
        super().__init__()
        self.x_embedder = nn.Linear(channels, dim)
        self.t_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.blocks = nn.ModuleList([Block21(dim, ctx_dim, heads, moe=i == 1) for i in range(2)])
        self.norm_final = nn.LayerNorm(dim, eps=1e-6)
        self.linear = nn.Linear(dim, channels)
        self.dim = dim

    def forward(self, x, t, contexts, **kwargs):
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        temb = self.t_mlp(torch.cat([torch.sin(args), torch.cos(args)], dim=-1)).unsqueeze(1)
        h = torch.cat([temb, self.x_embedder(x)], dim=1)
        for blk in self.blocks:
            h = blk(h, contexts["main"])
        return self.linear(self.norm_final(h)[:, 1:])


# ---------------------------------------------------------------- 2.0 DiT


def timestep_embedding(t, dim, time_factor=1000.0):
    t = time_factor * t
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class JointBlock20(nn.Module):
    """A Flux-style block: modulation from vec, affine-less LayerNorms,
    joint attention over [cond; latents] with RMSNorm'd q/k."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.mod = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, txt, vec):
        shift, scale, gate = self.mod(F.silu(vec)).unsqueeze(1).chunk(3, dim=-1)
        h = torch.cat([txt, x], dim=1)
        hm = (1 + scale) * self.norm(h) + shift
        b, n, c = hm.shape
        q, k, v = self.qkv(hm).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        a = self.proj(a.transpose(1, 2).reshape(b, n, c))
        return x + gate * a[:, txt.shape[1]:]


class DiT20(nn.Module):
    def __init__(self, channels=8, dim=32, ctx_dim=16, heads=2, guidance_embed=False):
        super().__init__()
        self.guidance_embed = guidance_embed
        self.latent_in = nn.Linear(channels, dim)
        self.time_in = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.guidance_in = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim)) \
            if guidance_embed else nn.Identity()
        self.cond_in = nn.Linear(ctx_dim, dim)
        self.block = JointBlock20(dim, heads)
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, channels)

    def forward(self, x, t, contexts, **kwargs):
        vec = self.time_in(timestep_embedding(t, 256))
        if self.guidance_embed:
            vec = vec + self.guidance_in(timestep_embedding(kwargs["guidance"], 256))
        h = self.block(self.latent_in(x), self.cond_in(contexts["main"]), vec)
        return self.linear(self.norm_final(h))


# ---------------------------------------------------------------- VAE


class CrossAttentionProcessor:
    def __call__(self, attn, q, k, v):
        return scaled_dot_product_attention(q, k, v)


class FlashVDMCrossAttentionProcessor:
    """Top-k attention with data-dependent Python, as FlashVDM's."""

    def __call__(self, attn, q, k, v):
        keep = max(1, int(k.shape[-2] // 3))
        sim = (q[:, :, ::100] @ k.transpose(-1, -2)).mean(-2)
        idx = torch.topk(sim, k=keep, dim=-1).indices.unsqueeze(-1)
        k = torch.gather(k, -2, idx.expand(-1, -1, -1, k.shape[-1]))
        v = torch.gather(v, -2, idx.expand(-1, -1, -1, v.shape[-1]))
        return F.scaled_dot_product_attention(q, k, v)


class SelfAttentionVAE(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.c_qkv = nn.Linear(width, 3 * width, bias=False)
        self.c_proj = nn.Linear(width, width)
        self.q_norm = nn.LayerNorm(width // heads, eps=1e-6)
        self.k_norm = nn.LayerNorm(width // heads, eps=1e-6)

    def forward(self, x):
        bs, n, width = x.shape
        qkv = self.c_qkv(x).view(bs, n, self.heads, -1)
        q, k, v = torch.split(qkv, width // self.heads, dim=-1)
        q, k, v = (t.transpose(1, 2) for t in (self.q_norm(q), self.k_norm(k), v))
        out = scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(bs, n, -1)
        return self.c_proj(out)


class Transformer(nn.Module):
    def __init__(self, n_ctx, width, heads, layers=1):
        super().__init__()
        self.n_ctx = n_ctx
        self.resblocks = nn.ModuleList([SelfAttentionVAE(width, heads) for _ in range(layers)])
        self.ln = nn.ModuleList([nn.LayerNorm(width, eps=1e-6) for _ in range(layers)])

    def forward(self, x):
        for ln, blk in zip(self.ln, self.resblocks):
            x = x + blk(ln(x))
        return x


class CrossAttentionVAE(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.c_q = nn.Linear(width, width)
        self.c_kv = nn.Linear(width, 2 * width)
        self.c_proj = nn.Linear(width, width)
        self.attn_processor = CrossAttentionProcessor()
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
        bs, n_ctx, width = q.shape
        n_data = kv.shape[1]
        q = q.view(bs, n_ctx, self.heads, -1).transpose(1, 2)
        kv = kv.view(bs, n_data, self.heads, -1)
        k, v = torch.split(kv, width // self.heads, dim=-1)
        out = self.attn_processor(self, q, k.transpose(1, 2), v.transpose(1, 2))
        return self.c_proj(out.transpose(1, 2).reshape(bs, n_ctx, -1))


class GeoDecoder(nn.Module):
    def __init__(self, width, heads, num_freqs=4):
        super().__init__()
        self.register_buffer("frequencies", 2.0 ** torch.arange(num_freqs, dtype=torch.float32))
        self.query_proj = nn.Linear(3 * (2 * num_freqs + 1), width)
        self.ln_1 = nn.LayerNorm(width, eps=1e-6)
        self.ln_2 = nn.LayerNorm(width, eps=1e-6)
        self.attn = CrossAttentionVAE(width, heads)
        self.ln_3 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = FeedForward(width, 2 * width)
        self.ln_post = nn.LayerNorm(width)
        self.output_proj = nn.Linear(width, 1)

    def forward(self, queries=None, query_embeddings=None, latents=None):
        e = (queries[..., None] * self.frequencies).view(*queries.shape[:-1], -1)
        x = self.query_proj(torch.cat((queries, e.sin(), e.cos()), dim=-1))
        x = x + self.attn(self.ln_1(x), self.ln_2(latents))
        x = x + self.mlp(self.ln_3(x))
        return self.output_proj(self.ln_post(x))


class ShapeVAE(nn.Module):
    def __init__(self, num_latents=16, embed_dim=8, width=32, heads=2, scale_factor=1.0039506):
        super().__init__()
        self.post_kl = nn.Linear(embed_dim, width)
        self.transformer = Transformer(num_latents, width, heads)
        self.geo_decoder = GeoDecoder(width, heads)
        self.scale_factor = scale_factor
        self.latent_shape = (num_latents, embed_dim)

    def enable_flashvdm_decoder(self):
        self.geo_decoder.attn.attn_processor = FlashVDMCrossAttentionProcessor()
        self.geo_decoder.attn.kv_cache = True


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
