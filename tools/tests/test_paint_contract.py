"""The tiny paint sets (engines/tiny-paint-*) against the paint contract
(docs/paint-contract.md, tools/hy3d_export/paint.py): graph signatures, the
generator's determinism, PyTorch against ONNX Runtime at another batch than
the traced one, and the oracle's promise (the views become the picture)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnx  # noqa: E402
import torch  # noqa: E402

from hy3d_export import paint as P  # noqa: E402
from hy3d_export import tiny_paint as T  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINES = os.path.join(REPO, "engines")
SETS = {  # committed set → (version, turbo, oracle), as tools/make-tiny-paint builds them
    "tiny-paint-2.0": ("2.0", False, False),
    "tiny-paint-2.0-turbo": ("2.0", True, False),
    "tiny-paint-2.0-oracle": ("2.0", False, True),
    "tiny-paint-2.1": ("2.1", False, False),
    "tiny-paint-2.1-oracle": ("2.1", False, True),
}


def _load_generator():
    import importlib.machinery
    import importlib.util
    path = os.path.join(REPO, "tools", "make-tiny-paint")
    loader = importlib.machinery.SourceFileLoader("make_tiny_paint", path)
    spec = importlib.util.spec_from_loader("make_tiny_paint", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _contract(version, turbo):
    """graph → (input names, output names, shapes) the contract prescribes for a tiny set."""
    p = P.Profile(version, T.VIEWS, T.VIEW_SIZE)
    layers = T._layer_shapes(T.VIEW_SIZE)
    enc, dec = P.vae_shapes(p)
    want = {
        P.PAINT_REF: (["ref_latents"], P.ref_input_names(layers), P.paint_ref_shapes(p, layers)),
        P.PAINT_UNET: P.paint_unet_io(p, layers),
        P.VAE_ENCODER: (["image"], ["moments"], enc),
        P.VAE_DECODER: (["latent"], ["image"], dec),
    }
    if version == "2.0" and not turbo:
        want[P.DELIGHT] = (["sample", "timestep"], ["noise_pred"], P.delight_shapes(T.VIEW_SIZE))
    if version == "2.1":
        want[P.DINOV2] = (["pixel_values"], ["last_hidden_state"], P.dinov2_shapes())
        want[P.UPSCALER] = (["image"], ["upscaled"], P.upscaler_shapes(p))
    return want


class SignatureTest(unittest.TestCase):
    def test_committed_graphs_follow_the_contract(self):
        for name, (version, turbo, _) in SETS.items():
            with open(os.path.join(ENGINES, name, "manifest.json")) as f:
                m = json.load(f)
            self.assertEqual(m["kind"], "paint")
            self.assertEqual(m["paint"]["version"], version)
            want = _contract(version, turbo)
            self.assertEqual(sorted(m["graphs"]), sorted(want), name)
            for graph, (ins, outs, shapes) in want.items():
                with self.subTest(set=name, graph=graph):
                    entry = m["graphs"][graph]
                    self.assertEqual([t["name"] for t in entry["inputs"]], ins)
                    self.assertEqual([t["name"] for t in entry["outputs"]], outs)
                    for t in entry["inputs"] + entry["outputs"]:
                        self.assertEqual(t["shape"], shapes[t["name"]], t["name"])
                    model = onnx.load(os.path.join(ENGINES, name, entry["onnx"]))
                    self.assertEqual(model.opset_import[0].version, 17)
                    self.assertEqual([v.name for v in model.graph.input], ins)
                    self.assertEqual([v.name for v in model.graph.output], outs)
                    for v in list(model.graph.input) + list(model.graph.output):
                        self.assertEqual(v.type.tensor_type.elem_type, onnx.TensorProto.FLOAT, v.name)
                        dims = _dims(v)
                        self.assertIsInstance(dims[0], str, f"{v.name}: batch must be dynamic")
                        self.assertEqual(dims[1:], shapes[v.name][1:], v.name)

    def test_contract_numbers(self):
        p = P.Profile("2.1", 6, 512)
        self.assertEqual(P.rope_levels(512), [(64, 512), (32, 256), (16, 128), (8, 64)])
        self.assertEqual([P.camera_id(*v) for v in P.DEFAULT_VIEWS], [21, 12, 15, 18, 43, 37])
        self.assertEqual(P.TURBO_TIMESTEPS, [989, 890, 791, 692, 593, 494, 395, 296, 197, 98])
        self.assertEqual(P.DINO_TOKENS, 257)
        _, _, shapes = P.paint_unet_io(p, {"down_0_0_0": (4096, 320)})
        self.assertEqual(shapes["sample"], [-1, 2, 6, 4, 64, 64])
        self.assertEqual(shapes["rope_index_l0"], [-1, 6 * 64 * 64, 3])
        self.assertEqual(shapes["ref_down_0_0_0"], [-1, 4096, 320])
        self.assertEqual(P.vae_shapes(P.Profile("2.0", 6, 768))[1]["image"], [-1, 3, 768, 768])

    def test_rope_voxel_indices_follow_the_cells(self):
        # one view of 16×16 pixels, grid 2 (cells of 8×8), background 1
        pos = torch.ones(1, 1, 3, 16, 16)
        pos[0, 0, :, :8, :8] = torch.tensor([0.25, 0.5, 0.75])[:, None, None]
        pos[0, 0, :, :8, 8:] = torch.tensor([0.25, 0.5, 1.0])[:, None, None]  # one channel at 1: background
        pos[0, 0, :, 8:, 8:] = torch.tensor([0.5, 0.5, 0.5])[:, None, None]
        pos[0, 0, :, 8:10, 8:10] = 1.0  # 4 background pixels of 64: the mean of the other 60
        pos[0, 0, :, 8:, :8] = 1.0
        pos[0, 0, :, 8, 0:3] = 0.5  # 3 foreground pixels < 64/16: the cell counts as empty
        idx = P.rope_voxel_indices(pos, 2, 16)
        self.assertEqual(idx.shape, (1, 4, 3))
        self.assertEqual(idx[0].tolist(), [[round(0.25 * 15), round(0.5 * 15), round(0.75 * 15)],
                                           [0, 0, 0], [0, 0, 0], [round(0.5 * 15)] * 3])


class GeneratorTest(unittest.TestCase):
    """Regenerates two sets: byte-identical to the committed files, and the
    ONNX graphs compute what the PyTorch modules compute at batch 3 (the
    trace used batch 2), through tools/compare-outputs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.gen = _load_generator()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_sets_regenerate_identically_and_match_pytorch(self):
        for name in ("tiny-paint-2.0-oracle", "tiny-paint-2.1"):
            with self.subTest(set=name):
                out = os.path.join(self.tmp.name, name)
                self.gen.build(name, out)
                for f in sorted(os.listdir(out)):
                    with open(os.path.join(out, f), "rb") as a, open(os.path.join(ENGINES, name, f), "rb") as b:
                        self.assertTrue(a.read() == b.read(), f"{name}/{f} differs from tools/make-tiny-paint's output")
                self._compare(name, out)

    def _compare(self, name, set_dir):
        version, turbo, oracle = SETS[name]
        tiny = T.TinyPaintSet(version, oracle=oracle)
        modules = {P.PAINT_REF: tiny.paint_ref, P.PAINT_UNET: tiny.paint_unet,
                   P.VAE_ENCODER: tiny.vae_encoder, P.VAE_DECODER: tiny.vae_decoder}
        if version == "2.1":
            modules[P.DINOV2], modules[P.UPSCALER] = tiny.dinov2, tiny.upscaler
        else:
            modules[P.DELIGHT] = tiny.delight
        specs = P.graph_specs(tiny.profile, modules, tiny.layers, rows_per_job=2)
        cases = {}
        with torch.no_grad():
            for s in specs:
                # a batch the trace did not use (2), within the graph's maximum
                batch = 3 if s.max_batch >= 3 else 1
                s.inputs = P.sample_inputs(s.input_names, s.shapes, batch, tiny.profile)
                out = s.module(*s.inputs)
                out = out if isinstance(out, tuple) else (out,)
                cases[s.name] = (s.input_names, s.inputs, s.output_names, out)
        check = os.path.join(self.tmp.name, "check-" + name)
        os.makedirs(check)
        P.write_check(check, set_dir, "tiny " + name, cases)
        run = subprocess.run([os.environ.get("GO", "go"), "run", "./tools/compare-outputs", "--abs", "1e-4",
                              "--rel", "1e-4", check], cwd=REPO, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertEqual(run.stdout.count(" pass"), sum(len(c[2]) for c in cases.values()), run.stdout)


class OracleTest(unittest.TestCase):
    """The oracle's promise, in PyTorch on the modules the oracle sets are
    exported from: from pure noise, DDIM over the trailing timesteps lands
    every view on the reference picture's colours (and 2.1's MR views on
    ORACLE_MR), through the set's own VAE."""

    def _picture(self):
        img = torch.zeros(1, 3, T.VIEW_SIZE, T.VIEW_SIZE)
        img[:, 0], img[:, 1], img[:, 2] = 0.6, -0.2, -0.8  # an orange in [−1, 1]
        img[:, :, :, T.VIEW_SIZE // 2:] = torch.tensor([-0.5, 0.4, 0.9])[:, None, None]
        return img

    def test_views_become_the_picture(self):
        for version in ("2.0", "2.1"):
            with self.subTest(version=version), torch.no_grad():
                tiny = T.TinyPaintSet(version, oracle=True)
                p = tiny.profile
                rows = 2 if version == "2.0" else 3
                picture = self._picture()
                moments = tiny.vae_encoder(picture)
                ref = (moments[:, :4] * P.SD_VAE_SCALE_FACTOR).unsqueeze(1)  # logvar −30: the mean is the sample
                feats = tiny.paint_ref(ref.expand(rows, -1, -1, -1, -1))
                names, _, shapes = P.paint_unet_io(p, tiny.layers)
                extra = dict(zip(names, P.sample_inputs(names, shapes, rows, p)))
                g = torch.Generator().manual_seed(3)
                x = torch.randn(shapes["sample"][1:], generator=g).unsqueeze(0)
                alphas = P.alphas_cumprod()
                ts = list(range(999, 0, -100))
                for i, t in enumerate(ts):
                    extra["sample"] = x.expand(rows, *x.shape[1:])
                    extra["timestep"] = torch.full((rows,), float(t))
                    args = [extra[n] for n in names if not n.startswith("ref_") or n == "ref_scale"]
                    eps = tiny.paint_unet(*args, *feats)
                    eps = eps[-1:] + 2.0 * (eps[-1:] - eps[:1])  # guidance: every row agrees, so any scale
                    a = alphas[t]
                    x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
                    a_prev = alphas[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
                    x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
                views = x.reshape(-1, 4, p.latent, p.latent)
                decoded = tiny.vae_decoder(views / P.SD_VAE_SCALE_FACTOR)
                albedo = decoded[: p.views]
                self.assertLess((albedo - picture).abs().max().item(), 1e-3)
                if version == "2.1":
                    mr = torch.tensor(T.ORACLE_MR) * 2 - 1
                    self.assertLess((decoded[p.views:] - mr[None, :, None, None]).abs().max().item(), 1e-3)

    def test_oracle_delight_returns_the_picture(self):
        with torch.no_grad():
            tiny = T.TinyPaintSet("2.0", oracle=True)
            picture = self._picture()
            image_latent = tiny.vae_encoder(picture)[:, :4]  # the mode, unscaled, as InstructPix2Pix uses it
            alphas = P.alphas_cumprod()
            x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
            t = 500
            eps = tiny.delight(torch.cat([x, image_latent], dim=1), torch.tensor([float(t)]))
            x0 = (x - (1 - alphas[t]).sqrt() * eps) / alphas[t].sqrt()
            out = tiny.vae_decoder(x0 / P.SD_VAE_SCALE_FACTOR)
            self.assertLess((out - picture).abs().max().item(), 1e-3)


if __name__ == "__main__":
    unittest.main()
