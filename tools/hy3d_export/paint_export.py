"""tools/export-hunyuan3d --paint: Tencent's Hunyuan3D-Paint checkpoints, in
the folder layout they are published in, into a paint set
(docs/paint-contract.md) for one (views, view size) profile.

The checkpoints are loaded the way Tencent's own code loads them, with the
classes of the operator's checkout and of the packages Tencent builds on:

* the paint model (Hugging Face tencent/Hunyuan3D-2 `hunyuan3d-paint-v2-0`
  or `-turbo`, tencent/Hunyuan3D-2.1 `hunyuan3d-paintpbr-v2-1`) is a
  diffusers pipeline folder: `unet/` (config.json and
  diffusion_pytorch_model.bin, loaded by the checkout's
  UNet2p5DConditionModel.from_pretrained, which builds both the multi-view
  UNet and its reference copy `unet_dual`), `vae/` (diffusers'
  AutoencoderKL.from_pretrained) and `scheduler/scheduler_config.json`;
  text_encoder/, tokenizer/ and feature_extractor/ are not read (the paint
  UNet's text tokens are learned parameters);
* the delight model (`hunyuan3d-delight-v2-0`, 2.0 only) is a diffusers
  StableDiffusionInstructPix2PixPipeline folder: `unet/`, `vae/`,
  `text_encoder/` and `tokenizer/` (transformers' CLIP, run once on the empty
  prompt), `scheduler/`;
* DINOv2 (2.1) is transformers' AutoModel folder of facebook/dinov2-giant;
* RealESRGAN x4plus (2.1) is basicsr's RRDBNet with the state dict of
  RealESRGAN_x4plus.pth (`params_ema`, else `params`, as RealESRGANer reads
  it); its depth and widths are read from the state dict (Tencent's: 23
  blocks, 64 features, growth 32).

The sampler comes from the pipeline Tencent's code runs (Euler Ancestral for
2.0, LCM with the turbo timesteps for -turbo, UniPC for 2.1); the set carries
the checkpoint's scheduler_config.json with the class and the trailing
timestep spacing Tencent's code swaps in (the delight config keeps its
spacing, as Tencent's Light_Shadow_Remover does).
"""

import json
import os
from typing import Dict, Optional

import torch

from . import paint as P
from .hunyuan import exportable_attention
from .paint_check import PAINT_PACKAGES, import_paint_classes
from .paint_hunyuan import (DelightGraph, DINOv2Graph, PaintRefGraph, PaintUNetGraph, UpscalerGraph,
                            VAEDecoderGraph, VAEEncoderGraph, cpu_tensors, layer_shapes)

FAMILIES = {"2.0": "hunyuan3d-paint-2.0", "2.1": "hunyuan3d-paint-2.1"}
SCHEDULER_CLASSES = {"euler_ancestral": "EulerAncestralDiscreteScheduler", "lcm": "LCMScheduler",
                     "unipc": "UniPCMultistepScheduler"}
# transformers' and basicsr's attention and convolutions run in the graphs too
EXPORT_PACKAGES = PAINT_PACKAGES + ("transformers", "basicsr")


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def scheduler_config(model_dir: str, kind: str, trailing: bool = True) -> dict:
    """The checkpoint's scheduler config with the class (and spacing) that
    Tencent's pipeline builds from it with from_config."""
    cfg = read_json(os.path.join(model_dir, "scheduler", "scheduler_config.json"))
    cfg["_class_name"] = SCHEDULER_CLASSES[kind]
    if trailing:
        cfg["timestep_spacing"] = "trailing"
    return cfg


def vae_scale_factor(model_dir: str) -> float:
    return float(read_json(os.path.join(model_dir, "vae", "config.json")).get("scaling_factor", P.SD_VAE_SCALE_FACTOR))


def load_vae(diffusers, model_dir: str):
    return diffusers.AutoencoderKL.from_pretrained(model_dir, subfolder="vae", torch_dtype=torch.float32).eval()


def empty_prompt_embedding(delight_dir: str) -> torch.Tensor:
    """CLIP("") [1, 77, C], as StableDiffusionInstructPix2PixPipeline encodes
    the prompt "" (padded to the tokenizer's length, last hidden state)."""
    import transformers
    tok = transformers.CLIPTokenizer.from_pretrained(delight_dir, subfolder="tokenizer")
    enc = transformers.CLIPTextModel.from_pretrained(delight_dir, subfolder="text_encoder").eval()
    ids = tok("", padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    with torch.no_grad():
        return enc(ids)[0].float()


def load_upscaler(path: str) -> torch.nn.Module:
    """basicsr's RRDBNet with RealESRGAN's weights; depth and widths from
    the state dict."""
    from basicsr.archs.rrdbnet_arch import RRDBNet
    state = torch.load(path, map_location="cpu")
    for key in ("params_ema", "params"):
        if key in state:
            state = state[key]
            break
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    feat = int(state["conv_first.weight"].shape[0])
    grow = int(state["body.0.rdb1.conv1.weight"].shape[0])
    net = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=feat, num_block=blocks, num_grow_ch=grow, scale=P.UPSCALE)
    net.load_state_dict(state, strict=True)
    return net.eval()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def export_paint(checkout: str, version: str, model_dir: str, out_dir: str, *, views: int, view_size: int,
                 name: str, turbo: bool = False, delight_dir: Optional[str] = None, dino_dir: Optional[str] = None,
                 upscaler_path: Optional[str] = None, delight_size: int = 512,
                 max_batch: Optional[Dict[str, int]] = None) -> dict:
    """Load the checkpoints, wrap them into the paint graphs, export every
    graph and write the set's manifest.json and scheduler configs.
    delight_size is the delight graph's picture side (Tencent's
    Light_Shadow_Remover resizes the picture to 512²)."""
    if version not in FAMILIES:
        raise ValueError(f"paint version {version!r}: want 2.0 or 2.1")
    if turbo and version != "2.0":
        raise ValueError("only 2.0 has a turbo paint checkpoint")
    if version == "2.1" and not (dino_dir and upscaler_path):
        raise ValueError("a 2.1 paint set needs DINOv2 (--dino-dir) and RealESRGAN (--realesrgan)")
    if version == "2.0" and (dino_dir or upscaler_path):
        raise ValueError("DINOv2 and RealESRGAN belong to 2.1 paint sets")
    if view_size % P.VAE_FACTOR or view_size <= 0 or views < 1:
        raise ValueError(f"profile {views}×{view_size}: want views ≥ 1 and a view size that is a multiple of 8")
    UNet2p5D, diffusers = import_paint_classes(checkout, version)
    model = UNet2p5D.from_pretrained(os.path.join(model_dir, "unet"), torch_dtype=torch.float32).float().eval()
    vae = load_vae(diffusers, model_dir)
    p = P.Profile(version, views, view_size)
    sampler = dict(P.SAMPLERS[version, turbo])
    configs = {"scheduler_config.json": scheduler_config(model_dir, sampler["kind"])}

    ref = PaintRefGraph(model, version)
    layers = layer_shapes(ref, p)
    modules = {P.PAINT_REF: ref, P.PAINT_UNET: PaintUNetGraph(model, p, list(layers)),
               P.VAE_ENCODER: VAEEncoderGraph(vae), P.VAE_DECODER: VAEDecoderGraph(vae)}
    if not delight_dir:
        delight_size = None
    else:
        if version != "2.0":
            raise ValueError("the delight model belongs to 2.0 paint sets")
        if not same_weights(vae, load_vae(diffusers, delight_dir)):
            raise ValueError(f"{delight_dir}: its VAE is not the paint checkpoint's; the set decodes delight "
                             "latents with the paint VAE")
        unet = diffusers.UNet2DConditionModel.from_pretrained(delight_dir, subfolder="unet",
                                                              torch_dtype=torch.float32).eval()
        modules[P.DELIGHT] = DelightGraph(unet, empty_prompt_embedding(delight_dir))
        configs["delight_scheduler_config.json"] = scheduler_config(delight_dir, "euler_ancestral", trailing=False)
    if version == "2.1":
        import transformers
        modules[P.DINOV2] = DINOv2Graph(transformers.AutoModel.from_pretrained(dino_dir).float().eval())
        modules[P.UPSCALER] = UpscalerGraph(load_upscaler(upscaler_path))

    what = {"2.0": "Hunyuan3D-Paint 2.0" + (" turbo" if turbo else ""), "2.1": "Hunyuan3D-Paint 2.1 (PBR)"}[version]
    manifest = P.manifest(p, name, FAMILIES[version],
                          f"{what}, {views} views of {view_size}², exported from {os.path.basename(os.path.normpath(model_dir))} "
                          "by tools/export-hunyuan3d --paint",
                          turbo=turbo, vae_scale_factor=vae_scale_factor(model_dir), delight_size=delight_size,
                          sampler=sampler)
    specs = P.graph_specs(p, modules, layers, rows_per_job=P.ROWS_PER_JOB[sampler["guidance"]],
                          max_batch=max_batch, delight_size=delight_size)
    with exportable_attention(EXPORT_PACKAGES), cpu_tensors():
        return P.write_paint_set(out_dir, manifest, specs, configs)
