"""Graph specs and manifests of engines/tiny, engines/tiny-turbo and
engines/silhouette."""

import torch

from .export import GraphSpec, coarse_resolution
from .tiny import (
    COND_DIM,
    COND_TOKENS,
    FEATURE_WIDTH,
    IMAGE_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LATENT_CHANNELS,
    SILHOUETTE,
    TINY,
    TinySet,
)

# name → (guidance-distilled, design)
SETS = {"tiny": (False, TINY), "tiny-turbo": (True, TINY), "silhouette": (True, SILHOUETTE)}

MAX_BATCH = {"conditioner": 8, "dit": 16, "vae_latents": 8, "vae_geometry": 8}


class _DiTGraph(torch.nn.Module):
    """The CFG DiT graph: (latents, timestep, cond) → velocity."""

    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, latents, timestep, cond):
        return self.dit(latents, timestep, cond)


def graph_specs(tiny: TinySet, batch: int = 2, queries: int = 100):
    t, d, l, c, w = COND_TOKENS, COND_DIM, tiny.design.tokens, LATENT_CHANNELS, FEATURE_WIDTH
    g = torch.Generator().manual_seed(1234)
    image = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    latents = torch.randn(batch, l, c, generator=g)
    sigma = torch.linspace(0.1, 0.9, batch)
    cond = torch.randn(batch, t, d, generator=g)
    feats = torch.randn(batch, l, w, generator=g)
    pts = torch.rand(batch, queries, 3, generator=g) * 2 - 1

    dit_names = ["latents", "timestep", "cond"]
    dit_inputs = (latents, sigma, cond)
    dit_shapes = {"latents": [-1, l, c], "timestep": [-1], "cond": [-1, t, d], "velocity": [-1, l, c]}
    dit_module = _DiTGraph(tiny.dit)
    if tiny.turbo:
        dit_names.append("guidance")
        dit_inputs = dit_inputs + (torch.full((batch,), 5.0),)
        dit_shapes["guidance"] = [-1]
        dit_module = tiny.dit
    return [
        GraphSpec("conditioner", tiny.conditioner, (image,), ["image"], ["cond"],
                  {"image": [-1, 3, IMAGE_SIZE, IMAGE_SIZE], "cond": [-1, t, d]},
                  MAX_BATCH["conditioner"]),
        GraphSpec("dit", dit_module, dit_inputs, dit_names, ["velocity"], dit_shapes, MAX_BATCH["dit"]),
        GraphSpec("vae_latents", tiny.vae_latents, (latents,), ["latents"], ["features"],
                  {"latents": [-1, l, c], "features": [-1, l, w]}, MAX_BATCH["vae_latents"]),
        GraphSpec("vae_geometry", tiny.vae_geometry, (pts, feats), ["queries", "features"], ["logits"],
                  {"queries": [-1, -1, 3], "features": [-1, l, w], "logits": [-1, -1]},
                  MAX_BATCH["vae_geometry"], axis_names={"queries": {1: "points"}, "logits": {1: "points"}}),
    ]


def manifest(tiny: TinySet) -> dict:
    if tiny.design is SILHOUETTE:
        name, family = "silhouette", "hunyuan3d-2mini"
        desc = ("Not Hunyuan3D: constructed reference models (hy3d tools/make-tiny-engines) with the "
                "exact tensor contract of Hunyuan3D-2mini-Turbo (512 latent tokens); the mesh is an "
                "inflated version of the picture's silhouette. For real shapes export Tencent's "
                "weights with tools/export-hunyuan3d and serve them with --engines (docs/operators.md).")
        sampler = {"kind": "consistency", "guidance": "embedded", "steps": 5,
                   "guidance_scale": 5.0, "pcm_timesteps": 100}
    elif tiny.turbo:
        name, family = "tiny-turbo", "hunyuan3d-2mini"
        desc = ("Tiny guidance-distilled reference models (hy3d tools/make-tiny-engines): "
                "the contract of Hunyuan3D-2mini-Turbo at toy size; the surface is an inflated "
                "version of the picture's silhouette.")
        sampler = {"kind": "consistency", "guidance": "embedded", "steps": 5,
                   "guidance_scale": 5.0, "pcm_timesteps": 100}
    else:
        name, family = "tiny", "hunyuan3d-2.0"
        desc = ("Tiny reference models (hy3d tools/make-tiny-engines): the contract of "
                "Hunyuan3D-2.0 at toy size; the surface is an inflated version of the "
                "picture's silhouette.")
        sampler = {"kind": "flow_euler", "guidance": "cfg", "steps": 30, "guidance_scale": 5.0}
    return {
        "name": name,
        "family": family,
        "description": desc,
        "scale_factor": tiny.scale_factor,
        "image": {"size": IMAGE_SIZE, "canvas_size": 512, "border_ratio": 0.15,
                  "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "tokens": {"cond_tokens": COND_TOKENS, "cond_dim": COND_DIM, "latent_tokens": tiny.design.tokens,
                   "latent_channels": LATENT_CHANNELS, "feature_width": FEATURE_WIDTH},
        "sampler": sampler,
        "volume": {"bounds": 1.01, "resolution": 128, "chunk_points": 8000,
                   # The silhouette set's geometry decoder attends to 512 tokens, so its
                   # first coarse-to-fine level is 32: the same mesh from fewer points.
                   "coarse_resolution": 32 if tiny.design is SILHOUETTE else coarse_resolution(128),
                   "refine_band": 0.95},
    }
