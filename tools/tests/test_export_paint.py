"""tools/export-hunyuan3d --paint on tiny random checkpoints laid out as
Tencent publishes them (tools/tests/paint_mirror.py: the look-alikes of
Tencent's UNet2p5DConditionModel, diffusers, transformers' CLIP and DINOv2,
basicsr's RRDBNet behind their loaders), through to the Go side: the written
set opens and validates (`hy3d engines info`), ONNX Runtime agrees with the
look-alikes' PyTorch outputs on every graph (tools/compare-outputs, float32
bounds), `hy3d engines verify` runs every paint graph, tools/build-engines
plans a trtexec build of every graph, and `hy3d texture` paints a cube with
the set."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import paint_mirror as M  # noqa: E402
from hy3d_export import paint as P  # noqa: E402
from hy3d_export.paint_hunyuan import (DINOv2Graph, DelightGraph, PaintRefGraph, PaintUNetGraph,  # noqa: E402
                                       UpscalerGraph, VAEDecoderGraph, VAEEncoderGraph, cpu_tensors)

REPO = os.path.dirname(os.path.dirname(HERE))
VIEWS, VIEW_SIZE = 6, 64  # the paint pipeline paints 6 to 30 views


def go(*args, cwd=REPO):
    return subprocess.run([os.environ.get("GO", "go"), *args], cwd=cwd, capture_output=True, text=True)


def reference_outputs(version, ckpt, manifest, out_dir, batch=3):
    """check.json for tools/compare-outputs: every graph of the set run in
    PyTorch on the look-alikes loaded from the checkpoints, at a batch the
    export did not trace."""
    p = P.Profile(version, VIEWS, VIEW_SIZE)
    model = M.PaintUNet2p5D.from_pretrained(os.path.join(ckpt["model_dir"], "unet")) if version == "2.0" else \
        M.PaintUNet2p5D21.from_pretrained(os.path.join(ckpt["model_dir"], "unet"))
    vae = M.AutoencoderKL.from_pretrained(ckpt["model_dir"], subfolder="vae")
    ref = PaintRefGraph(model.eval(), version)
    layers = {name[4:]: None for name in (o["name"] for o in manifest["graphs"]["paint_ref"]["outputs"])}
    ref.layers = list(layers)
    modules = {P.PAINT_REF: ref, P.PAINT_UNET: PaintUNetGraph(model, p, list(layers)),
               P.VAE_ENCODER: VAEEncoderGraph(vae.eval()), P.VAE_DECODER: VAEDecoderGraph(vae)}
    if version == "2.0":
        delight = M.UNet2DConditionModel.from_pretrained(ckpt["delight_dir"], subfolder="unet").eval()
        clip = M.CLIPTextModel.from_pretrained(ckpt["delight_dir"], subfolder="text_encoder").eval()
        with torch.no_grad():
            text = clip(torch.tensor([[1] + [2] * 76]))[0]
        modules[P.DELIGHT] = DelightGraph(delight, text)
    else:
        modules[P.DINOV2] = DINOv2Graph(M.Dinov2Model.from_pretrained(ckpt["dino_dir"]).eval())
        net = M.RRDBNet(3, 3, num_feat=8, num_block=2, num_grow_ch=4)
        net.load_state_dict(torch.load(ckpt["realesrgan"])["params_ema"])
        modules[P.UPSCALER] = UpscalerGraph(net.eval())
    g = torch.Generator().manual_seed(3)
    cases = {}
    for name, spec in manifest["graphs"].items():
        in_names = [t["name"] for t in spec["inputs"]]
        shapes = {t["name"]: t["shape"] for t in spec["inputs"]}
        rows = batch if spec["max_batch"] >= batch else 1  # never the export's trace batch, 2
        inputs = P.sample_inputs(in_names, shapes, rows, p, g)
        with torch.no_grad(), cpu_tensors():
            outs = modules[name](*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        cases[name] = (in_names, inputs, [t["name"] for t in spec["outputs"]], outs)
    P.write_check(out_dir, "set", f"PyTorch, paint_mirror look-alikes ({version})", cases)


class ExportPaintTest(unittest.TestCase):
    def export(self, tmp, version):
        ckpt = M.write_checkpoints(os.path.join(tmp, "hf"), version)
        fakes = os.path.join(tmp, "packages")
        M.write_files(fakes, M.PACKAGES)
        checkout = os.path.join(tmp, "checkout")
        M.write_files(checkout, M.CHECKOUTS[version])
        out = os.path.join(tmp, "check", "set")
        flags = [f"--{k.replace('_', '-')}" if k != "realesrgan" else "--realesrgan" for k in ckpt]
        args = [a for k, flag in zip(ckpt, flags) for a in (flag, ckpt[k])]
        if version == "2.0":
            args += ["--delight-size", str(VIEW_SIZE)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, fakes]))
        run = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export-hunyuan3d"), "--paint",
                              "--checkout", checkout, "--family", version, *args, "--views", str(VIEWS),
                              "--view-size", str(VIEW_SIZE), "--out", out],
                             cwd=REPO, env=env, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr[-4000:])
        with open(os.path.join(out, "manifest.json")) as f:
            return ckpt, out, json.load(f)

    def check_go_side(self, tmp, version, ckpt, out, manifest):
        info = go("run", "./cmd/hy3d", "engines", "info", "--engines", out)
        self.assertEqual(info.returncode, 0, info.stdout + info.stderr)
        self.assertIn(f"paint set   {manifest['name']}", info.stdout)
        for graph in manifest["graphs"]:
            self.assertIn(graph, info.stdout)

        check = os.path.dirname(out)
        reference_outputs(version, ckpt, manifest, check)
        cmp = go("run", "./tools/compare-outputs", check)
        self.assertEqual(cmp.returncode, 0, cmp.stdout + cmp.stderr)
        self.assertEqual(cmp.stdout.count(" pass"), sum(len(g["outputs"]) for g in manifest["graphs"].values()),
                         cmp.stdout)

        ver = go("run", "./cmd/hy3d", "engines", "verify", "--engines", out, "--against", "ort-threads", "--batch", "1")
        self.assertEqual(ver.returncode, 0, ver.stdout + ver.stderr)
        for graph in manifest["graphs"]:
            self.assertIn(graph, ver.stdout)

        build = go("run", "./tools/build-engines", "--dry-run", out)
        self.assertEqual(build.returncode, 0, build.stdout + build.stderr)
        self.assertEqual(build.stdout.count("trtexec"), len(manifest["graphs"]), build.stdout)

        # hy3d texture paints a cube with the set
        cube = os.path.join(tmp, "cube.obj")
        with open(cube, "w") as f:
            for i in range(8):
                f.write(f"v {(i & 1) - 0.5} {(i >> 1 & 1) - 0.5} {(i >> 2 & 1) - 0.5}\n")
            for a, b, c, d in ((1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3), (2, 4, 8, 6)):
                f.write(f"f {a} {b} {c}\nf {a} {c} {d}\n")
        glb = os.path.join(tmp, "painted.glb")
        tex = go("run", "./cmd/hy3d", "texture", "-i", "pipeline/testdata/object_lossless.webp", "-m", cube, "-o", glb,
                 "--paint-engines", out, "--steps", "2", "--texture-size", "128", "--backend", "ort")
        self.assertEqual(tex.returncode, 0, tex.stdout + tex.stderr)
        self.assertIn(f"paint set {manifest['name']} on ort", tex.stdout)
        with open(glb, "rb") as f:
            self.assertEqual(f.read(4), b"glTF")

    def test_2_0_turbo_with_delight(self):
        with tempfile.TemporaryDirectory() as tmp:
            ckpt, out, m = self.export(tmp, "2.0")
            self.assertEqual(m["kind"], "paint")
            self.assertEqual(m["family"], "hunyuan3d-paint-2.0")
            paint = m["paint"]
            self.assertEqual((paint["version"], paint["views"], paint["view_size"]), ("2.0", VIEWS, VIEW_SIZE))
            # the folder ends in -turbo: LCM with Tencent's timesteps, no guidance
            self.assertEqual((paint["sampler"]["kind"], paint["sampler"]["guidance"]), ("lcm", "none"))
            self.assertEqual(paint["sampler"]["timesteps"], P.TURBO_TIMESTEPS)
            self.assertEqual(paint["delight"]["view_size"], VIEW_SIZE)
            self.assertEqual(sorted(m["graphs"]), sorted(P.REQUIRED["2.0"] + (P.DELIGHT,)))
            self.assertEqual(len(m["graphs"]["paint_ref"]["outputs"]), len(M.T.TinyUNet.LAYERS))
            with open(os.path.join(out, "scheduler_config.json")) as f:
                cfg = json.load(f)
            with open(os.path.join(ckpt["model_dir"], "scheduler", "scheduler_config.json")) as f:
                original = json.load(f)
            # the checkpoint's schedule, with the class and spacing Tencent's pipeline swaps in
            self.assertEqual((cfg["_class_name"], cfg["timestep_spacing"]), ("LCMScheduler", "trailing"))
            self.assertEqual(cfg["beta_schedule"], original["beta_schedule"])
            with open(os.path.join(out, "delight_scheduler_config.json")) as f:
                delight = json.load(f)
            self.assertEqual((delight["_class_name"], delight["timestep_spacing"]),
                             ("EulerAncestralDiscreteScheduler", "leading"))
            self.check_go_side(tmp, "2.0", ckpt, out, m)

    def test_2_1_with_dinov2_and_realesrgan(self):
        with tempfile.TemporaryDirectory() as tmp:
            ckpt, out, m = self.export(tmp, "2.1")
            paint = m["paint"]
            self.assertEqual((paint["sampler"]["kind"], paint["sampler"]["guidance"]), ("unipc", "cfg3"))
            self.assertEqual(paint["rope"]["grids"], [8, 4, 2, 1])
            self.assertEqual(sorted(m["graphs"]), sorted(P.REQUIRED["2.1"]))
            dino = m["graphs"]["dinov2"]["outputs"][0]["shape"]
            self.assertEqual(dino, [-1, P.DINO_TOKENS, P.DINO_DIM])
            self.assertEqual(m["graphs"]["upscaler"]["outputs"][0]["shape"], [-1, 3, 4 * VIEW_SIZE, 4 * VIEW_SIZE])
            self.check_go_side(tmp, "2.1", ckpt, out, m)

    def test_refuses_a_delight_vae_other_than_the_paint_vae(self):
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = M.write_checkpoints(os.path.join(tmp, "hf"), "2.0")
            other = M._randomize(M.AutoencoderKL(), 99)
            other.save_pretrained(os.path.join(ckpt["delight_dir"], "vae"))
            fakes = os.path.join(tmp, "packages")
            M.write_files(fakes, M.PACKAGES)
            checkout = os.path.join(tmp, "checkout")
            M.write_files(checkout, M.CHECKOUTS["2.0"])
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, fakes]))
            run = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export-hunyuan3d"), "--paint",
                                  "--checkout", checkout, "--family", "2.0", "--model-dir", ckpt["model_dir"],
                                  "--delight-dir", ckpt["delight_dir"], "--delight-size", "64", "--views", "6",
                                  "--view-size", "64", "--out", os.path.join(tmp, "set")],
                                 cwd=REPO, env=env, capture_output=True, text=True)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("its VAE is not the paint checkpoint's", run.stderr)


if __name__ == "__main__":
    unittest.main()
