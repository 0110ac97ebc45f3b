"""The paint graphs' contract (docs/paint-contract.md), in one place for the
tiny generator (tools/make-tiny-paint), the Hunyuan3D-Paint exporter
(tools/export-hunyuan3d --paint) and the tests: graph names, tensor names and
shapes, the manifest, and the host-side arithmetic the graphs expect from
their caller (camera ids, RoPE voxel indices, the noise schedule).

A paint set is exported for one (views, view size) profile: every dim but the
batch is static. The batch B counts rows: one job takes one row per guidance
branch (2.0: [uncond, cond]; 2.1: [uncond, ref-only, full]; turbo: one).
"""

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Sequence

import torch

from .export import GraphSpec, export_graph, deterministic

LATENT_CHANNELS = 4
VAE_FACTOR = 8  # pixels per latent cell
SD_VAE_SCALE_FACTOR = 0.18215  # SD-2.x's AutoencoderKL scaling_factor
UPSCALE = 4
DINO_SIZE = 224
DINO_TOKENS = (DINO_SIZE // 14) ** 2 + 1  # 16² patches + CLS = 257
DINO_DIM = 1536  # DINOv2-giant
CAMERA_CLASSES = 49  # 2.0's camera Embedding rows: 5 reference + 44 generated ids
CAMERA_OFFSET = 5  # 2.0's UNet adds it to the generated views' ids
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# graph names
DELIGHT = "delight"
PAINT_REF = "paint_ref"
PAINT_UNET = "paint_unet"
VAE_ENCODER = "vae_encoder"
VAE_DECODER = "vae_decoder"
DINOV2 = "dinov2"
UPSCALER = "upscaler"

REQUIRED = {"2.0": (PAINT_REF, PAINT_UNET, VAE_ENCODER, VAE_DECODER),
            "2.1": (PAINT_REF, PAINT_UNET, VAE_ENCODER, VAE_DECODER, DINOV2, UPSCALER)}
MATERIALS = {"2.0": ["albedo"], "2.1": ["albedo", "mr"]}
ROWS_PER_JOB = {"cfg": 2, "cfg3": 3, "none": 1}

# Hunyuan3D-2.0's six fixed views (azimuth, elevation) in degrees, the first
# views of 2.1's candidates too.
DEFAULT_VIEWS = ((0, 0), (90, 0), (180, 0), (270, 0), (0, 90), (180, -90))


def camera_id(azim: float, elev: float) -> int:
    """2.0's camera class id of a generated view (before the UNet's +5):
    ((azim//30 + 9) % 12) // {0: 1, ±20: 1, ±90: 3}[elev] + {−20: 0, 0: 12,
    20: 24, −90: 36, 90: 40}[elev]. The six default views give 21, 12, 15,
    18, 43, 37."""
    div = {0: 1, 20: 1, -20: 1, 90: 3, -90: 3}[int(elev)]
    base = {-20: 0, 0: 12, 20: 24, -90: 36, 90: 40}[int(elev)]
    return int(((azim // 30 + 9) % 12) // div + base)


def rope_levels(view_size: int):
    """2.1's multi-view RoPE levels: (grid g, voxel resolution) per UNet
    level, g = h, h/2, h/4, h/8 cells per side (h = view_size/8) quantised to
    8g… voxel grids: (64, 512), (32, 256), (16, 128), (8, 64) at 512."""
    h = view_size // VAE_FACTOR
    return [(h >> k, h * (8 >> k)) for k in range(4)]


def rope_voxel_indices(position: torch.Tensor, grid: int, voxels: int) -> torch.Tensor:
    """Voxel indices of one RoPE level, as 2.1's compute_discrete_voxel_indice
    computes them: position [B, N, 3, H, W] in [0, 1] (pixel-space position
    maps, background 1) → [B, N·g², 3] integers in [0, voxels − 1], cells in
    row-major order per view. A pixel is foreground only when none of its
    three channels is exactly 1 (Tencent's test, so a surface point with one
    coordinate at 1 counts as background). A cell's position is the mean
    over its foreground pixels; cells with fewer than
    (H/g)·(W/g)/16 foreground pixels get 0. Tencent computes this in half
    precision; this reference uses float32 (the Go side may differ from it
    by one voxel where a mean lands on a rounding boundary)."""
    b, n, _, hh, ww = position.shape
    valid = (position != 1).all(dim=2, keepdim=True).expand_as(position)
    pos = torch.where(valid, position, torch.zeros_like(position))
    ch, cw = hh // grid, ww // grid
    pos = pos.reshape(b, n, 3, grid, ch, grid, cw)
    cnt = valid.reshape(b, n, 3, grid, ch, grid, cw).sum(dim=(4, 6)).float()
    mean = pos.sum(dim=(4, 6)) / cnt.clamp(min=1)
    mean = torch.where(cnt < (ch * cw) // 16, torch.zeros_like(mean), mean)
    idx = torch.round(mean.clamp(0, 1) * (voxels - 1))  # [b, n, 3, g, g]
    return idx.permute(0, 1, 3, 4, 2).reshape(b, n * grid * grid, 3)


def alphas_cumprod(beta_start=0.00085, beta_end=0.012, steps=1000) -> torch.Tensor:
    """ᾱ_t of SD-2.x's scaled_linear schedule (float64 → float32)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


# ---------------------------------------------------------------------------
# shapes


@dataclasses.dataclass(frozen=True)
class Profile:
    """What a paint set is exported for: the version's layout, N views of
    view_size² pixels, R reference pictures."""

    version: str  # "2.0" or "2.1"
    views: int
    view_size: int
    reference_views: int = 1

    @property
    def latent(self) -> int:
        return self.view_size // VAE_FACTOR

    @property
    def materials(self) -> List[str]:
        return MATERIALS[self.version]


def ref_input_names(layers: Sequence[str]) -> List[str]:
    return ["ref_" + name for name in layers]


def paint_ref_shapes(p: Profile, layers: Dict[str, tuple]) -> Dict[str, list]:
    """layers: Tencent's layer name → (tokens per reference view L_k, width C_k)."""
    h = p.latent
    s = {"ref_latents": [-1, p.reference_views, LATENT_CHANNELS, h, h]}
    for name, (l, c) in layers.items():
        s["ref_" + name] = [-1, p.reference_views * l, c]
    return s


def paint_unet_io(p: Profile, layers: Dict[str, tuple]):
    """(input names, output names, shapes) of paint_unet."""
    h, n = p.latent, p.views
    s = {}
    if p.version == "2.0":
        names = ["sample", "normal", "position", "timestep", "camera", "ref_scale", "text_scale"]
        s["sample"] = [-1, n, LATENT_CHANNELS, h, h]
        s["camera"] = [-1, n]
        s["text_scale"] = [-1]
    else:
        names = ["sample", "normal", "position", "timestep", "ref_scale", "dino"]
        s["sample"] = [-1, len(p.materials), n, LATENT_CHANNELS, h, h]
        s["dino"] = [-1, DINO_TOKENS, DINO_DIM]
        for k, (g, _) in enumerate(rope_levels(p.view_size)):
            names.append(f"rope_index_l{k}")
            s[f"rope_index_l{k}"] = [-1, n * g * g, 3]
    s["normal"] = [-1, n, LATENT_CHANNELS, h, h]
    s["position"] = [-1, n, LATENT_CHANNELS, h, h]
    s["timestep"] = [-1]
    s["ref_scale"] = [-1]
    for name, (l, c) in layers.items():
        names.append("ref_" + name)
        s["ref_" + name] = [-1, p.reference_views * l, c]
    s["noise_pred"] = list(s["sample"])
    return names, ["noise_pred"], s


def vae_shapes(p: Profile):
    h = p.latent
    return ({"image": [-1, 3, p.view_size, p.view_size], "moments": [-1, 2 * LATENT_CHANNELS, h, h]},
            {"latent": [-1, LATENT_CHANNELS, h, h], "image": [-1, 3, p.view_size, p.view_size]})


def delight_shapes(delight_size: int):
    h = delight_size // VAE_FACTOR
    return {"sample": [-1, 2 * LATENT_CHANNELS, h, h], "timestep": [-1], "noise_pred": [-1, LATENT_CHANNELS, h, h]}


def dinov2_shapes():
    return {"pixel_values": [-1, 3, DINO_SIZE, DINO_SIZE], "last_hidden_state": [-1, DINO_TOKENS, DINO_DIM]}


def upscaler_shapes(p: Profile):
    s = p.view_size
    return {"image": [-1, 3, s, s], "upscaled": [-1, 3, UPSCALE * s, UPSCALE * s]}


def sample_inputs(names: Sequence[str], shapes: Dict[str, list], batch: int, p: Profile,
                  generator: Optional[torch.Generator] = None):
    """Inputs that follow the contract's value ranges, for tracing and
    checks: camera ids of the default views, voxel indices in range, ref
    and text scales of a CFG layout, timesteps in [0, 999]."""
    g = generator or torch.Generator().manual_seed(0)
    out = []
    for name in names:
        shape = [batch if i == 0 else d for i, d in enumerate(shapes[name])]
        if name == "timestep":
            t = torch.linspace(999.0, 1.0, batch).round()
        elif name in ("ref_scale", "text_scale"):
            t = torch.tensor([float(i > 0 or batch == 1) for i in range(batch)])  # [uncond, cond…]
        elif name == "camera":
            ids = [camera_id(*DEFAULT_VIEWS[i % len(DEFAULT_VIEWS)]) for i in range(p.views)]
            t = torch.tensor([ids] * batch, dtype=torch.float32)
        elif name.startswith("rope_index_l"):
            _, voxels = rope_levels(p.view_size)[int(name[len("rope_index_l"):])]
            t = torch.randint(0, voxels, shape, generator=g).float()
        elif name == "pixel_values":
            t = torch.randn(shape, generator=g)
        elif name == "image" and shape[-1] == p.view_size and len(shape) == 4:
            t = torch.rand(shape, generator=g) * 2 - 1
        else:
            t = torch.randn(shape, generator=g)
        out.append(t)
    return tuple(out)


# ---------------------------------------------------------------------------
# manifest


def scheduler_config(kind: str, prediction_type: str = "epsilon") -> dict:
    """A diffusers scheduler_config.json for SD-2.x's noise schedule, as the
    tiny sets ship it (real sets copy the checkpoint's own)."""
    cls = {"euler_ancestral": "EulerAncestralDiscreteScheduler", "lcm": "LCMScheduler",
           "unipc": "UniPCMultistepScheduler"}[kind]
    cfg = {"_class_name": cls, "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
           "beta_schedule": "scaled_linear", "prediction_type": prediction_type, "steps_offset": 1,
           "timestep_spacing": "trailing", "set_alpha_to_one": False, "clip_sample": False}
    if kind == "unipc":
        cfg.update({"solver_order": 2, "solver_type": "bh2", "predict_x0": True, "lower_order_final": True,
                    "disable_corrector": [], "thresholding": False})
    if kind == "lcm":
        cfg.update({"original_inference_steps": 50, "timestep_scaling": 10.0})
    return cfg


# Hunyuan3D-2.0 turbo's LCM timesteps: a 30-step DDIM grid (32, 65, …, 989),
# every third from the last.
TURBO_TIMESTEPS = [int(i * 33 + 32) for i in range(29, 0, -3)]


SAMPLERS = {
    # (version, turbo) → sampler defaults
    ("2.0", False): {"kind": "euler_ancestral", "guidance": "cfg", "steps": 30, "guidance_scale": 2.0},
    ("2.0", True): {"kind": "lcm", "guidance": "none", "steps": 10, "guidance_scale": 1.0,
                    "timesteps": TURBO_TIMESTEPS},
    ("2.1", False): {"kind": "unipc", "guidance": "cfg3", "steps": 15, "guidance_scale": 3.0},
}


def manifest(p: Profile, name: str, family: str, description: str, *, turbo: bool = False,
             vae_scale_factor: float = SD_VAE_SCALE_FACTOR, delight_size: Optional[int] = None,
             sampler: Optional[dict] = None) -> dict:
    """The caller's fields and the paint block; write_paint_set adds graphs."""
    s = dict(sampler or SAMPLERS[p.version, turbo])
    s["config"] = "scheduler_config.json"
    paint = {
        "version": p.version,
        "views": p.views,
        "view_size": p.view_size,
        "latent_channels": LATENT_CHANNELS,
        "vae_scale_factor": vae_scale_factor,
        "reference_views": p.reference_views,
        "materials": p.materials,
        "sampler": s,
    }
    if p.version == "2.0":
        paint["cameras"] = {"offset": CAMERA_OFFSET, "classes": CAMERA_CLASSES}
    if delight_size:
        paint["delight"] = {"view_size": delight_size, "steps": 50, "guidance_scale": 1.0,
                            "image_guidance_scale": 1.5, "config": "delight_scheduler_config.json"}
    if p.version == "2.1":
        paint["dino"] = {"size": DINO_SIZE, "tokens": DINO_TOKENS, "dim": DINO_DIM,
                         "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
        paint["upscale"] = UPSCALE
        levels = rope_levels(p.view_size)
        paint["rope"] = {"grids": [g for g, _ in levels], "voxels": [v for _, v in levels]}
    return {"name": name, "kind": "paint", "family": family, "description": description, "paint": paint}


def write_paint_set(out_dir: str, manifest_fields: dict, graphs: Sequence[GraphSpec],
                    scheduler_configs: Dict[str, dict], seed: int = 0) -> dict:
    """Export every graph into out_dir, write the scheduler configs and
    manifest.json (the paint counterpart of export_model_set)."""
    os.makedirs(out_dir, exist_ok=True)
    with deterministic(seed):
        for g in graphs:
            export_graph(g.module, g.inputs, g.input_names, g.output_names, g.dynamic_axes(),
                         os.path.join(out_dir, g.filename()),
                         output_shapes={n: g.shapes[n] for n in g.output_names})
    for file, cfg in scheduler_configs.items():
        with open(os.path.join(out_dir, file), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
    m = dict(manifest_fields)
    m["graphs"] = {g.name: {"onnx": g.filename(),
                            "inputs": [{"name": n, "shape": list(g.shapes[n])} for n in g.input_names],
                            "outputs": [{"name": n, "shape": list(g.shapes[n])} for n in g.output_names],
                            "max_batch": g.max_batch} for g in graphs}
    missing = [n for n in REQUIRED[m["paint"]["version"]] if n not in m["graphs"]]
    if missing:
        raise ValueError(f"paint set lacks graphs {missing}")
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    return m


def repeat_rows(x: torch.Tensor, k: int) -> torch.Tensor:
    """x.repeat_interleave(k, dim=0) (each row k times in a row) as
    unsqueeze/expand/reshape, which torch 1.13 exports with a dynamic batch."""
    if k == 1:
        return x
    rest = [int(d) for d in x.shape[1:]]
    return x.unsqueeze(1).expand(-1, k, *rest).reshape(-1, *rest)


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers' Timesteps(dim, flip_sin_to_cos=True, freq_shift=0): [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


MAX_BATCH = {DELIGHT: 1, PAINT_REF: 2, VAE_ENCODER: 16, VAE_DECODER: 16, DINOV2: 2, UPSCALER: 4}


def graph_specs(p: Profile, modules: Dict[str, torch.nn.Module], layers: Dict[str, tuple], *,
                rows_per_job: int, max_batch: Optional[Dict[str, int]] = None,
                delight_size: Optional[int] = None, trace_batch: int = 2) -> List[GraphSpec]:
    """GraphSpecs of a paint set from its modules (keyed by graph name),
    with contract-conforming sample inputs at trace_batch rows. paint_unet's
    default max_batch is two jobs' rows."""
    mb = dict(MAX_BATCH)
    mb[PAINT_UNET] = 2 * rows_per_job
    mb.update(max_batch or {})
    g = torch.Generator().manual_seed(0)
    specs = []

    def add(name, in_names, out_names, shapes):
        inputs = sample_inputs(in_names, shapes, trace_batch, p, g)
        specs.append(GraphSpec(name, modules[name], inputs, in_names, out_names, shapes, mb[name]))

    ref_shapes = paint_ref_shapes(p, layers)
    add(PAINT_REF, ["ref_latents"], ref_input_names(layers), ref_shapes)
    names, outs, shapes = paint_unet_io(p, layers)
    add(PAINT_UNET, names, outs, shapes)
    enc, dec = vae_shapes(p)
    add(VAE_ENCODER, ["image"], ["moments"], enc)
    add(VAE_DECODER, ["latent"], ["image"], dec)
    if DELIGHT in modules:
        add(DELIGHT, ["sample", "timestep"], ["noise_pred"], delight_shapes(delight_size or p.view_size))
    if DINOV2 in modules:
        add(DINOV2, ["pixel_values"], ["last_hidden_state"], dinov2_shapes())
    if UPSCALER in modules:
        add(UPSCALER, ["image"], ["upscaled"], upscaler_shapes(p))
    return specs


CHECK_FORMAT = "hy3d-torch-check/1"  # tools/compare-outputs reads it


def store_tensor(out_dir: str, graph: str, name: str, t: torch.Tensor) -> dict:
    """Write t as raw little-endian float32 and return its check.json entry."""
    t = t.detach().float().contiguous()
    path = f"{graph}.{name}.f32"
    t.numpy().astype("<f4").tofile(os.path.join(out_dir, path))
    return {"name": name, "shape": list(t.shape), "file": path}


def write_check(out_dir: str, set_dir: str, source: str, cases: Dict[str, tuple],
                bounds: Optional[Dict[str, tuple]] = None) -> None:
    """check.json for tools/compare-outputs: cases maps a graph name to
    (input names, input tensors, output names, expected output tensors);
    bounds a graph name to (bound, why): its own absolute and relative
    bound in place of the default 1e-5, with the measurement behind it."""
    graphs = {}
    for graph, (in_names, inputs, out_names, outputs) in cases.items():
        graphs[graph] = {"inputs": [store_tensor(out_dir, graph, n, t) for n, t in zip(in_names, inputs)],
                         "outputs": [store_tensor(out_dir, graph, n, t) for n, t in zip(out_names, outputs)]}
        if bounds and graph in bounds:
            bound, why = bounds[graph]
            graphs[graph]["tolerance"] = {"abs": bound, "rel": bound}
            graphs[graph]["why"] = why
    with open(os.path.join(out_dir, "check.json"), "w") as f:
        json.dump({"format": CHECK_FORMAT, "source": source, "set": set_dir, "graphs": graphs}, f, indent=1)
