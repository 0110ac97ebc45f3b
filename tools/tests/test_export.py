"""The shared exporter (tools/hy3d_export/export.py) on the tiny models."""

import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import onnx  # noqa: E402
import torch  # noqa: E402

from hy3d_export import export as E  # noqa: E402
from hy3d_export.tiny import TinySet  # noqa: E402
from hy3d_export.tiny_sets import SETS, graph_specs, manifest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# engines/manifest.go's JSON fields, which the Go side requires.
MANIFEST_KEYS = {"name", "family", "description", "scale_factor", "image", "tokens", "sampler", "volume", "graphs"}
IMAGE_KEYS = {"size", "canvas_size", "border_ratio", "mean", "std"}
TOKEN_KEYS = {"cond_tokens", "cond_dim", "latent_tokens", "latent_channels", "feature_width"}
SAMPLER_KEYS = {"kind", "guidance", "steps", "guidance_scale"}
VOLUME_KEYS = {"bounds", "resolution", "chunk_points", "coarse_resolution", "refine_band"}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _export(spec, path, inputs=None):
    with E.deterministic():
        E.export_graph(spec.module, inputs or spec.inputs, spec.input_names, spec.output_names,
                       spec.dynamic_axes(), path, output_shapes={n: spec.shapes[n] for n in spec.output_names})
    with open(path, "rb") as f:
        return f.read()


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tiny = TinySet()
        cls.turbo = TinySet(turbo=True)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_graph_has_the_contract_names_shapes_and_float32(self):
        for tiny in (self.tiny, self.turbo):
            for spec in graph_specs(tiny):
                with self.subTest(turbo=tiny.turbo, graph=spec.name):
                    path = os.path.join(self.tmp.name, f"contract-{tiny.turbo}-{spec.name}.onnx")
                    _export(spec, path)
                    model = onnx.load(path)
                    onnx.checker.check_model(model)
                    self.assertEqual(model.opset_import[0].version, 17)
                    ios = list(model.graph.input) + list(model.graph.output)
                    self.assertEqual([v.name for v in model.graph.input], list(spec.input_names))
                    self.assertEqual([v.name for v in model.graph.output], list(spec.output_names))
                    for v in ios:
                        self.assertEqual(v.type.tensor_type.elem_type, onnx.TensorProto.FLOAT, v.name)
                        want = spec.shapes[v.name]
                        got = _dims(v)
                        self.assertEqual(len(got), len(want), v.name)
                        for g, w in zip(got, want):
                            if w == -1:
                                self.assertIsInstance(g, str, v.name)
                            else:
                                self.assertEqual(g, w, v.name)
                        self.assertEqual(_dims(v)[0], "batch")
                    if spec.name == "vae_geometry":
                        q = _dims(model.graph.input[0])[1]
                        self.assertEqual(q, _dims(model.graph.output[0])[1])

    def test_exported_bytes_do_not_depend_on_the_sample_batch(self):
        # A batch size baked into the graph as a constant would show here.
        for b1, b2 in ((1, 3), (2, 5)):
            for s1, s2 in zip(graph_specs(self.tiny, batch=b1, queries=37), graph_specs(self.tiny, batch=b2, queries=91)):
                if s1.name == "conditioner" and b2 == 5:
                    continue  # 518² images: one pair is enough
                with self.subTest(graph=s1.name, batches=(b1, b2)):
                    a = _export(s1, os.path.join(self.tmp.name, f"b{b1}-{s1.name}.onnx"))
                    b = _export(s2, os.path.join(self.tmp.name, f"b{b2}-{s2.name}.onnx"))
                    self.assertEqual(a, b)

    def test_export_is_byte_reproducible(self):
        for spec in graph_specs(self.turbo):
            if spec.name == "conditioner":
                continue  # covered by the committed-files test
            a = _export(spec, os.path.join(self.tmp.name, "again-a.onnx"))
            fresh = [s for s in graph_specs(TinySet(turbo=True)) if s.name == spec.name][0]
            b = _export(fresh, os.path.join(self.tmp.name, "again-b.onnx"))
            self.assertEqual(a, b, spec.name)

    def test_non_float32_inputs_are_refused(self):
        spec = graph_specs(self.tiny)[2]
        with self.assertRaises(ValueError):
            _export(spec, os.path.join(self.tmp.name, "half.onnx"), inputs=(spec.inputs[0].double(),))

    def test_large_graphs_keep_weights_in_one_external_file(self):
        spec = graph_specs(self.tiny)[2]
        path = os.path.join(self.tmp.name, "big", "vae_latents.onnx")
        with mock.patch.object(E, "EXTERNAL_DATA_THRESHOLD", 1024):
            _export(spec, path)
        self.assertTrue(os.path.exists(path + ".data"))
        self.assertEqual(sorted(os.listdir(os.path.dirname(path))), ["vae_latents.onnx", "vae_latents.onnx.data"])
        self.assertLess(os.path.getsize(path), 32 * 1024)
        onnx.checker.check_model(path)
        model = onnx.load(path)  # pulls the weights back in
        self.assertGreater(model.ByteSize(), os.path.getsize(path))

    def test_affine_less_layernorms_become_exportable(self):
        m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4, elementwise_affine=False))
        x = torch.randn(2, 4)
        want = m(x)
        self.assertEqual(E.give_layernorms_affine(m), 1)
        self.assertTrue(torch.equal(m(x), want))
        path = os.path.join(self.tmp.name, "ln.onnx")
        E.export_graph(m, (x,), ["x"], ["y"], {"x": {0: "batch"}, "y": {0: "batch"}}, path)
        onnx.checker.check_model(onnx.load(path))

    def test_manifest_has_every_field_the_go_side_reads(self):
        for tiny in (self.tiny, self.turbo):
            path = os.path.join(self.tmp.name, "manifest.json")
            m = E.write_manifest(path, manifest(tiny), graph_specs(tiny))
            with open(path) as f:
                self.assertEqual(json.load(f), m)
            self.assertEqual(set(m), MANIFEST_KEYS)
            self.assertEqual(set(m["image"]), IMAGE_KEYS)
            self.assertEqual(set(m["tokens"]), TOKEN_KEYS)
            self.assertLessEqual(SAMPLER_KEYS, set(m["sampler"]))
            self.assertEqual(set(m["volume"]), VOLUME_KEYS)
            self.assertEqual(set(m["graphs"]), set(E.GRAPH_NAMES))
            self.assertNotEqual(m["scale_factor"], 1.0)
            self.assertEqual(m["tokens"]["cond_tokens"], 1370)
            for g in m["graphs"].values():
                self.assertGreaterEqual(g["max_batch"], 1)
                for io in g["inputs"] + g["outputs"]:
                    self.assertEqual(io["shape"][0], -1)
            self.assertEqual(m["graphs"]["dit"]["max_batch"], 2 * m["graphs"]["conditioner"]["max_batch"])
        self.assertEqual(manifest(self.turbo)["sampler"],
                         {"kind": "consistency", "guidance": "embedded", "steps": 5,
                          "guidance_scale": 5.0, "pcm_timesteps": 100})

    def test_coarse_resolution_follows_flashvdm_halving(self):
        self.assertEqual([E.coarse_resolution(r) for r in (384, 256, 128, 64, 32)], [96, 64, 64, 64, 32])


class CommittedEnginesTest(unittest.TestCase):
    """engines/tiny, engines/tiny-turbo and engines/silhouette are what the generator makes now,
    byte for byte (regenerate with `make tiny-engines`, then `make tiny-reference`)."""

    def test_committed_tiny_sets_are_up_to_date(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name, (turbo, design) in SETS.items():
                tiny = TinySet(turbo=turbo, design=design)
                out = os.path.join(tmp, name)
                E.export_model_set(out, manifest(tiny), graph_specs(tiny))
                committed = os.path.join(ROOT, "engines", name)
                # reference/ holds verify's stored outputs (make tiny-reference), not generator output.
                generated = sorted(f for f in os.listdir(committed) if f != "reference")
                self.assertEqual(sorted(os.listdir(out)), generated)
                total = 0
                for f in sorted(os.listdir(out)):
                    with open(os.path.join(out, f), "rb") as a, open(os.path.join(committed, f), "rb") as b:
                        data = a.read()
                        self.assertTrue(data == b.read(), f"{name}/{f} differs: run make tiny-engines")
                        total += len(data)
                self.assertLess(total, 4 * 1024 * 1024)


if __name__ == "__main__":
    unittest.main()
