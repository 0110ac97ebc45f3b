"""Look-alikes of the classes tools/export-hunyuan3d --paint loads
(tools/hy3d_export/paint_export.py), for hy3d's tests: the real ones need
Tencent's checkout, diffusers, transformers and basicsr, none of which Debian
packages. Each has its original's loader (from_pretrained on the published
folder layout, or load_state_dict of a RealESRGAN .pth), call convention and
outputs, at toy widths; write_checkpoints lays tiny random checkpoints out in
the published folders. What they reproduce, because the exporter depends on it:

* Tencent's UNet2p5DConditionModel (2.0 and 2.1): from_pretrained(unet/)
  reading config.json and diffusion_pytorch_model.bin; `unet` with the
  learned text tokens (2.0 learned_text_clip_gen/_ref [1, 77, C] and the
  camera class_embedding; 2.1 learned_text_clip_albedo/_mr/_ref [77, C] and
  image_proj_model_dino); `unet_dual`, called in write mode with
  cross_attention_kwargs {mode, num_in_batch, condition_embed_dict}, which it
  fills with each block's norm1 output under Tencent's layer names; the
  forward keywords (2.0: camera_info_gen, normal_imgs, position_imgs,
  ref_scale, condition_embed_dict; 2.1: embeds_normal, embeds_position,
  dino_hidden_states, ref_scale and cache with condition_embed_dict and
  position_voxel_indices keyed by token count). The blocks are the tiny paint
  sets' (tools/hy3d_export/tiny_paint.py), Tencent's block order.
* diffusers' AutoencoderKL (encoder, quant_conv, decode(z, return_dict)) and
  UNet2DConditionModel (the delight UNet, 8 input channels) with
  from_pretrained(folder, subfolder=...).
* transformers' CLIPTokenizer and CLIPTextModel (the empty prompt padded to
  77 tokens, last hidden state first) and AutoModel for DINOv2: a ViT from
  the DINOv2 paper's architecture (patch 14, CLS token, learned positions for
  518² resized bicubically to the input, pre-norm blocks with LayerScale, a
  SwiGLU feed-forward as in the giant model, final LayerNorm), transformers'
  parameter names, last_hidden_state first.
* basicsr's RRDBNet from the ESRGAN paper (residual-in-residual dense blocks
  with 0.2 residual scaling, LeakyReLU 0.2, two nearest ×2 upsamplings),
  basicsr's parameter names, so RealESRGAN's state dict loads strictly.
"""

import json
import os
import types

import torch
import torch.nn.functional as F
from torch import nn

from hy3d_export import paint as P
from hy3d_export import tiny_paint as T
from hy3d_export.hunyuan import install_compat

install_compat()

WEIGHTS = "diffusion_pytorch_model.bin"


class Pretrained(nn.Module):
    """from_pretrained / save_pretrained over config.json + a torch state dict."""

    weights = WEIGHTS

    def __init__(self, **config):
        super().__init__()
        self.config = types.SimpleNamespace(**config)
        self._config = dict(config)

    @classmethod
    def from_pretrained(cls, path, subfolder=None, torch_dtype=None, **_):
        folder = os.path.join(path, subfolder) if subfolder else path
        with open(os.path.join(folder, "config.json")) as f:
            m = cls(**json.load(f))
        m.load_state_dict(torch.load(os.path.join(folder, cls.weights), map_location="cpu"), strict=True)
        return m.to(torch_dtype) if torch_dtype is not None else m

    def save_pretrained(self, folder):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(self._config, _class_name=type(self).__name__), f)
        torch.save(self.state_dict(), os.path.join(folder, self.weights))


def _output(x, return_dict):
    return types.SimpleNamespace(sample=x) if return_dict else (x,)


def _timesteps(t, rows, like):
    t = t if torch.is_tensor(t) else torch.tensor(float(t))
    return t.float().reshape(-1) + torch.zeros_like(like[:rows, 0, 0, 0]) if t.dim() == 0 else t.float()


# ---------------------------------------------------------------------------
# diffusers


class AutoencoderKL(Pretrained):
    def __init__(self, width=8, latent_channels=4, scaling_factor=P.SD_VAE_SCALE_FACTOR, **_):
        super().__init__(width=width, latent_channels=latent_channels, scaling_factor=scaling_factor)
        c = latent_channels
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.SiLU(), nn.Conv2d(width, width, 3, 2, 1),
                                     nn.SiLU(), nn.Conv2d(width, 2 * c, 3, 2, 1))
        self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1)
        self.post_quant_conv = nn.Conv2d(c, c, 1)
        self.decoder = T.TinyVAEDecoder()

    def decode(self, z, return_dict=True, **_):
        return _output(self.decoder(self.post_quant_conv(z)), return_dict)


class UNet2DConditionModel(Pretrained):
    """The delight UNet: a plain conditional UNet."""

    def __init__(self, in_channels=8, **_):
        super().__init__(in_channels=in_channels)
        self.net = T.TinyUNet("2.0", main=False, in_channels=in_channels)

    def forward(self, sample, timestep, encoder_hidden_states, return_dict=True, **_):
        temb = self.net.embed_time(_timesteps(timestep, sample.shape[0], sample))
        c = {"materials": 1, "views": 1, "store": [], "text": encoder_hidden_states}
        return _output(self.net(sample, temb, c), return_dict)


# ---------------------------------------------------------------------------
# Tencent's UNet2p5DConditionModel


class DualUNet(nn.Module):
    """unet_dual: the reference UNet, run in write mode."""

    def __init__(self, version):
        super().__init__()
        self.net = T.TinyUNet(version, main=False, in_channels=P.LATENT_CHANNELS)

    def forward(self, sample, timestep, encoder_hidden_states, class_labels=None, return_dict=True,
                cross_attention_kwargs=None, **_):
        kw = cross_attention_kwargs
        assert kw["mode"] == "w"
        store = []
        c = {"materials": 1, "views": kw["num_in_batch"], "store": store, "text": encoder_hidden_states}
        out = self.net(sample, self.net.embed_time(_timesteps(timestep, sample.shape[0], sample)), c)
        for name, t in zip(T.TinyUNet.LAYERS, store):
            kw["condition_embed_dict"][name] = t
        return _output(out, return_dict)


class ImageProjModel(nn.Module):
    """2.1's DINO projection: each DINO token → 4 cross-attention tokens."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(P.DINO_DIM, 4 * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.proj(x).reshape(-1, 4 * int(x.shape[1]), int(self.norm.weight.shape[0])))


class PaintUNet2p5D(nn.Module):
    version = "2.0"

    def __init__(self):
        super().__init__()
        self.unet = T.TinyUNet(self.version, main=True, in_channels=3 * P.LATENT_CHANNELS)
        self.unet_dual = DualUNet(self.version)
        tokens, dim = T.TEXT_TOKENS, T.TEXT_DIM
        if self.version == "2.0":
            self.unet.learned_text_clip_gen = nn.Parameter(torch.randn(1, tokens, dim))
            self.unet.learned_text_clip_ref = nn.Parameter(torch.randn(1, tokens, dim))
            self.unet.class_embedding = nn.Embedding(P.CAMERA_CLASSES, T.TEMB)
        else:
            for name in ("albedo", "mr", "ref"):
                self.unet.register_parameter(f"learned_text_clip_{name}", nn.Parameter(torch.randn(tokens, dim)))
            self.unet.image_proj_model_dino = ImageProjModel(dim)

    @classmethod
    def from_pretrained(cls, path, torch_dtype=torch.float32, **_):
        with open(os.path.join(path, "config.json")) as f:
            json.load(f)  # Tencent builds diffusers' UNet2DConditionModel from it
        m = cls()
        m.load_state_dict(torch.load(os.path.join(path, WEIGHTS), map_location="cpu"), strict=True)
        return m.to(torch_dtype)

    def save_pretrained(self, folder):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump({"_class_name": "UNet2DConditionModel", "in_channels": 4, "cross_attention_dim": T.TEXT_DIM}, f)
        torch.save(self.state_dict(), os.path.join(folder, WEIGHTS))

    def _run(self, x, temb, text, refs, ref_scale, views, materials, rope=None, dino=None):
        c = {"materials": materials, "views": views, "ref": [refs[k] for k in T.TinyUNet.LAYERS], "layer": 0,
             "ref_scale": ref_scale, "text": text, "rope": rope, "dino": dino}
        return (self.unet(x, temb, c),)

    def forward(self, sample, timestep, encoder_hidden_states, **kw):
        if self.version == "2.0":
            n, ch, h, w = T.dims(sample, 1, 2, 3, 4)
            x = torch.cat([sample, kw["normal_imgs"], kw["position_imgs"]], dim=2).reshape(-1, 3 * ch, h, w)
            temb = self.unet.embed_time(timestep) + self.unet.class_embedding(
                kw["camera_info_gen"].reshape(-1) + P.CAMERA_OFFSET)
            text = P.repeat_rows(encoder_hidden_states, n)
            return self._run(x, temb, text, kw["condition_embed_dict"], kw["ref_scale"], n, 1)
        mats, n, ch, h, w = T.dims(sample, 1, 2, 3, 4, 5)
        cond = torch.cat([kw["embeds_normal"], kw["embeds_position"]], dim=2).unsqueeze(1)
        x = torch.cat([sample, cond.expand(-1, mats, n, 2 * ch, h, w)], dim=3).reshape(-1, 3 * ch, h, w)
        temb = self.unet.embed_time(timestep)
        text = P.repeat_rows(encoder_hidden_states.reshape(-1, T.TEXT_TOKENS, T.TEXT_DIM), n)
        dino = P.repeat_rows(self.unet.image_proj_model_dino(kw["dino_hidden_states"]), mats * n)
        rope = {}
        cache = kw["cache"]
        for tokens, entry in cache["position_voxel_indices"].items():
            cos, sin = T.rope_cos_sin(entry["voxel_indices"].float(), entry["voxel_resolution"])
            rope[tokens // n] = (P.repeat_rows(cos, mats), P.repeat_rows(sin, mats))
        return self._run(x, temb, text, cache["condition_embed_dict"], kw["ref_scale"], n, mats, rope, dino)


class PaintUNet2p5D21(PaintUNet2p5D):
    version = "2.1"


# ---------------------------------------------------------------------------
# transformers


class CLIPTokenizer:
    model_max_length = 77
    bos, eos = 1, 2

    @classmethod
    def from_pretrained(cls, path, subfolder=None, **_):
        with open(os.path.join(path, subfolder or "", "tokenizer_config.json")) as f:
            cfg = json.load(f)
        t = cls()
        t.model_max_length = cfg["model_max_length"]
        return t

    def __call__(self, text, padding=None, max_length=None, truncation=False, return_tensors=None):
        assert text == "" and padding == "max_length" and return_tensors == "pt"
        ids = [self.bos, self.eos] + [self.eos] * (max_length - 2)  # CLIP pads with its end token
        return types.SimpleNamespace(input_ids=torch.tensor([ids]))


class CLIPTextModel(Pretrained):
    weights = "pytorch_model.bin"

    def __init__(self, vocab_size=8, hidden_size=T.TEXT_DIM, max_position_embeddings=77, **_):
        super().__init__(vocab_size=vocab_size, hidden_size=hidden_size,
                         max_position_embeddings=max_position_embeddings)
        self.token_embedding = nn.Embedding(vocab_size, hidden_size)
        self.position_embedding = nn.Parameter(torch.randn(max_position_embeddings, hidden_size))
        self.layer = nn.TransformerEncoderLayer(hidden_size, 2, 2 * hidden_size, dropout=0.0, batch_first=True,
                                                norm_first=True)
        self.final_layer_norm = nn.LayerNorm(hidden_size)

    def forward(self, input_ids):
        x = self.token_embedding(input_ids) + self.position_embedding[: input_ids.shape[1]]
        return (self.final_layer_norm(self.layer(x)),)


class Dinov2Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.query, self.attention.key, self.attention.value = (nn.Linear(dim, dim) for _ in range(3))
        self.output = nn.Module()
        self.output.dense = nn.Linear(dim, dim)

    def forward(self, x):
        a = self.attention
        q, k, v = (T.split_heads(p(x), self.heads) for p in (a.query, a.key, a.value))
        w = torch.softmax(q @ k.transpose(-2, -1) / (int(q.shape[-1]) ** 0.5), dim=-1)
        return self.output.dense(T.merge_heads(w @ v))


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.lambda1


class SwiGLUFFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.weights_in = nn.Linear(dim, 2 * hidden)
        self.weights_out = nn.Linear(hidden, dim)

    def forward(self, x):
        a, b = self.weights_in(x).chunk(2, dim=-1)
        return self.weights_out(F.silu(a) * b)


class Dinov2Layer(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attention = Dinov2Attention(dim, heads)
        self.layer_scale1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SwiGLUFFN(dim, hidden)
        self.layer_scale2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.layer_scale1(self.attention(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class Dinov2Model(Pretrained):
    weights = "pytorch_model.bin"

    def __init__(self, hidden_size=P.DINO_DIM, num_hidden_layers=1, num_attention_heads=24, swiglu_hidden=64,
                 patch_size=14, image_size=518, layer_norm_eps=1e-6, **_):
        super().__init__(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                         num_attention_heads=num_attention_heads, swiglu_hidden=swiglu_hidden, patch_size=patch_size,
                         image_size=image_size, layer_norm_eps=layer_norm_eps, model_type="dinov2")
        grid = image_size // patch_size
        self.embeddings = nn.Module()
        self.embeddings.cls_token = nn.Parameter(torch.randn(1, 1, hidden_size))
        self.embeddings.mask_token = nn.Parameter(torch.zeros(1, hidden_size))
        self.embeddings.position_embeddings = nn.Parameter(torch.randn(1, 1 + grid * grid, hidden_size))
        self.embeddings.patch_embeddings = nn.Module()
        self.embeddings.patch_embeddings.projection = nn.Conv2d(3, hidden_size, patch_size, patch_size)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([Dinov2Layer(hidden_size, num_attention_heads, swiglu_hidden,
                                                        layer_norm_eps) for _ in range(num_hidden_layers)])
        self.layernorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.grid, self.patch = grid, patch_size

    def forward(self, pixel_values):
        e = self.embeddings
        d = int(e.cls_token.shape[-1])
        side = int(pixel_values.shape[-1]) // self.patch
        x = e.patch_embeddings.projection(pixel_values).reshape(-1, d, side * side).transpose(1, 2)
        pos = e.position_embeddings[:, 1:].reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(side, side), mode="bicubic", align_corners=False)
        pos = torch.cat([e.position_embeddings[:, :1], pos.permute(0, 2, 3, 1).reshape(1, side * side, d)], dim=1)
        x = torch.cat([e.cls_token + torch.zeros_like(x[:, :1, :1]), x], dim=1) + pos
        for layer in self.encoder.layer:
            x = layer(x)
        x = self.layernorm(x)
        return (x, x[:, 0])


class AutoModel:
    @staticmethod
    def from_pretrained(path, **kw):
        return Dinov2Model.from_pretrained(path, **kw)


# ---------------------------------------------------------------------------
# basicsr


class ResidualDenseBlock(nn.Module):
    def __init__(self, feat, grow):
        super().__init__()
        self.conv1 = nn.Conv2d(feat, grow, 3, 1, 1)
        self.conv2 = nn.Conv2d(feat + grow, grow, 3, 1, 1)
        self.conv3 = nn.Conv2d(feat + 2 * grow, grow, 3, 1, 1)
        self.conv4 = nn.Conv2d(feat + 3 * grow, grow, 3, 1, 1)
        self.conv5 = nn.Conv2d(feat + 4 * grow, feat, 3, 1, 1)

    def forward(self, x):
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        x1 = act(self.conv1(x))
        x2 = act(self.conv2(torch.cat((x, x1), 1)))
        x3 = act(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = act(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, feat, grow):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(feat, grow) for _ in range(3))

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, num_in_ch, num_out_ch, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        assert scale == 4
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x):
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = act(self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")))
        feat = act(self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")))
        return self.conv_last(act(self.conv_hr(feat)))


# ---------------------------------------------------------------------------
# checkpoints in the published layout, and the packages that load them

# Shims that make the look-alikes importable under the names the exporter
# and Tencent's code import (a folder put on PYTHONPATH), and a checkout with
# Tencent's paint module paths.
PACKAGES = {
    "diffusers/__init__.py": "from paint_mirror import AutoencoderKL, UNet2DConditionModel\n__version__ = 'mirror'\n",
    "transformers/__init__.py": "from paint_mirror import AutoModel, CLIPTextModel, CLIPTokenizer\n",
    "basicsr/__init__.py": "",
    "basicsr/archs/__init__.py": "",
    "basicsr/archs/rrdbnet_arch.py": "from paint_mirror import RRDBNet\n",
}
NO_INIT = "raise ImportError('the package __init__ must not run')\n"
CHECKOUTS = {
    "2.0": {"hy3dgen/__init__.py": NO_INIT, "hy3dgen/texgen/__init__.py": NO_INIT,
            "hy3dgen/texgen/hunyuanpaint/__init__.py": NO_INIT,
            "hy3dgen/texgen/hunyuanpaint/unet/modules.py":
                "from paint_mirror import PaintUNet2p5D as UNet2p5DConditionModel\n"},
    "2.1": {"hy3dpaint/hunyuanpaintpbr/__init__.py": NO_INIT,
            "hy3dpaint/hunyuanpaintpbr/unet/modules.py":
                "from paint_mirror import PaintUNet2p5D21 as UNet2p5DConditionModel\n"},
}


def write_files(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)


def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 and ("norm" in name or "lambda" in name) and name.endswith(("weight", "lambda1")):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 / max(1.0, p[0].numel() ** 0.5) if p.dim() > 1 else 0.1))
    return module.eval()


def _pipeline_folder(folder, unet, vae, scheduler_class, seed):
    _randomize(unet, seed).save_pretrained(os.path.join(folder, "unet"))
    vae.save_pretrained(os.path.join(folder, "vae"))
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    cfg = P.scheduler_config("euler_ancestral")
    cfg.update({"_class_name": scheduler_class, "timestep_spacing": "leading"})
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump({"_class_name": "HunyuanPaintPipeline", "unet": ["modules", "UNet2p5DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", scheduler_class]}, f)


def write_checkpoints(root, version, seed=0):
    """Tiny random checkpoints in the published layout under root; returns
    the folders and files export-hunyuan3d --paint takes."""
    torch.manual_seed(seed)
    vae = _randomize(AutoencoderKL(), seed + 1)
    if version == "2.0":
        paint = os.path.join(root, "hunyuan3d-paint-v2-0-turbo")
        _pipeline_folder(paint, PaintUNet2p5D(), vae, "DDIMScheduler", seed + 2)
        delight = os.path.join(root, "hunyuan3d-delight-v2-0")
        _pipeline_folder(delight, UNet2DConditionModel(in_channels=2 * P.LATENT_CHANNELS), vae,
                         "EulerAncestralDiscreteScheduler", seed + 3)
        _randomize(CLIPTextModel(), seed + 4).save_pretrained(os.path.join(delight, "text_encoder"))
        os.makedirs(os.path.join(delight, "tokenizer"))
        with open(os.path.join(delight, "tokenizer", "tokenizer_config.json"), "w") as f:
            json.dump({"model_max_length": 77}, f)
        return {"model_dir": paint, "delight_dir": delight}
    paint = os.path.join(root, "hunyuan3d-paintpbr-v2-1")
    _pipeline_folder(paint, PaintUNet2p5D21(), vae, "DDIMScheduler", seed + 2)
    dino = os.path.join(root, "dinov2-giant")
    _randomize(Dinov2Model(), seed + 5).save_pretrained(dino)
    esrgan = os.path.join(root, "ckpt", "RealESRGAN_x4plus.pth")
    os.makedirs(os.path.dirname(esrgan))
    net = _randomize(RRDBNet(3, 3, num_feat=8, num_block=2, num_grow_ch=4), seed + 6)
    torch.save({"params_ema": net.state_dict()}, esrgan)
    return {"model_dir": paint, "dino_dir": dino, "realesrgan": esrgan}
