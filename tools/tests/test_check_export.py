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


if __name__ == "__main__":
    unittest.main()
