"""The constructed models (tiny, tiny-turbo, silhouette) yield closed surfaces that depend on the picture
(tools/hy3d_export/tiny.py explains the construction)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hy3d_export import reference as R  # noqa: E402
from hy3d_export.tiny import MIN_DENOM, TinySet  # noqa: E402
from hy3d_export.tiny_sets import SETS  # noqa: E402

RES = 48


def _boundary(f):
    return np.concatenate([f[0].ravel(), f[-1].ravel(), f[:, 0].ravel(), f[:, -1].ravel(),
                           f[:, :, 0].ravel(), f[:, :, -1].ravel()])


def _closed_manifold(faces):
    """Every edge of a closed 2-manifold triangle mesh is shared by exactly two faces."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return bool((counts == 2).all())


class TinyFieldTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.fields = {}
        for name, (turbo, design) in SETS.items():
            tiny = TinySet(turbo=turbo, design=design)
            for kind in R.PICTURES:
                lat = R.sample(tiny, R.normalize(R.picture(kind)), steps=5 if turbo else 30, consistency=turbo)
                cls.fields[name, kind] = R.decode_field(tiny, lat, res=RES).numpy()

    def test_fields_have_both_signs_and_a_negative_box_boundary(self):
        for (name, kind), f in self.fields.items():
            with self.subTest(set=name, picture=kind):
                self.assertGreater(f.max(), 1.0)
                self.assertLess(f.min(), -1.0)
                self.assertLess(_boundary(f).max(), -1.0)

    def test_different_pictures_give_different_volumes(self):
        for name in SETS:
            occ = {k: float((self.fields[name, k] > 0).mean()) for k in R.PICTURES}
            # square ⊃ disc ⊃ ring, and the L covers about three quarters of the square
            self.assertGreater(occ["square"], occ["disc"] * 1.1, occ)
            self.assertGreater(occ["disc"], occ["ring"] * 1.2, occ)
            self.assertGreater(occ["disc"], occ["ell"], occ)
            # same volume alone would not prove the shape follows the picture
            ell, square = self.fields[name, "ell"] > 0, self.fields[name, "square"] > 0
            self.assertTrue((ell <= square).all() or (ell & ~square).mean() < 0.002)
            upper_right = ell[RES * 3 // 4:, RES * 3 // 4:, RES // 2]
            self.assertFalse(upper_right.any(), "the L's missing quadrant is filled")
            ring = self.fields[name, "ring"][RES // 2, RES // 2, RES // 2]
            self.assertLess(ring, 0, "the ring has no hole")

    def test_empty_picture_gives_the_small_default_blob(self):
        for name in SETS:
            f = self.fields[name, "white"]
            occ = float((f > 0).mean())
            self.assertGreater(occ, 0.0005)
            self.assertLess(occ, 0.01)
            self.assertGreater(f[RES // 2, RES // 2, RES // 2], 0)

    def test_marching_cubes_gives_one_closed_manifold_surface(self):
        from scipy import ndimage
        from skimage import measure

        for (name, kind), f in self.fields.items():
            with self.subTest(set=name, picture=kind):
                _, faces, _, _ = measure.marching_cubes(f, 0.0)
                self.assertTrue(_closed_manifold(faces))
                self.assertEqual(ndimage.label(f > 0)[1], 1)

    def test_logit_gradient_is_not_degenerate_at_the_surface(self):
        h = 2.02 / RES
        for (name, kind), f in self.fields.items():
            g = np.sqrt(sum(d**2 for d in np.gradient(f, h)))
            near = np.abs(f) < 0.25
            with self.subTest(set=name, picture=kind):
                self.assertTrue(near.any())
                self.assertGreater(np.percentile(g[near], 5), 5.0)


class TinySamplerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tiny = TinySet()
        cls.image = R.normalize(R.picture("ell"))

    def _presence(self, lat):
        return (lat[0] @ self.tiny.dit.presence_dir) / lat.shape[-1] / self.tiny.scale_factor

    def test_euler_lands_on_the_prediction_for_any_step_count(self):
        final = {n: self._presence(R.sample(self.tiny, self.image, steps=n)) for n in (2, 5, 30, 50)}
        for n in (2, 5, 50):
            self.assertLess(float((final[n] - final[30]).abs().max()), 0.35, n)

    def test_seed_perturbs_only_slightly(self):
        a = self._presence(R.sample(self.tiny, self.image, seed=1))
        b = self._presence(R.sample(self.tiny, self.image, seed=2))
        self.assertFalse(torch.equal(a, b))
        self.assertLess(float((a - b).abs().max()), 0.35)

    def test_velocity_is_finite_at_sigma_one(self):
        cond = self.tiny.conditioner(self.image[None])
        x = torch.randn(1, 64, 64)
        v = self.tiny.dit(x, torch.ones(1), cond)
        self.assertTrue(torch.isfinite(v).all())
        # below σ = 1 − MIN_DENOM the denominator is clamped: same scale
        v0 = self.tiny.dit(x, torch.full((1,), 1 - MIN_DENOM), cond)
        self.assertLess(float((v - v0).abs().max()), 0.05 * float(v0.abs().max()))


if __name__ == "__main__":
    unittest.main()
