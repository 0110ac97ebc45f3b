"""The paint half of tools/check-hunyuan3d-export: Tencent's
UNet2p5DConditionModel (2.0 or 2.1) on a small diffusers UNet2DConditionModel
and a small AutoencoderKL, random weights, PyTorch outputs stored, the
modules exported by the paint wrappers (paint_hunyuan.py), and ONNX Runtime
compared with PyTorch by tools/compare-outputs.

The reference for paint_unet is Tencent's whole forward pass from the
reference latents (it runs the reference UNet itself, and for 2.1 computes
the RoPE voxel indices from position maps), while the graph gets the
reference features and voxel indices as inputs: so the check covers the
split into paint_ref and paint_unet, not only each half. Not covered:
DINOv2 (transformers) and RealESRGAN (basicsr), whose wrappers only call the
model; the delight UNet and the VAE are diffusers' own classes, checked here.
"""

import contextlib
import os
import sys
import types

import torch

from . import paint as P
from .hunyuan import exportable_attention, install_compat
from .paint_hunyuan import (DelightGraph, PaintRefGraph, PaintUNetGraph, VAEDecoderGraph, VAEEncoderGraph,
                            cpu_tensors, layer_shapes)

PAINT_PACKAGES = ("hy3dgen", "hunyuanpaintpbr", "diffusers")
VIEWS, VIEW_SIZE = 2, 64  # latent 8×8: RoPE grids 8, 4, 2, 1

# Per-graph bounds where float32 rounding alone reaches the default 1e-5.
# 2.1's paint_unet (per-material self-attention, reference, RoPE multi-view,
# text and 1028-token DINO attention in every block) was run in float64 on
# the same inputs (Hunyuan3D-2.1 at 5e3ec6d, diffusers 0.30.0): PyTorch's own
# float32 output is up to 1.15e-5 from it and ONNX Runtime's 1.34e-5, so the
# two float32 results may differ by about that much (measured: 1.04e-5).
# Its bound is 2e-5, about 1.5 times ONNX Runtime's own rounding there; every
# other graph keeps 1e-5 (docs/operators.md).
BOUNDS = {"2.1": {P.PAINT_UNET: (2e-5, "float32 rounding: PyTorch float32 is 1.15e-5 from float64 on this graph, "
                                        "ONNX Runtime 1.34e-5 (tools/hy3d_export/paint_check.py)")}}


def _shells(root: str, packages) -> None:
    for name in packages:
        m = types.ModuleType(name)
        m.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules[name] = m


def import_paint_classes(checkout: str, version: str):
    """(UNet2p5DConditionModel, diffusers) from the checkout; diffusers must
    be importable (installed, or a checkout's src/ on sys.path)."""
    install_compat()
    import diffusers  # noqa: F401  (after install_compat: it picks its attention by torch's names)
    if version == "2.0":
        sys.path.insert(0, checkout)
        _shells(checkout, ("hy3dgen", "hy3dgen.texgen", "hy3dgen.texgen.hunyuanpaint"))
        from hy3dgen.texgen.hunyuanpaint.unet.modules import UNet2p5DConditionModel
    else:
        root = os.path.join(checkout, "hy3dpaint")
        sys.path.insert(0, root)
        _shells(root, ("hunyuanpaintpbr",))
        from hunyuanpaintpbr.unet.modules import UNet2p5DConditionModel
    return UNet2p5DConditionModel, diffusers


@contextlib.contextmanager
def float32_for_half():
    """Tensor.half() leaves float32 as it is for the block: Tencent computes
    2.1's RoPE voxel indices in float16, which torch's CPU kernels cannot
    clamp, so the check runs that code in float32."""
    half = torch.Tensor.half
    torch.Tensor.half = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.half = half


def small_unet(diffusers, in_channels=4):
    """SD-2.x's UNet2DConditionModel in small: its four levels (attention in
    the upper three and the middle, so every RoPE level is used), heads of 16,
    cross-attention and time embedding at SD's widths (Tencent's learned
    tokens are [77, 1024], 2.0's camera embedding 1280 wide)."""
    return diffusers.UNet2DConditionModel(
        sample_size=VIEW_SIZE // 8, in_channels=in_channels, out_channels=4, layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(32, 32, 64, 64), attention_head_dim=(2, 2, 4, 4), norm_num_groups=8, cross_attention_dim=1024,
        time_embedding_dim=1280, use_linear_projection=True)


def small_vae(diffusers):
    return diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                                   down_block_types=("DownEncoderBlock2D",) * 4,
                                   up_block_types=("UpDecoderBlock2D",) * 4,
                                   block_out_channels=(8, 16, 16, 16), norm_num_groups=4, sample_size=VIEW_SIZE)


def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def write_paint_check(checkout: str, version: str, out_dir: str, batch: int = 3) -> dict:
    """Build, store, export; returns the manifest of out_dir/set."""
    UNet2p5D, diffusers = import_paint_classes(checkout, version)
    torch.manual_seed(0)
    model = UNet2p5D(small_unet(diffusers))
    if version == "2.1":
        # UNet2p5DConditionModel.from_pretrained widens conv_in after construction (2.0 does it in __init__)
        old = model.unet.conv_in
        model.unet.conv_in = torch.nn.Conv2d(12, old.out_channels, old.kernel_size, padding=old.padding)
    vae = small_vae(diffusers)
    for i, m in enumerate((model, vae)):
        _randomize(m, i + 1)
        m.eval()
    p = P.Profile(version, VIEWS, VIEW_SIZE)
    h, n = p.latent, p.views
    g = torch.Generator().manual_seed(7)
    ref_latents = torch.randn(batch, 1, 4, h, h, generator=g)
    normal = torch.randn(batch, n, 4, h, h, generator=g)
    position = torch.randn(batch, n, 4, h, h, generator=g)
    timestep = torch.tensor([999.0, 500.0, 20.0][:batch])
    ref_scale = torch.tensor([0.0] + [1.0] * (batch - 1))
    kw, graph_in = {}, {}
    with torch.no_grad(), cpu_tensors():
        if version == "2.0":
            sample = torch.randn(batch, n, 4, h, h, generator=g)
            camera = torch.tensor([[P.camera_id(*P.DEFAULT_VIEWS[i]) for i in range(n)]] * batch)
            text_scale = ref_scale.clone()
            text = model.unet.learned_text_clip_gen * text_scale[:, None, None]
            kw = dict(camera_info_gen=camera, camera_info_ref=torch.zeros(batch, 1, dtype=torch.long),
                      normal_imgs=normal, position_imgs=position, ref_latents=ref_latents, ref_scale=ref_scale)
            # Tencent's forward takes one timestep for the whole batch: rows that
            # share it; per-row timesteps are the graph's own addition
            t = timestep[:1].expand(batch)
            want = model(sample, P.repeat_rows(t, n), text, **kw)[0].reshape(sample.shape)
            graph_in = {"sample": sample, "normal": normal, "position": position, "timestep": t,
                        "camera": camera.float(), "ref_scale": ref_scale, "text_scale": text_scale}
        else:
            sample = torch.randn(batch, 2, n, 4, h, h, generator=g)
            maps = torch.rand(batch, n, 3, VIEW_SIZE, VIEW_SIZE, generator=g)
            maps[:, :, :, : VIEW_SIZE // 4] = 1.0  # background band
            dino = torch.randn(batch, P.DINO_TOKENS, P.DINO_DIM, generator=g)
            text = torch.stack([model.unet.learned_text_clip_albedo, model.unet.learned_text_clip_mr])
            text = text.unsqueeze(0).expand(batch, -1, -1, -1)
            kw = dict(embeds_normal=normal, embeds_position=position, ref_latents=ref_latents,
                      dino_hidden_states=dino, position_maps=maps, ref_scale=ref_scale)
            t = timestep[:1].expand(batch)
            with float32_for_half():
                want = model(sample, P.repeat_rows(t, 2 * n), text, **kw)[0].reshape(sample.shape)
            graph_in = {"sample": sample, "normal": normal, "position": position, "timestep": t,
                        "ref_scale": ref_scale, "dino": dino}
            calc = sys.modules[UNet2p5D.__module__].calc_multires_voxel_idxs
            with float32_for_half():
                tencent = calc(maps, grid_resolutions=[h, h // 2, h // 4, h // 8],
                               voxel_resolutions=[8 * h, 4 * h, 2 * h, h])
            for k, (gr, v) in enumerate(P.rope_levels(VIEW_SIZE)):
                ours = P.rope_voxel_indices(maps, gr, v)
                theirs = tencent[n * gr * gr]["voxel_indices"].float()
                graph_in[f"rope_index_l{k}"] = theirs
                if not torch.equal(ours, theirs):
                    raise AssertionError(f"RoPE level {k}: Tencent's voxel indices differ from paint.py's")
    # the call Tencent's forward makes to fill its condition_embed_dict (a
    # dict local to that call, so it cannot be read back from it)
    ref_graph = PaintRefGraph(model, version)
    layers = layer_shapes(ref_graph, p)
    with torch.no_grad(), cpu_tensors():
        features = ref_graph.features(ref_latents)
    unet_graph = PaintUNetGraph(model, p, list(layers))
    names, outs, _ = P.paint_unet_io(p, layers)
    inputs = [graph_in[k] if not k.startswith("ref_") or k == "ref_scale" else features[k[4:]] for k in names]
    image = torch.rand(batch, 3, VIEW_SIZE, VIEW_SIZE, generator=g) * 2 - 1
    latent = torch.randn(batch, 4, h, h, generator=g)
    with torch.no_grad():
        moments = VAEEncoderGraph(vae)(image)
        decoded = vae.decode(latent).sample
        diffusers_moments = vae.encode(image).latent_dist
    if not torch.allclose(moments[:, :4], diffusers_moments.mean):
        raise AssertionError("vae_encoder's mean is not AutoencoderKL.encode's")
    cases = {
        P.PAINT_REF: (["ref_latents"], [ref_latents], P.ref_input_names(layers), [features[k] for k in layers]),
        P.PAINT_UNET: (names, inputs, outs, [want]),
        P.VAE_ENCODER: (["image"], [image], ["moments"], [moments]),
        P.VAE_DECODER: (["latent"], [latent], ["image"], [decoded]),
    }
    modules = {P.PAINT_REF: ref_graph, P.PAINT_UNET: unet_graph,
               P.VAE_ENCODER: VAEEncoderGraph(vae), P.VAE_DECODER: VAEDecoderGraph(vae)}
    if version == "2.0":
        delight_unet = small_unet(diffusers, in_channels=8)
        _randomize(delight_unet, 5)
        delight = DelightGraph(delight_unet.eval(), torch.randn(1, 77, 1024, generator=g))
        d_in = [torch.randn(batch, 8, h, h, generator=g), timestep]
        with torch.no_grad():
            d_out = delight_unet(d_in[0], d_in[1], encoder_hidden_states=delight.text.expand(batch, -1, -1)).sample
        cases[P.DELIGHT] = (["sample", "timestep"], d_in, ["noise_pred"], [d_out])
        modules[P.DELIGHT] = delight
    os.makedirs(out_dir, exist_ok=True)
    turbo = False
    sampler = P.SAMPLERS[version, turbo]
    manifest = P.manifest(p, "check-paint-" + version, "hunyuan3d-paint-" + version,
                          "Tencent's paint classes, small random configuration (tools/check-hunyuan3d-export --paint)",
                          delight_size=VIEW_SIZE if version == "2.0" else None)
    specs = P.graph_specs(p, {k: v for k, v in modules.items()}, layers, rows_per_job=P.ROWS_PER_JOB[sampler["guidance"]],
                          delight_size=VIEW_SIZE, max_batch={P.DELIGHT: batch, P.PAINT_REF: batch})
    configs = {"scheduler_config.json": P.scheduler_config(sampler["kind"])}
    if version == "2.0":
        configs["delight_scheduler_config.json"] = P.scheduler_config("euler_ancestral")
    set_dir = os.path.join(out_dir, "set")
    if version == "2.1":
        specs = [s for s in specs if s.name not in (P.DINOV2, P.UPSCALER)]
        manifest["paint"]["version"] = "2.1"
    with exportable_attention(PAINT_PACKAGES), cpu_tensors():
        m = _write(set_dir, manifest, specs, configs, version)
    source = f"PyTorch, Tencent's UNet2p5DConditionModel ({version}) from {checkout} on diffusers {diffusers.__version__}"
    P.write_check(out_dir, "set", source, cases, BOUNDS.get(version))
    return m


def _write(set_dir, manifest, specs, configs, version):
    """write_paint_set, minus 2.1's DINOv2 and RealESRGAN, which the check
    does not build: the manifest names them as stubs so that it validates."""
    if version != "2.1":
        return P.write_paint_set(set_dir, manifest, specs, configs)
    from .tiny_paint import TinyDINOv2, TinyUpscaler
    p = P.Profile("2.1", VIEWS, VIEW_SIZE)
    stand = P.graph_specs(p, {P.DINOV2: TinyDINOv2().eval(), P.UPSCALER: TinyUpscaler().eval(),
                              P.PAINT_REF: None, P.PAINT_UNET: None, P.VAE_ENCODER: None, P.VAE_DECODER: None},
                          {}, rows_per_job=3)
    stand = [s for s in stand if s.name in (P.DINOV2, P.UPSCALER)]
    return P.write_paint_set(set_dir, manifest, list(specs) + stand, configs)
