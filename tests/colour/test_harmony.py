import csv

import numpy as np
import pytest
from conftest import shared_path

from neipalette_tf.colour import harmony, space


def _vectors():
    with open(shared_path("harmony_rule_vectors.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_every_rule_vector():
    rows = _vectors()
    assert len(rows) == 30
    for i, r in enumerate(rows, start=2):
        top = [float(r["top_L"]), float(r["top_C"]), float(r["top_h"])]
        bottom = [float(r["bottom_L"]), float(r["bottom_C"]), float(r["bottom_h"])]
        assert bool(harmony.is_neutral(*top)) == bool(int(r["top_neutral"])), f"line {i}"
        assert bool(harmony.is_neutral(*bottom)) == bool(int(r["bottom_neutral"])), f"line {i}"
        label = "harmonious" if harmony.harmonious(top, bottom) else "clashing"
        assert label == r["label"], f"line {i}"


def test_rule_vectors_vectorised():
    rows = _vectors()
    top = np.array([[float(r[f"top_{k}"]) for k in "LCh"] for r in rows])
    bottom = np.array([[float(r[f"bottom_{k}"]) for k in "LCh"] for r in rows])
    expected = np.array([r["label"] == "harmonious" for r in rows])
    np.testing.assert_array_equal(harmony.harmonious(top, bottom), expected)


def test_oklch_reference_colours():
    # White, black and sRGB red in OKLCH (Ottosson's published values).
    lch = space.srgb_to_oklch(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]]))
    np.testing.assert_allclose(lch[0, :2], [1.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(lch[1, :2], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(lch[2], [0.62796, 0.25768, 29.2339], atol=1e-3)


def test_round_trip_and_hue_range():
    rgb = np.random.default_rng(0).uniform(0, 255, (500, 3))
    lch = space.srgb_to_oklch(rgb)
    assert lch[:, 2].min() >= 0 and lch[:, 2].max() < 360
    np.testing.assert_allclose(space.oklch_to_srgb(lch), rgb, atol=1e-6)


@pytest.mark.parametrize("h1,h2,d", [(350, 10, 20), (0, 180, 180), (90, 270, 180), (10, 10, 0), (720, 30, 30)])
def test_hue_distance(h1, h2, d):
    assert harmony.hue_distance(h1, h2) == pytest.approx(d)
