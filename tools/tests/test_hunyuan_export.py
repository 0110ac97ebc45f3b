"""The Hunyuan3D export wrappers (tools/hy3d_export/hunyuan.py), run on the
small mirror modules of hunyuan_mirror.py."""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402
import torch  # noqa: E402

import hunyuan_mirror as M  # noqa: E402
from hy3d_export import hunyuan as H  # noqa: E402

MIRROR = ("hunyuan_mirror",)


def _close(a, b, tol=1e-5):
    return torch.allclose(a, b, atol=tol, rtol=tol)


class SdpaTest(unittest.TestCase):
    def test_sdpa_equals_softmax_attention(self):
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
        want = torch.softmax(q @ k.transpose(-2, -1) / 8 ** 0.5, dim=-1) @ v
        self.assertTrue(_close(H.sdpa(q, k, v), want))

    def test_sdpa_rejects_masks(self):
        q = torch.zeros(1, 1, 2, 4)
        with self.assertRaises(NotImplementedError):
            H.sdpa(q, q, q, attn_mask=torch.ones(2, 2))

    def test_exportable_attention_replaces_module_globals_and_restores_them(self):
        x = torch.randn(1, 4, 32)
        attn = M.SelfAttentionVAE(32, 2)
        with self.assertRaises(RuntimeError):
            attn(x)  # the mirror's import-time binding is an untraceable kernel
        with H.exportable_attention(MIRROR):
            attn(x)
        self.assertIs(M.scaled_dot_product_attention, M._untraceable_kernel)


class SafeRMSNormTest(unittest.TestCase):
    def test_matches_both_hunyuan_rmsnorms(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(3, 7, 16, generator=g) * 5
        for norm in (M.RMSNorm(16), torch.nn.RMSNorm(16, eps=1e-6)):
            with torch.no_grad():
                w = norm.scale if hasattr(norm, "scale") else norm.weight
                w.copy_(torch.rand(16, generator=g) + 0.5)
            safe = H._safe_rmsnorm(norm)
            self.assertTrue(_close(safe(x), norm(x)), type(norm))

    def test_zero_vector_stays_finite(self):
        y = H.SafeRMSNorm(torch.ones(8), 1e-6)(torch.zeros(2, 8))
        self.assertTrue(torch.isfinite(y).all())
        self.assertEqual(float(y.abs().max()), 0.0)

    def test_squares_stay_in_fp16_range(self):
        # Activations of a few thousand overflow x² in FP16 (max 65504); the
        # safe form only ever squares values in [−1, 1].
        x = torch.tensor([[3000.0, -2000.0, 500.0, 1.0]])
        self.assertTrue(torch.isinf((x.half().float() ** 2).half()).any())
        m = x.abs().amax(-1, keepdim=True)
        self.assertLessEqual(float(((x / m) ** 2).max()), 1.0)
        want = x / torch.sqrt((x**2).mean(-1, keepdim=True))
        self.assertTrue(_close(H.SafeRMSNorm(torch.ones(4), 0.0)(x), want, 1e-5))


    def test_export_has_no_pow_for_runtimes_to_fuse_with_a_default_eps(self):
        # ONNX Runtime matches Pow → ReduceMean → Add → Sqrt as RMSNorm and
        # replaces a non-constant epsilon (ours is eps/m²) with 1e-5.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "norm.onnx")
            torch.onnx.export(H.SafeRMSNorm(torch.ones(8), 1e-6), (torch.randn(2, 3, 8),), path,
                              input_names=["x"], output_names=["y"], opset_version=17)
            ops = [n.op_type for n in onnx.load(path).graph.node]
        self.assertIn("ReduceMean", ops)
        self.assertNotIn("Pow", ops)


class MoETest(unittest.TestCase):
    def test_dense_moe_equals_host_routed_moe(self):
        torch.manual_seed(2)
        block = M.MoEBlock(16, experts=4, top_k=2).eval()
        x = torch.randn(3, 11, 16)
        with torch.no_grad():
            want = block(x)
            got = H.DenseMoE(block)(x)
        self.assertTrue(_close(got, want), float((got - want).abs().max()))

    def test_dense_moe_normalizes_top_k_when_the_gate_does(self):
        torch.manual_seed(3)
        block = M.MoEBlock(8, experts=3, top_k=2).eval()
        block.gate.norm_topk_prob = True
        x = torch.randn(1, 5, 8)
        dense = H.DenseMoE(block)
        with torch.no_grad():
            scores = torch.softmax(x.view(-1, 8) @ block.gate.weight.T, -1)
            w, i = torch.topk(scores, 2, -1)
            w = w / w.sum(-1, keepdim=True)
            routed = dense(x).view(-1, 8) - block.shared_experts(x).view(-1, 8)
            for t in range(5):
                want = sum(block.experts[int(i[t, j])](x.view(-1, 8)[t]) * w[t, j] for j in range(2))
                self.assertTrue(_close(routed[t], want))

    def test_prepare_replaces_moe_blocks(self):
        dit = M.DiT21().eval()
        counts = H.prepare_for_export(dit)
        self.assertEqual(counts["moe"], 1)
        self.assertIsInstance(dit.blocks[-1].moe, H.DenseMoE)


class ChannelGroupingTest(unittest.TestCase):
    """2.1 splits cat(q, k, v) per head: head h takes channels
    [3dh, 3dh+d) as q, [3dh+d, 3dh+2d) as k and [3dh+2d, 3dh+3d) as v of
    the concatenation. The exported function must keep exactly that."""

    def _reference_self(self, attn, x):
        b, n, c = x.shape
        hds, d = attn.heads, attn.head_dim
        cat = torch.cat((attn.to_q(x), attn.to_k(x), attn.to_v(x)), dim=-1)
        heads = []
        for h in range(hds):
            q = attn.q_norm(cat[..., 3 * d * h: 3 * d * h + d])
            k = attn.k_norm(cat[..., 3 * d * h + d: 3 * d * h + 2 * d])
            v = cat[..., 3 * d * h + 2 * d: 3 * d * h + 3 * d]
            heads.append(torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5, -1) @ v)
        return attn.out_proj(torch.cat(heads, dim=-1))

    def _reference_cross(self, attn, x, y):
        hds, d = attn.heads, attn.head_dim
        q = attn.to_q(x)
        kv = torch.cat((attn.to_k(y), attn.to_v(y)), dim=-1)
        heads = []
        for h in range(hds):
            qh = attn.q_norm(q[..., d * h: d * (h + 1)])
            kh = attn.k_norm(kv[..., 2 * d * h: 2 * d * h + d])
            vh = kv[..., 2 * d * h + d: 2 * d * (h + 1)]
            heads.append(torch.softmax(qh @ kh.transpose(-2, -1) / d ** 0.5, -1) @ vh)
        return attn.out_proj(torch.cat(heads, dim=-1))

    def test_self_attention_grouping_survives_preparation(self):
        torch.manual_seed(4)
        attn = M.Attention21(32, 4).eval()
        x = torch.randn(2, 6, 32)
        with torch.no_grad():
            want = self._reference_self(attn, x)
            H.prepare_for_export(attn)
            self.assertIsInstance(attn.q_norm, H.SafeRMSNorm)
            with H.exportable_attention(MIRROR):
                got = attn(x)
        self.assertTrue(_close(got, want))

    def test_cross_attention_grouping_survives_preparation(self):
        torch.manual_seed(5)
        attn = M.CrossAttention21(32, 16, 4).eval()
        x, y = torch.randn(2, 6, 32), torch.randn(2, 9, 16)
        with torch.no_grad():
            want = self._reference_cross(attn, x, y)
            H.prepare_for_export(attn)
            with H.exportable_attention(MIRROR):
                got = attn(x, y)
        self.assertTrue(_close(got, want))


class ProcessorTest(unittest.TestCase):
    def test_flashvdm_processor_and_kv_cache_are_removed(self):
        vae = M.ShapeVAE().eval()
        vae.enable_flashvdm_decoder()
        attn = vae.geo_decoder.cross_attn_decoder.attn
        attn.kv_cache = True
        counts = H.prepare_for_export(vae)
        self.assertIsInstance(attn.attention.attn_processor, H.PlainCrossAttentionProcessor)
        self.assertFalse(attn.kv_cache)
        self.assertEqual((counts["processor"], counts["kv_cache"]), (1, 1))


class PipelineExportTest(unittest.TestCase):
    """Export mirror pipelines end to end and check each graph's contract
    and that the rewired wrappers compute what the original modules did."""

    CASES = {
        "2.0-turbo": ("hunyuan3d-2.0", "consistency", "embedded"),
        "2mini-fast": ("hunyuan3d-2mini", "flow_euler", "embedded"),
        "2.1": ("hunyuan3d-2.1", "flow_euler", "cfg"),
    }

    def _reference(self, pipe, guidance):
        g = torch.Generator().manual_seed(9)
        image = torch.randn(2, 3, 518, 518, generator=g)
        lat = torch.randn(2, 16, 8, generator=g)
        cond = torch.randn(2, 1370, 16, generator=g)
        sigma = torch.tensor([0.25, 0.75])
        pts = torch.rand(2, 50, 3, generator=g) * 2 - 1
        gs = torch.tensor([5.0, 3.0])
        with torch.no_grad(), H.exportable_attention(MIRROR):
            want = {
                "conditioner": pipe.conditioner.main_image_encoder.model(image).last_hidden_state,
                "dit": pipe.model(lat, sigma, {"main": cond}, **({"guidance": gs} if guidance else {})),
                "vae_latents": pipe.vae.transformer(pipe.vae.post_kl(lat)),
            }
            # the plain (non-FlashVDM) decoder is the reference for geometry
            dec = pipe.vae.geo_decoder
            dec.set_cross_attention_processor(M.CrossAttentionProcessor())
            want["vae_geometry"] = dec(queries=pts, latents=want["vae_latents"]).squeeze(-1)
            dec.set_cross_attention_processor(M.FlashVDMCrossAttentionProcessor())
        inputs = {"conditioner": (image,), "dit": (lat, sigma, cond) + ((gs,) if guidance else ()),
                  "vae_latents": (lat,), "vae_geometry": (pts, want["vae_latents"])}
        return inputs, want

    def test_mirror_pipelines_export_with_the_contract(self):
        for kind, (family, sampler, guidance) in self.CASES.items():
            with self.subTest(kind=kind), tempfile.TemporaryDirectory() as tmp:
                pipe = M.pipeline(kind)
                inputs, want = self._reference(pipe, guidance == "embedded")
                specs, _ = H.model_set(pipe, family, kind, packages=MIRROR, sample_points=64)
                with torch.no_grad(), H.exportable_attention(MIRROR):
                    for spec in specs:
                        got = spec.module(*inputs[spec.name])
                        self.assertTrue(_close(got, want[spec.name], 1e-4), (kind, spec.name))
                m = H.export_pipeline(pipe, tmp, family, kind, packages=MIRROR, sample_points=64)
                self.assertEqual((m["family"], m["sampler"]["kind"], m["sampler"]["guidance"]),
                                 (family, sampler, guidance))
                if sampler == "consistency":
                    self.assertEqual(m["sampler"]["pcm_timesteps"], 100)
                    self.assertEqual(m["sampler"]["steps"], 5)
                self.assertEqual(m["tokens"], {"cond_tokens": 1370, "cond_dim": 16, "latent_tokens": 16,
                                               "latent_channels": 8, "feature_width": 32})
                self.assertAlmostEqual(m["scale_factor"], 1.0039506)
                self.assertEqual(m["volume"]["coarse_resolution"], 96)
                with open(os.path.join(tmp, "manifest.json")) as f:
                    self.assertEqual(json.load(f), m)
                for name, g in m["graphs"].items():
                    model = onnx.load(os.path.join(tmp, g["onnx"]))
                    onnx.checker.check_model(model)
                    names = [i.name for i in model.graph.input]
                    self.assertEqual(names, [i["name"] for i in g["inputs"]], name)
                    ops = {n.op_type for n in model.graph.node}
                    self.assertFalse(ops & {"Loop", "If"}, (kind, name))
                dit_inputs = [i["name"] for i in m["graphs"]["dit"]["inputs"]]
                self.assertEqual("guidance" in dit_inputs, guidance == "embedded")
                if kind == "2.1":
                    dit = onnx.load(os.path.join(tmp, "dit.onnx"))
                    ops = {n.op_type for n in dit.graph.node}
                    self.assertIn("TopK", ops)  # the MoE gate, routed in the graph

    def test_graphs_do_not_depend_on_the_sample_batch(self):
        # 2.1 folds the batch into the token axis (view(1, −1, heads, 3d));
        # a batch size frozen into the graph as a constant would show here.
        from hy3d_export import export as E

        with tempfile.TemporaryDirectory() as tmp:
            exported = {}
            for b, points in ((2, 64), (3, 80)):
                specs, _ = H.model_set(M.pipeline("2.1"), "hunyuan3d-2.1", "x", packages=MIRROR,
                                       sample_batch=b, sample_points=points)
                for spec in specs:
                    if spec.name == "conditioner":
                        continue  # plain DINOv2, no batch tricks
                    path = os.path.join(tmp, f"{b}-{spec.name}.onnx")
                    with E.deterministic(), H.exportable_attention(MIRROR):
                        E.export_graph(spec.module, spec.inputs, spec.input_names, spec.output_names,
                                       spec.dynamic_axes(), path,
                                       output_shapes={n: spec.shapes[n] for n in spec.output_names})
                    with open(path, "rb") as f:
                        exported[b, spec.name] = f.read()
            for name in ("dit", "vae_latents", "vae_geometry"):
                self.assertEqual(exported[2, name], exported[3, name], name)


if __name__ == "__main__":
    unittest.main()
