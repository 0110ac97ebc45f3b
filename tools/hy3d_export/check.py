"""Check the exporter against the operator's checkout of Tencent's code,
without weights: Tencent's own DiT and ShapeVAE classes are built with small
random configurations, their PyTorch outputs on seeded inputs are stored,
the same modules are exported by export_pipeline (the function
tools/export-hunyuan3d runs), and tools/compare-outputs then runs the graphs
through ONNX Runtime and compares. It answers "does the exporter still match
these classes?" in a minute, before an export of the real checkpoint that
takes many.

What it covers: the DiT (2.0/2mini: Flux-style double and single stream
blocks, with guidance embedding for turbo/fast; 2.1: U-Net skips and MoE
with routing that matters, because the gates are randomised), the VAE's
latent transformer and geometry decoder (with FlashVDM's processor installed
first, as a generation leaves it; the reference is the plain processor).
Not covered: the conditioner, which is transformers' DINOv2 with hy3d's
preprocessing in front; a stand-in with the same output contract is exported
so that the set is complete, and it is not compared.
"""

import contextlib
import copy
import json
import os
import sys
import types

import torch
from torch import nn

from .hunyuan import (HUNYUAN_PACKAGES, IMAGE_SIZE, PlainCrossAttentionProcessor, export_pipeline,
                      exportable_attention, install_compat, vae_latent_shape)

CHECK_FORMAT = "hy3d-torch-check/1"
COND_TOKENS = 1 + (IMAGE_SIZE // 14) ** 2  # DINOv2 at 518² with patch 14: 37² + CLS


# ---------------------------------------------------------------- Tencent's classes


def _package_shells(root: str, packages) -> None:
    """Module objects for Tencent's packages whose __init__ would import the
    whole pipeline (diffusers, trimesh, rembg…), so that only the model
    files load: submodules still import from the checkout's real files."""
    for name in packages:
        m = types.ModuleType(name)
        m.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules[name] = m


def import_classes(checkout: str, family: str):
    """(DiT class, ShapeVAE, FlashVDMCrossAttentionProcessor) from the checkout."""
    install_compat()
    if family == "2.1":
        root = os.path.join(checkout, "hy3dshape")
        sys.path.insert(0, root)
        _package_shells(root, ("hy3dshape", "hy3dshape.models"))
        from hy3dshape.models.denoisers.hunyuandit import HunYuanDiTPlain as DiT  # noqa: E402
        from hy3dshape.models.autoencoders import FlashVDMCrossAttentionProcessor, ShapeVAE  # noqa: E402
    else:
        sys.path.insert(0, checkout)
        _package_shells(checkout, ("hy3dgen", "hy3dgen.shapegen", "hy3dgen.shapegen.models"))
        from hy3dgen.shapegen.models.denoisers.hunyuan3ddit import Hunyuan3DDiT as DiT  # noqa: E402
        from hy3dgen.shapegen.models.autoencoders import FlashVDMCrossAttentionProcessor, ShapeVAE  # noqa: E402
    return DiT, ShapeVAE, FlashVDMCrossAttentionProcessor


# Small configurations; "real" widths are 2mini's (hidden 1024, 16 heads,
# latents 512×64, cond 1536) at depth 1+1, to exercise the real head sizes.
SMALL = {"latents": 32, "channels": 16, "cond_dim": 24, "hidden": 64, "heads": 4, "vae_width": 64}
REAL = {"latents": 512, "channels": 64, "cond_dim": 1536, "hidden": 1024, "heads": 16, "vae_width": 1024}


def small_models(classes, family: str, guidance_embed: bool = False, real_widths: bool = False, seed: int = 0):
    """Tencent's DiT and ShapeVAE with random weights at a small size."""
    DiT, ShapeVAE, _ = classes
    s = REAL if real_widths else SMALL
    torch.manual_seed(seed)
    if family == "2.1":
        dit = DiT(input_size=s["latents"], in_channels=s["channels"], hidden_size=s["hidden"],
                  context_dim=s["cond_dim"], depth=5, num_heads=s["heads"], qk_norm=True, text_len=COND_TOKENS,
                  with_decoupled_ca=False, use_attention_pooling=False, qk_norm_type="rms", qkv_bias=False,
                  use_pos_emb=False, num_moe_layers=2, num_experts=4, moe_top_k=2)
        scale_factor = 1.0039506158752403
    else:
        deep = 1 if real_widths else 2
        dit = DiT(in_channels=s["channels"], context_in_dim=s["cond_dim"], hidden_size=s["hidden"], mlp_ratio=4.0,
                  num_heads=s["heads"], depth=deep, depth_single_blocks=deep, axes_dim=[s["hidden"] // s["heads"]],
                  theta=10000, qkv_bias=True, guidance_embed=guidance_embed)
        scale_factor = 1.0188137142395404
    vae = ShapeVAE(num_latents=s["latents"], embed_dim=s["channels"], width=s["vae_width"], heads=s["heads"],
                   num_decoder_layers=1 if real_widths else 2, num_encoder_layers=1, num_freqs=8, include_pi=False,
                   qkv_bias=False, qk_norm=True, point_feats=4, pc_size=64, pc_sharpedge_size=64,
                   scale_factor=scale_factor)
    return dit.eval(), vae.eval()


# ---------------------------------------------------------------- the check


def randomize(dit: nn.Module, vae: nn.Module, seed: int = 1) -> None:
    """Affine norm weights away from 1, so that a mixed-up norm shows, and
    MoE gates away from zero-init, so that routing matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(dit.named_parameters()) + list(vae.named_parameters()):
            if name.endswith("scale") or name.endswith("norm.weight") or ".ln" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        for m in dit.modules():
            if type(m).__name__ == "MoEGate":
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))


class _Encoder(nn.Module):
    """A conditioner stand-in with DINOv2's output contract: 14-pixel
    patches and a class token, [B, 3, 518, 518] → [B, 1370, D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.patches = nn.Conv2d(3, dim, 14, stride=14)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))

    def forward(self, image):
        h = self.patches(image).flatten(2).transpose(1, 2)
        return types.SimpleNamespace(last_hidden_state=torch.cat([self.cls.expand(h.shape[0], -1, -1), h], 1))


class FlowMatchEulerDiscreteScheduler:
    """Names the sampler for the manifest, as Tencent's scheduler classes do."""
    config = types.SimpleNamespace(num_train_timesteps=1000)


class ConsistencyFlowMatchEulerDiscreteScheduler:
    config = types.SimpleNamespace(num_train_timesteps=1000, pcm_timesteps=100)


def store_tensor(out_dir: str, graph: str, name: str, t: torch.Tensor) -> dict:
    """Write t as raw little-endian float32 and return its check.json entry."""
    t = t.detach().float().contiguous()
    path = f"{graph}.{name}.f32"
    t.numpy().astype("<f4").tofile(os.path.join(out_dir, path))
    return {"name": name, "shape": list(t.shape), "file": path}


def write_check(dit: nn.Module, vae: nn.Module, cond_dim: int, out_dir: str, family: str, name: str, source: str,
                flashvdm_processor=None, batch: int = 3, points: int = 777, seed: int = 7,
                packages=HUNYUAN_PACKAGES, reference_packages=None) -> dict:
    """Store PyTorch's outputs of the untouched modules on seeded inputs at
    batch (the export traces another batch, so the dynamic axis is checked
    too), export the modules into out_dir/set and write out_dir/check.json.
    cond_dim is the DiT's cond width; packages are those whose attention
    globals the export replaces (Tencent's by default). reference_packages,
    when given, have their attention replaced for the PyTorch reference too:
    for kernels that cannot run on this machine (flash or Sage attention
    bound at import); otherwise the reference is the modules' own."""
    os.makedirs(out_dir, exist_ok=True)
    guidance_embed = bool(getattr(dit, "guidance_embed", False))
    if flashvdm_processor is not None:
        vae.geo_decoder.set_cross_attention_processor(flashvdm_processor())
    tokens, channels = vae_latent_shape(vae)
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(batch, tokens, channels, generator=g)
    sigma = torch.linspace(0.0, 1.0, batch)
    cond = torch.randn(batch, COND_TOKENS, cond_dim, generator=g)
    guidance = torch.linspace(3.0, 7.0, batch)
    queries = torch.rand(batch, points, 3, generator=g) * 2.02 - 1.01
    replaced = exportable_attention(reference_packages) if reference_packages else contextlib.nullcontext()
    with torch.no_grad(), replaced:
        kwargs = {"guidance": guidance} if guidance_embed else {}
        velocity = dit(latents, sigma, {"main": cond}, **kwargs)
        z = latents / vae.scale_factor
        features = vae(z)
        plain = copy.deepcopy(vae)
        plain.geo_decoder.set_cross_attention_processor(PlainCrossAttentionProcessor())
        logits = plain.geo_decoder(queries=queries, latents=features).squeeze(-1)

    dit_inputs = [store_tensor(out_dir, "dit", "latents", latents), store_tensor(out_dir, "dit", "timestep", sigma),
                  store_tensor(out_dir, "dit", "cond", cond)]
    if guidance_embed:
        dit_inputs.append(store_tensor(out_dir, "dit", "guidance", guidance))
    graphs = {
        "dit": {"inputs": dit_inputs, "outputs": [store_tensor(out_dir, "dit", "velocity", velocity)]},
        "vae_latents": {"inputs": [store_tensor(out_dir, "vae_latents", "latents", z)],
                        "outputs": [store_tensor(out_dir, "vae_latents", "features", features)]},
        "vae_geometry": {"inputs": [store_tensor(out_dir, "vae_geometry", "queries", queries),
                                    store_tensor(out_dir, "vae_geometry", "features", features)],
                         "outputs": [store_tensor(out_dir, "vae_geometry", "logits", logits)]},
    }
    scheduler = ConsistencyFlowMatchEulerDiscreteScheduler() if guidance_embed else FlowMatchEulerDiscreteScheduler()
    pipe = types.SimpleNamespace(model=dit, vae=vae, scheduler=scheduler,
                                 conditioner=types.SimpleNamespace(main_image_encoder=_EncoderHolder(cond_dim)))
    manifest = export_pipeline(pipe, os.path.join(out_dir, "set"), family, name, packages=packages)
    with open(os.path.join(out_dir, "check.json"), "w") as f:
        json.dump({"format": CHECK_FORMAT, "source": source, "set": "set", "graphs": graphs}, f, indent=1)
    return manifest


class _EncoderHolder(nn.Module):
    """What export_pipeline reads of Tencent's conditioner.main_image_encoder."""

    def __init__(self, dim: int):
        super().__init__()
        self.model = _Encoder(dim)
