"""tools/check-hunyuan3d-export's machinery (hy3d_export/check.py) on the
mirror modules, through to tools/compare-outputs: here the classes are the
look-alikes, on an operator's machine they are Tencent's."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hunyuan_mirror as M  # noqa: E402
from hy3d_export import check as C  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIRROR_COND_DIM = 16  # the mirror DiTs' ctx_dim


class WriteCheckTest(unittest.TestCase):
    def test_mirror_models_pass_the_comparison(self):
        for kind, family in (("2.0-turbo", "hunyuan3d-2.0"), ("2.1", "hunyuan3d-2.1")):
            with self.subTest(kind=kind), tempfile.TemporaryDirectory() as tmp:
                pipe = M.pipeline(kind)
                C.randomize(pipe.model, pipe.vae)
                manifest = C.write_check(pipe.model, pipe.vae, MIRROR_COND_DIM, tmp, family, "check", "mirror " + kind,
                                         flashvdm_processor=M.FlashVDMCrossAttentionProcessor,
                                         packages=("hunyuan_mirror",), reference_packages=("hunyuan_mirror",))
                with open(os.path.join(tmp, "check.json")) as f:
                    check = json.load(f)
                self.assertEqual(check["format"], C.CHECK_FORMAT)
                self.assertEqual(sorted(check["graphs"]), ["dit", "vae_geometry", "vae_latents"])
                dit_inputs = [t["name"] for t in check["graphs"]["dit"]["inputs"]]
                want = ["latents", "timestep", "cond"] + (["guidance"] if kind == "2.0-turbo" else [])
                self.assertEqual(dit_inputs, want)
                for graph in check["graphs"].values():
                    for t in graph["inputs"] + graph["outputs"]:
                        n = 4
                        for d in t["shape"]:
                            n *= d
                        self.assertEqual(os.path.getsize(os.path.join(tmp, t["file"])), n, t)
                        self.assertEqual(t["shape"][0], 3)  # not the export's trace batch
                self.assertEqual(manifest["tokens"]["cond_tokens"], C.COND_TOKENS)
                self.assertTrue(os.path.exists(os.path.join(tmp, "set", "manifest.json")))

                # The geometry reference is the plain processor even though
                # FlashVDM's was installed: the graph must match it.
                go = os.environ.get("GO", "go")
                run = subprocess.run([go, "run", "./tools/compare-outputs", tmp], cwd=REPO,
                                     capture_output=True, text=True)
                self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
                self.assertEqual(run.stdout.count(" pass"), 3, run.stdout)

    def test_randomize_moves_norms_and_gates(self):
        pipe = M.pipeline("2.1")
        C.randomize(pipe.model, pipe.vae)
        gates = [m for m in pipe.model.modules() if type(m).__name__ == "MoEGate"]
        self.assertTrue(gates)
        for g in gates:
            self.assertGreater(float(g.weight.abs().max()), 0.0)
        norms = [p for n, p in pipe.vae.named_parameters() if ".ln" in n and n.endswith("weight")]
        self.assertTrue(norms)
        self.assertFalse(all(bool((p == 1).all()) for p in norms))


# A checkout laid out like Tencent's, whose classes are the mirror's behind
# Tencent's constructor signatures. The package __init__ files raise, as
# importing the real ones would pull in the whole pipeline: the tool must
# load the model files without them.
VAE_MODULE = """
import torch.nn.functional as F
import hunyuan_mirror as M
M.scaled_dot_product_attention = F.scaled_dot_product_attention  # Tencent's runs on the CPU
FlashVDMCrossAttentionProcessor = M.FlashVDMCrossAttentionProcessor
class ShapeVAE(M.ShapeVAE):
    def __init__(self, num_latents, embed_dim, width, heads, scale_factor, **_):
        super().__init__(num_latents=num_latents, embed_dim=embed_dim, width=width, heads=heads,
                         scale_factor=scale_factor)
"""
NO_INIT = "raise ImportError('the package __init__ must not run')\n"
FAKE_CHECKOUT_21 = {
    "hy3dshape/hy3dshape/__init__.py": NO_INIT,
    "hy3dshape/hy3dshape/models/__init__.py": NO_INIT,
    "hy3dshape/hy3dshape/models/denoisers/__init__.py": "",
    "hy3dshape/hy3dshape/models/denoisers/hunyuandit.py": """
import hunyuan_mirror as M
class HunYuanDiTPlain(M.DiT21):
    def __init__(self, in_channels, hidden_size, context_dim, depth, num_heads, num_moe_layers, **_):
        super().__init__(channels=in_channels, dim=hidden_size, ctx_dim=context_dim, heads=num_heads, depth=depth,
                         num_moe_layers=num_moe_layers)
""",
    "hy3dshape/hy3dshape/models/autoencoders/__init__.py": VAE_MODULE,
}
FAKE_CHECKOUT = {
    "hy3dgen/__init__.py": NO_INIT,
    "hy3dgen/shapegen/__init__.py": NO_INIT,
    "hy3dgen/shapegen/models/__init__.py": NO_INIT,
    "hy3dgen/shapegen/models/denoisers/__init__.py": "",
    "hy3dgen/shapegen/models/denoisers/hunyuan3ddit.py": """
import hunyuan_mirror as M
class Hunyuan3DDiT(M.DiT20):
    def __init__(self, in_channels, context_in_dim, hidden_size, num_heads, guidance_embed=False, **_):
        super().__init__(channels=in_channels, dim=hidden_size, ctx_dim=context_in_dim, heads=num_heads,
                         guidance_embed=guidance_embed)
""",
    "hy3dgen/shapegen/models/autoencoders/__init__.py": VAE_MODULE,
}


class CheckCommandTest(unittest.TestCase):
    def test_the_command_checks_a_checkout(self):
        cases = [(FAKE_CHECKOUT, ["--family", "2mini", "--turbo"], "Hunyuan3DDiT", "(2mini, turbo)",
                  ("hunyuan3d-2mini", "embedded")),
                 (FAKE_CHECKOUT_21, ["--family", "2.1"], "HunYuanDiTPlain", "(2.1)", ("hunyuan3d-2.1", "cfg"))]
        for files, flags, dit, label, want in cases:
            with self.subTest(flags=flags), tempfile.TemporaryDirectory() as tmp:
                checkout = os.path.join(tmp, "checkout")
                for path, text in files.items():
                    os.makedirs(os.path.dirname(os.path.join(checkout, path)), exist_ok=True)
                    with open(os.path.join(checkout, path), "w") as f:
                        f.write(text)
                env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
                run = subprocess.run([sys.executable, os.path.join(REPO, "tools", "check-hunyuan3d-export"),
                                      "--checkout", checkout, *flags, "--out", os.path.join(tmp, "out")],
                                     cwd=REPO, env=env, capture_output=True, text=True)
                self.assertEqual(run.returncode, 0, run.stdout + run.stderr[-3000:])
                self.assertIn(f"{dit} and ShapeVAE from {checkout} {label}", run.stdout)
                self.assertEqual(run.stdout.count(" pass"), 3, run.stdout)
                with open(os.path.join(tmp, "out", "set", "manifest.json")) as f:
                    manifest = json.load(f)
                self.assertEqual((manifest["family"], manifest["sampler"]["guidance"]), want)


if __name__ == "__main__":
    unittest.main()
