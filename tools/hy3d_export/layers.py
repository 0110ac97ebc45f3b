"""Building blocks shared by the tiny models and the Hunyuan3D wrappers.

They are written for export: plain matmul/softmax attention (opset 17 has no
fused attention and TensorRT fuses the pattern itself), fp16-safe ordering
(q is scaled before QKᵀ so the product stays in range; RMSNorm computes its
statistics in float32), and no data-dependent Python control flow.
"""

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int = 256, time_factor: float = 1000.0, max_period: float = 10000.0):
    """Sinusoidal embedding [cos, sin] of time_factor·t, as Hunyuan3D's DiTs
    embed σ ∈ [0, 1] (and, for guidance-distilled models, the guidance scale)."""
    t = time_factor * t.float()
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class RMSNorm(nn.Module):
    """RMSNorm whose statistics are always float32: under FP16 the mean of
    squares of large activations overflows before the rsqrt."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return x32.to(dtype) * self.weight


def attention(q, k, v):
    """softmax(q·kᵀ/√d)·v over [..., N, d]; q is scaled first so that the
    logits of FP16 engines stay bounded by the scaled operands."""
    q = q * (q.shape[-1] ** -0.5)
    w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    return w @ v


def split_heads(x, heads):
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x):
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, qk_norm: bool = False):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        hd = dim // heads
        self.q_norm = RMSNorm(hd) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(hd) if qk_norm else nn.Identity()

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = self.q_norm(split_heads(q, self.heads))
        k = self.k_norm(split_heads(k, self.heads))
        return self.proj(merge_heads(attention(q, k, split_heads(v, self.heads))))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, ctx_dim: int, heads: int, qk_norm: bool = False, inner: int = None):
        super().__init__()
        inner = inner or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(ctx_dim, inner)
        self.to_v = nn.Linear(ctx_dim, inner)
        self.proj = nn.Linear(inner, dim)
        hd = inner // heads
        self.q_norm = RMSNorm(hd) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(hd) if qk_norm else nn.Identity()

    def forward(self, x, ctx):
        q = self.q_norm(split_heads(self.to_q(x), self.heads))
        k = self.k_norm(split_heads(self.to_k(ctx), self.heads))
        v = split_heads(self.to_v(ctx), self.heads)
        return self.proj(merge_heads(attention(q, k, v)))
