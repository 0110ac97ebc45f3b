"""Wrap Tencent's Hunyuan3D shape models (2.0, 2mini, 2.1 and their
turbo/fast variants) into hy3d's four graphs.

The operator's checkout provides the classes (hy3dgen.shapegen for 2.0 and
2mini, hy3dshape for 2.1); this module never copies them. It only rewires
what cannot go into an ONNX graph or would break under TensorRT FP16:

* Attention. Every Hunyuan3D attention ends in torch's
  scaled_dot_product_attention, often bound to a module global at import
  time. During export both the torch function and those globals point at
  `sdpa`, plain matmul/softmax with q scaled by 1/√d *before* QKᵀ, so FP16
  engines never hold the unscaled logits. Nothing else in the attention
  modules is touched, so their unusual channel layouts (2.1's DiT regroups
  cat(q, k, v) per head; the VAE splits one kv projection per head) are
  traced exactly as written.
* RMSNorm (2.0's own, torch.nn.RMSNorm in 2.1) becomes `SafeRMSNorm`:
  float32 statistics, and x is first divided by max|x| so that the mean of
  squares cannot overflow even if TensorRT runs the reduction in FP16.
* 2.1's MoEBlock routes tokens with host code (bincount → numpy → Python
  loop), which tracing would freeze into one routing. `DenseMoE` runs every
  expert on every token and sums them weighted by the gate's top-k weights
  scattered into a dense [tokens, experts] matrix: the same function, with
  experts × the FLOPs of the routed layers (6 of 21 blocks in 2.1).
* FlashVDM (coarse-to-fine decoding with top-k attention) is not part of any
  graph: hy3d does coarse-to-fine in Go, so vae_geometry gets the plain
  cross-attention processor and no kv cache.
* LayerNorms without affine parameters get unit ones (export.py explains).

torch 1.13 (Debian's) has neither scaled_dot_product_attention nor
nn.RMSNorm, and an older torch.backends.cuda.sdp_kernel; `install_compat`
provides them so the modules import, which is also what lets the tests run
small mirror modules.
"""

import contextlib
import inspect
import os
import sys
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

from .export import GraphSpec, coarse_resolution, export_model_set

HUNYUAN_PACKAGES = ("hy3dgen", "hy3dshape")
IMAGE_SIZE = 518


def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """scaled_dot_product_attention as an exportable, FP16-safe graph.
    (transformers' DINOv2 calls it with every keyword at its neutral value.)"""
    if attn_mask is not None or is_causal or dropout_p or enable_gqa:
        raise NotImplementedError("Hunyuan3D attention uses no mask, causality, dropout or GQA")
    s = scale if scale is not None else q.shape[-1] ** -0.5
    w = torch.softmax((q * s) @ k.transpose(-2, -1), dim=-1)
    return w @ v


class SafeRMSNorm(nn.Module):
    """y = x/√(mean(x²) + eps)·weight, computed in float32 as
    (x/m)/√(mean((x/m)²) + eps/m²) with m = max(max|x|, 1e-4): the squares
    are ≤ 1, so an FP16 reduction cannot overflow; eps/m² only underflows
    when it is negligible anyway.

    The square is xs·xs, not xs²: ONNX Runtime fuses Pow → ReduceMean → Add
    → Sqrt → … into its RMSNorm kernel, and when the added epsilon is not a
    constant (ours is eps/m²) it substitutes a default of 1e-5. That changed
    2.1's velocity by 2e-5 where every other difference is 1e-6 (see
    docs/operators.md, "Checked against Hunyuan3D's code")."""

    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        m = torch.clamp(x.abs().amax(dim=-1, keepdim=True), min=1e-4)
        xs = x / m
        y = xs * torch.rsqrt((xs * xs).mean(dim=-1, keepdim=True) + self.eps / (m * m))
        return y.to(dtype) * self.weight


class _RMSNormCompat(nn.Module):
    """torch.nn.RMSNorm for torch versions without it (same signature and
    semantics: eps None means the dtype's machine epsilon)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight = nn.Parameter(torch.ones(self.normalized_shape)) if elementwise_affine else None

    def forward(self, x):
        eps = self.eps if self.eps is not None else torch.finfo(x.dtype).eps
        dims = tuple(range(-len(self.normalized_shape), 0))
        y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
        return y * self.weight if self.weight is not None else y


def install_compat() -> None:
    """Provide torch 2.x names Hunyuan3D's modules use at import time."""
    if not hasattr(F, "scaled_dot_product_attention"):
        F.scaled_dot_product_attention = sdpa
    if not hasattr(nn, "RMSNorm"):
        nn.RMSNorm = _RMSNormCompat
    # 2.1 wraps attention in sdp_kernel(enable_flash=…, enable_math=…,
    # enable_mem_efficient=…); torch 1.13's lacks the last argument. It only
    # selects CUDA kernels, which an export to ONNX never runs.
    cuda_backends = torch.backends.cuda
    current = getattr(cuda_backends, "sdp_kernel", None)
    if current is None or "enable_mem_efficient" not in inspect.signature(current).parameters:
        cuda_backends.sdp_kernel = lambda **kwargs: contextlib.nullcontext()


@contextlib.contextmanager
def exportable_attention(packages=HUNYUAN_PACKAGES):
    """Point torch's scaled_dot_product_attention, and every module global of
    that name in the Hunyuan3D packages (bound at import, possibly to
    SageAttention), at `sdpa` for the duration of the block."""
    saved = [(F, "scaled_dot_product_attention", getattr(F, "scaled_dot_product_attention", None))]
    F.scaled_dot_product_attention = sdpa
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.split(".")[0] in packages:
            continue
        if hasattr(mod, "scaled_dot_product_attention"):
            saved.append((mod, "scaled_dot_product_attention", mod.scaled_dot_product_attention))
            mod.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        for owner, attr, old in reversed(saved):
            if old is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)


class DenseMoE(nn.Module):
    """2.1's MoEBlock without host-side routing (see the module comment).

    Reads the block's own gate (weight, top_k, norm_topk_prob), experts and
    shared experts; only softmax scoring exists in 2.1."""

    def __init__(self, block: nn.Module):
        super().__init__()
        gate = block.gate
        if getattr(gate, "scoring_func", "softmax") != "softmax":
            raise ValueError(f"MoE gate scoring {gate.scoring_func!r} is not supported")
        self.gate_weight = gate.weight
        self.top_k = gate.top_k
        self.norm_topk_prob = bool(getattr(gate, "norm_topk_prob", False))
        self.experts = block.experts
        self.shared_experts = getattr(block, "shared_experts", None)

    def forward(self, x):
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        scores = torch.softmax(F.linear(flat, self.gate_weight), dim=-1)
        top_w, top_i = torch.topk(scores, k=self.top_k, dim=-1)
        if self.top_k > 1 and self.norm_topk_prob:
            top_w = top_w / (top_w.sum(dim=-1, keepdim=True) + 1e-20)
        dense = torch.zeros_like(scores).scatter(1, top_i, top_w)
        y = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            y = y + expert(flat) * dense[:, e:e + 1]
        y = y.reshape(shape)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y


class PlainCrossAttentionProcessor:
    """The VAE's default attention processor, in place of FlashVDM's."""

    def __call__(self, attn, q, k, v):
        return sdpa(q, k, v)


def prepare_for_export(root: nn.Module) -> dict:
    """Rewire root in place (see the module comment); returns counts."""
    counts = {"rmsnorm": 0, "moe": 0, "processor": 0, "kv_cache": 0}

    def visit(parent: nn.Module):
        for name, child in list(parent.named_children()):
            cls = type(child).__name__
            if cls == "RMSNorm" or isinstance(child, _RMSNormCompat) or (
                    hasattr(nn, "RMSNorm") and isinstance(child, nn.RMSNorm)):
                setattr(parent, name, _safe_rmsnorm(child))
                counts["rmsnorm"] += 1
                continue
            if cls == "MoEBlock":
                setattr(parent, name, DenseMoE(child))
                counts["moe"] += 1
                continue
            visit(child)

    visit(root)
    for m in root.modules():
        proc = getattr(m, "attn_processor", None)
        if proc is not None and not isinstance(proc, PlainCrossAttentionProcessor):
            if type(proc).__name__ != "CrossAttentionProcessor":
                counts["processor"] += 1
            m.attn_processor = PlainCrossAttentionProcessor()
        if getattr(m, "kv_cache", False):
            m.kv_cache = False
            m.data = None
            counts["kv_cache"] += 1
    return counts


def _safe_rmsnorm(norm: nn.Module) -> SafeRMSNorm:
    weight = getattr(norm, "weight", None)
    if weight is None:
        weight = getattr(norm, "scale", None)  # 2.0's own RMSNorm
    if weight is None:  # torch.nn.RMSNorm(elementwise_affine=False)
        weight = torch.ones(norm.normalized_shape)
    eps = getattr(norm, "eps", 1e-6)
    if eps is None:
        eps = torch.finfo(torch.float32).eps
    return SafeRMSNorm(weight, eps)


# ---------------------------------------------------------------------------
# graph wrappers


class ConditionerGraph(nn.Module):
    """image (normalized, 518²) → DINOv2 last hidden state, as
    Hunyuan3D's ImageEncoder.forward computes it after its own resize and
    normalization (which hy3d does on the host)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.model = encoder.model
        self.use_cls_token = getattr(encoder, "use_cls_token", True)

    def forward(self, image):
        h = self.model(image).last_hidden_state
        return h if self.use_cls_token else h[:, 1:]


class DiTGraph(nn.Module):
    """(latents, timestep σ, cond[, guidance]) → velocity. Both families
    take σ ∈ [0, 1] (the pipelines divide the scheduler's t by 1000) and
    scale it inside: 2.0/2mini embed 1000·σ, 2.1 embeds σ."""

    def __init__(self, model: nn.Module, guidance: bool):
        super().__init__()
        self.model = model
        self.guidance = guidance

    def forward(self, latents, timestep, cond, guidance: Optional[torch.Tensor] = None):
        if self.guidance:
            return self.model(latents, timestep, {"main": cond}, guidance=guidance)
        return self.model(latents, timestep, {"main": cond})


class VAELatentsGraph(nn.Module):
    """latents ÷ scale_factor → features: ShapeVAE's post_kl + transformer."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.post_kl = vae.post_kl
        self.transformer = vae.transformer

    def forward(self, latents):
        return self.transformer(self.post_kl(latents))


class VAEGeometryGraph(nn.Module):
    """(queries, features) → one occupancy logit per query point, the call
    VanillaVolumeDecoder makes per chunk."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.geo_decoder = vae.geo_decoder

    def forward(self, queries, features):
        return self.geo_decoder(queries=queries, latents=features).squeeze(-1)


# ---------------------------------------------------------------------------
# model sets


def _scheduler_spec(scheduler, guidance_embed: bool, steps: Optional[int], guidance_scale: float) -> dict:
    cls = type(scheduler).__name__
    if cls.startswith("Consistency"):
        cfg = getattr(scheduler, "config", None)
        pcm = getattr(cfg, "pcm_timesteps", None) if cfg is not None else None
        if pcm is None and isinstance(cfg, dict):
            pcm = cfg.get("pcm_timesteps")
        spec = {"kind": "consistency", "steps": steps or 5, "pcm_timesteps": int(pcm or 50)}
    elif "FlowMatch" in cls:
        spec = {"kind": "flow_euler", "steps": steps or 50}
    else:
        raise ValueError(f"scheduler {cls} is not a flow-matching scheduler hy3d implements")
    spec["guidance"] = "embedded" if guidance_embed else "cfg"
    spec["guidance_scale"] = guidance_scale
    return {k: spec[k] for k in ("kind", "guidance", "steps", "guidance_scale", "pcm_timesteps") if k in spec}


def model_set(pipe, family: str, name: str, *, steps: Optional[int] = None, guidance_scale: float = 5.0,
              resolution: int = 384, max_batch: Optional[dict] = None, sample_batch: int = 2,
              sample_points: int = 1024, packages=HUNYUAN_PACKAGES):
    """Graph specs and manifest for a loaded Hunyuan3D pipeline (anything
    with .conditioner, .model, .vae and .scheduler like Tencent's
    Hunyuan3DDiTFlowMatchingPipeline). Rewires the modules in place;
    packages names the top-level packages whose attention globals
    exportable_attention replaces."""
    encoder = getattr(pipe.conditioner, "main_image_encoder", pipe.conditioner)
    dit, vae = pipe.model, pipe.vae
    for m in (encoder, dit, vae):
        m.float().eval()
        prepare_for_export(m)
    guidance_embed = bool(getattr(dit, "guidance_embed", False))
    if getattr(dit, "guidance_cond_proj_dim", None) is not None:
        raise ValueError("LCM-style guidance_cond models are not supported (no flow-matching pipeline uses them)")

    g = torch.Generator().manual_seed(0)
    b = sample_batch
    image = torch.randn(b, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    with torch.no_grad(), exportable_attention(packages):
        cond = ConditionerGraph(encoder)(image[:1])
    t, d = cond.shape[1], cond.shape[2]
    l, c = vae_latent_shape(vae)
    latents = torch.randn(b, l, c, generator=g)
    with torch.no_grad(), exportable_attention(packages):
        w = VAELatentsGraph(vae)(latents[:1]).shape[-1]
    feats = torch.randn(b, l, w, generator=g)
    pts = torch.rand(b, sample_points, 3, generator=g) * 2.02 - 1.01
    sigma = torch.linspace(0.2, 0.8, b)
    mb = {"conditioner": 4, "dit": 8, "vae_latents": 4, "vae_geometry": 4}
    mb.update(max_batch or {})

    dit_names = ["latents", "timestep", "cond"]
    dit_inputs = (latents, sigma, torch.randn(b, t, d, generator=g))
    dit_shapes = {"latents": [-1, l, c], "timestep": [-1], "cond": [-1, t, d], "velocity": [-1, l, c]}
    if guidance_embed:
        dit_names.append("guidance")
        dit_inputs = dit_inputs + (torch.full((b,), guidance_scale),)
        dit_shapes["guidance"] = [-1]
    specs = [
        GraphSpec("conditioner", ConditionerGraph(encoder), (image,), ["image"], ["cond"],
                  {"image": [-1, 3, IMAGE_SIZE, IMAGE_SIZE], "cond": [-1, t, d]}, mb["conditioner"]),
        GraphSpec("dit", DiTGraph(dit, guidance_embed), dit_inputs, dit_names, ["velocity"], dit_shapes, mb["dit"]),
        GraphSpec("vae_latents", VAELatentsGraph(vae), (latents,), ["latents"], ["features"],
                  {"latents": [-1, l, c], "features": [-1, l, w]}, mb["vae_latents"]),
        GraphSpec("vae_geometry", VAEGeometryGraph(vae), (pts, feats), ["queries", "features"], ["logits"],
                  {"queries": [-1, -1, 3], "features": [-1, l, w], "logits": [-1, -1]}, mb["vae_geometry"],
                  axis_names={"queries": {1: "points"}, "logits": {1: "points"}}),
    ]
    mean = list(getattr(encoder, "mean", (0.485, 0.456, 0.406)))
    std = list(getattr(encoder, "std", (0.229, 0.224, 0.225)))
    manifest = {
        "name": name,
        "family": family,
        "description": f"Hunyuan3D {family} exported by hy3d tools/export-hunyuan3d",
        "scale_factor": float(vae.scale_factor),
        "image": {"size": IMAGE_SIZE, "canvas_size": 512, "border_ratio": 0.15, "mean": mean, "std": std},
        "tokens": {"cond_tokens": t, "cond_dim": d, "latent_tokens": l, "latent_channels": c, "feature_width": w},
        "sampler": _scheduler_spec(pipe.scheduler, guidance_embed, steps, guidance_scale),
        "volume": {"bounds": 1.01, "resolution": resolution, "chunk_points": 8000,
                   "coarse_resolution": coarse_resolution(resolution), "refine_band": 0.95},
    }
    return specs, manifest


def vae_latent_shape(vae):
    """(tokens, channels) of a ShapeVAE's latents."""
    if hasattr(vae, "latent_shape"):
        return tuple(vae.latent_shape)
    l = vae.transformer.n_ctx if hasattr(vae.transformer, "n_ctx") else vae.num_latents
    return l, vae.post_kl.in_features


def export_pipeline(pipe, out_dir: str, family: str, name: str, packages=HUNYUAN_PACKAGES, **kwargs) -> dict:
    """Export a loaded pipeline's four graphs and manifest into out_dir."""
    specs, manifest = model_set(pipe, family, name, packages=packages, **kwargs)
    with exportable_attention(packages):
        return export_model_set(out_dir, manifest, specs)


def load_pipeline(checkout: str, family: str, model_dir: str, ckpt: Optional[str] = None):
    """Build Tencent's pipeline from a local model folder (config.yaml plus
    checkpoint, as from_pretrained leaves it) with the operator's checkout."""
    install_compat()
    if family == "2.1":
        sys.path.insert(0, os.path.join(checkout, "hy3dshape"))
        from hy3dshape.pipelines import Hunyuan3DDiTFlowMatchingPipeline as Pipeline  # noqa: E402
    else:
        sys.path.insert(0, checkout)
        from hy3dgen.shapegen.pipelines import Hunyuan3DDiTFlowMatchingPipeline as Pipeline  # noqa: E402
    config = os.path.join(model_dir, "config.yaml")
    if ckpt is None:
        for cand in ("model.fp16.safetensors", "model.safetensors", "model.fp16.ckpt", "model.ckpt"):
            if os.path.exists(os.path.join(model_dir, cand)):
                ckpt = os.path.join(model_dir, cand)
                break
        else:
            raise FileNotFoundError(f"no model checkpoint in {model_dir}")
    return Pipeline.from_single_file(ckpt, config, device="cpu", dtype=torch.float32,
                                     use_safetensors=ckpt.endswith(".safetensors"))
