"""tools/add-matting (hy3d_export/matting.py) on a stand-in with u2net's
interface: one input, seven sigmoid side outputs, the first the matte. Its
numbers are checked through ONNX Runtime by tools/compare-outputs against
rembg's arithmetic written out in PyTorch."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnx  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from hy3d_export import check as C  # noqa: E402
from hy3d_export import matting as MT  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeU2Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fuse = nn.Conv2d(3, 1, 3, padding=1)
        self.sides = nn.ModuleList([nn.Conv2d(3, 1, 1) for _ in range(6)])

    def forward(self, x):
        return (torch.sigmoid(self.fuse(x)),) + tuple(torch.sigmoid(s(x)) for s in self.sides)


def export_fake_u2net(path):
    # Old exporters list initializers among the inputs, as rembg's file may.
    torch.onnx.export(FakeU2Net().eval(), (torch.rand(1, 3, MT.SIZE, MT.SIZE),), path, opset_version=11,
                      input_names=["input.1"], output_names=[f"d{i}" for i in range(7)],
                      dynamic_axes={"input.1": {0: "n"}, **{f"d{i}": {0: "n"} for i in range(7)}},
                      keep_initializers_as_inputs=True)


def rembg_alpha(net, image):
    """rembg's U2netSession arithmetic around the network, without resizes."""
    x = image / image.amax(dim=(1, 2, 3), keepdim=True).clamp(min=MT.EPS)
    x = (x - torch.tensor(MT.MEAN).view(1, 3, 1, 1)) / torch.tensor(MT.STD).view(1, 3, 1, 1)
    p = net(x)[0]
    lo, hi = p.amin(dim=(1, 2, 3), keepdim=True), p.amax(dim=(1, 2, 3), keepdim=True)
    return (p - lo) / (hi - lo).clamp(min=MT.EPS)


class AddMattingTest(unittest.TestCase):
    def test_wrapped_u2net_computes_rembgs_matte(self):
        with tempfile.TemporaryDirectory() as tmp:
            u2net = os.path.join(tmp, "u2net.onnx")
            export_fake_u2net(u2net)
            set_dir = os.path.join(tmp, "check", "set")
            shutil.copytree(os.path.join(REPO, "engines", "tiny"), set_dir, ignore=shutil.ignore_patterns("reference"))
            entry = MT.add_matting(set_dir, u2net, max_batch=2)

            with open(os.path.join(set_dir, "manifest.json")) as f:
                manifest = json.load(f)
            self.assertEqual(manifest["graphs"]["matting"], entry)
            self.assertEqual(sorted(manifest["graphs"]), ["conditioner", "dit", "matting", "vae_geometry", "vae_latents"])
            model = onnx.load(os.path.join(set_dir, "matting.onnx"))
            self.assertEqual([i.name for i in model.graph.input], ["image"])
            self.assertEqual([o.name for o in model.graph.output], ["alpha"])

            g = torch.Generator().manual_seed(3)
            image = torch.rand(2, 3, MT.SIZE, MT.SIZE, generator=g)
            image[1] *= 0.5  # a dark picture: the division by its maximum matters
            with torch.no_grad():
                alpha = rembg_alpha(FakeU2Net().eval(), image)
            out = os.path.dirname(set_dir)
            graphs = {"matting": {"inputs": [C.store_tensor(out, "matting", "image", image)],
                                  "outputs": [C.store_tensor(out, "matting", "alpha", alpha)]}}
            with open(os.path.join(out, "check.json"), "w") as f:
                json.dump({"format": C.CHECK_FORMAT, "source": "rembg's arithmetic in PyTorch", "set": "set",
                           "graphs": graphs}, f)
            run = subprocess.run([os.environ.get("GO", "go"), "run", "./tools/compare-outputs", out], cwd=REPO,
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertIn("alpha", run.stdout)

    def test_opset_18_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "u2net.onnx")
            export_fake_u2net(path)
            model = onnx.load(path)
            model.opset_import[0].version = 18
            with self.assertRaisesRegex(ValueError, "opset 18"):
                MT.wrap_u2net(model)


if __name__ == "__main__":
    unittest.main()
