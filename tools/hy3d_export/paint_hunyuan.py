"""Wrap Tencent's Hunyuan3D-Paint models (2.0: hy3dgen.texgen, 2.1:
hy3dpaint) into the paint graphs of docs/paint-contract.md.

The wrappers call Tencent's own forward passes and only supply, as graph
inputs, what Tencent keeps in Python dicts between calls:

* paint_ref calls the reference UNet (`unet_dual`) in write mode with an
  empty condition_embed_dict and returns the dict's tensors in the order the
  blocks filled it (the UNet's tail after the last block is dead code).
* paint_unet calls UNet2p5DConditionModel.forward with that dict already
  filled from the ref_* inputs (2.0: `condition_embed_dict`; 2.1: the
  `cache`, with `position_voxel_indices` built from the rope_index_l* inputs
  and no `dino_hidden_states_proj`, so the DINO projection is in the graph).
  Timesteps become one per (row, material, view), which diffusers' UNet
  takes as a 1-D tensor; camera ids and voxel indices are rounded, clamped
  and cast to int64 in the graph; 2.0's text is text_scale × the learned
  tokens (zeros for the unconditional row, as Tencent's negative prompt).
* Tencent's 2.1 self-attention moves every material stream to "cuda:0";
  while exporting, `cpu_tensors` makes Tensor.to ignore CUDA targets.
* Attention goes through hunyuan.sdpa (q scaled before QKᵀ) as for the
  shape graphs; nothing else in Tencent's modules is replaced.
"""

import contextlib
from typing import Dict, List

import torch
from torch import nn

from . import paint as P


@contextlib.contextmanager
def cpu_tensors():
    """Tensor.to(<cuda device>) returns the tensor itself for the block."""
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, (str, torch.device)) and str(target).startswith("cuda"):
            return self
        return original(self, *args, **kwargs)

    torch.Tensor.to = to
    try:
        yield
    finally:
        torch.Tensor.to = original


class _SizeKeyed(dict):
    """A dict keyed by token counts that also finds its entries when asked
    with a traced size: Tencent looks the RoPE indices up by
    `hidden_states.shape[1] in position_voxel_indices`, which under
    torch.onnx.export's tracer would miss every key and silently drop RoPE."""

    @staticmethod
    def _key(key):
        return key if isinstance(key, str) else int(key)

    def __contains__(self, key):
        return dict.__contains__(self, self._key(key))

    def __getitem__(self, key):
        return dict.__getitem__(self, self._key(key))

    def __setitem__(self, key, value):
        dict.__setitem__(self, self._key(key), value)


def _learned(unet: nn.Module, name: str) -> torch.Tensor:
    t = getattr(unet, name)
    return t.reshape(-1, t.shape[-2], t.shape[-1])  # 2.0 [1, 77, C], 2.1 [77, C] → [1, 77, C]


class PaintRefGraph(nn.Module):
    """ref_latents [B, R, 4, h, w] → the reference UNet's per-layer features."""

    def __init__(self, model: nn.Module, version: str):
        super().__init__()
        self.model, self.version = model, version
        self.layers: List[str] = []

    def features(self, ref_latents) -> Dict[str, torch.Tensor]:
        r, c, h, w = (int(d) for d in ref_latents.shape[1:])
        x = ref_latents.reshape(-1, c, h, w)
        text = _learned(self.model.unet, "learned_text_clip_ref") + torch.zeros_like(x[:, :1, 0, :1])
        dual = self.model.unet_dual
        kwargs = {}
        if getattr(dual, "class_embedding", None) is not None:
            kwargs["class_labels"] = torch.zeros_like(x[:, 0, 0, 0]).long()  # the pipeline's reference camera id 0
        store: Dict[str, torch.Tensor] = {}
        dual(x, torch.zeros_like(x[:, 0, 0, 0]), encoder_hidden_states=text, return_dict=False,
             cross_attention_kwargs={"mode": "w", "num_in_batch": r, "condition_embed_dict": store}, **kwargs)
        return store

    def forward(self, ref_latents):
        store = self.features(ref_latents)
        if not self.layers:
            self.layers = list(store)
        return tuple(store[name] for name in self.layers)


class PaintUNetGraph(nn.Module):
    """paint_unet of docs/paint-contract.md around Tencent's UNet2p5DConditionModel."""

    def __init__(self, model: nn.Module, profile: P.Profile, layers: List[str]):
        super().__init__()
        self.model, self.p, self.layers = model, profile, list(layers)

    def forward(self, sample, normal, position, timestep, *rest):
        n, mats = self.p.views, len(self.p.materials)
        tail = [int(d) for d in sample.shape[1:]]
        if self.p.version == "2.0":
            camera, ref_scale, text_scale, *refs = rest
            text = _learned(self.model.unet, "learned_text_clip_gen") * text_scale[:, None, None]
            cam = torch.clamp(torch.round(camera), 0, P.CAMERA_CLASSES - 1 - P.CAMERA_OFFSET).long()
            out = self.model(sample, P.repeat_rows(timestep, n), text, camera_info_gen=cam, normal_imgs=normal,
                             position_imgs=position, ref_scale=ref_scale,
                             condition_embed_dict=dict(zip(self.layers, refs)))
        else:
            ref_scale, dino, *more = rest
            rope, refs = more[:4], more[4:]
            unet = self.model.unet
            tokens = torch.stack([_learned(unet, f"learned_text_clip_{m}")[0] for m in self.p.materials])
            text = tokens.unsqueeze(0) + torch.zeros_like(ref_scale)[:, None, None, None]
            voxels = _SizeKeyed()
            for k, (g, v) in enumerate(P.rope_levels(self.p.view_size)):
                idx = torch.clamp(torch.round(rope[k]), 0, v - 1).long()
                voxels[n * g * g] = _SizeKeyed(voxel_indices=idx, voxel_resolution=v)
            cache = {"condition_embed_dict": dict(zip(self.layers, refs)), "position_voxel_indices": voxels}
            out = self.model(sample, P.repeat_rows(timestep, mats * n), text, embeds_normal=normal,
                             embeds_position=position, dino_hidden_states=dino, ref_scale=ref_scale, cache=cache)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.reshape([-1] + tail)


class VAEEncoderGraph(nn.Module):
    """image → moments: diffusers AutoencoderKL's encoder and quant_conv."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, image):
        h = self.vae.encoder(image)
        quant = getattr(self.vae, "quant_conv", None)
        return quant(h) if quant is not None else h


class VAEDecoderGraph(nn.Module):
    """latent (÷ scaling factor) → image: AutoencoderKL.decode."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        return self.vae.decode(latent, return_dict=False)[0]


class DelightGraph(nn.Module):
    """InstructPix2Pix's UNet with the constant text embedding of prompt ""."""

    def __init__(self, unet: nn.Module, text: torch.Tensor):
        super().__init__()
        self.unet = unet
        self.register_buffer("text", text.detach().reshape(1, text.shape[-2], text.shape[-1]).float())

    def forward(self, sample, timestep):
        text = self.text + torch.zeros_like(sample[:, :1, 0, :1])
        return self.unet(sample, timestep, encoder_hidden_states=text, return_dict=False)[0]


class DINOv2Graph(nn.Module):
    """pixel_values → last_hidden_state of transformers' Dinov2Model."""

    def __init__(self, dino: nn.Module):
        super().__init__()
        self.dino = dino

    def forward(self, pixel_values):
        return self.dino(pixel_values)[0]


class UpscalerGraph(nn.Module):
    """image (BGR order, [0, 1]) → RRDBNet ×4 output (BGR order)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image):
        return self.net(image)


def layer_shapes(ref: PaintRefGraph, p: P.Profile) -> Dict[str, tuple]:
    """Tencent's reference layers in order, with (tokens per reference view, width)."""
    with torch.no_grad(), cpu_tensors():
        store = ref.features(torch.zeros(1, p.reference_views, P.LATENT_CHANNELS, p.latent, p.latent))
    ref.layers = list(store)
    return {name: (t.shape[1] // p.reference_views, t.shape[2]) for name, t in store.items()}
