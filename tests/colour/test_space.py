"""`neipalette_tf.colour.space`: sRGB, linear light, OKLab and OKLCH.

Reference values: Björn Ottosson's OKLab definition (https://bottosson.github.io/posts/oklab/),
whose table gives OKLab for the sRGB primaries and white; checked here to 1e-4.
"""

import numpy as np
import pytest

from neipalette_tf.colour import space

# sRGB 0..255 -> OKLab (L, a, b), from the OKLab post's reference table
REFERENCE = {
    (255, 255, 255): (1.000, 0.000, 0.000),
    (255, 0, 0): (0.627955, 0.224863, 0.125846),
    (0, 255, 0): (0.866440, -0.233888, 0.179498),
    (0, 0, 255): (0.452014, -0.032457, -0.311528),
    (0, 0, 0): (0.0, 0.0, 0.0),
}


@pytest.mark.parametrize("rgb", list(REFERENCE))
def test_oklab_matches_the_reference(rgb):
    assert space.srgb_to_oklab(np.array(rgb)) == pytest.approx(REFERENCE[rgb], abs=1e-4)


def test_the_transfer_function_is_continuous_at_its_knee_and_inverts():
    knee = space.SRGB_KNEE
    below, above = space.srgb_to_linear(knee - 1e-9), space.srgb_to_linear(knee + 1e-9)
    assert abs(above - below) < 1e-7 and space.srgb_to_linear(knee) == pytest.approx(space.LINEAR_KNEE, rel=1e-3)
    x = np.linspace(0, 1, 1001)
    assert np.abs(space.linear_to_srgb(space.srgb_to_linear(x)) - x).max() < 1e-12


def test_round_trips_over_the_whole_cube_and_any_leading_shape():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 255, (4, 50, 3))
    assert space.srgb_to_oklab(rgb).shape == (4, 50, 3)
    assert np.abs(space.oklab_to_srgb(space.srgb_to_oklab(rgb)) - rgb).max() < 1e-6
    assert np.abs(space.oklch_to_srgb(space.srgb_to_oklch(rgb)) - rgb).max() < 1e-6


def test_oklch_is_oklab_in_polar_form_with_hue_in_0_to_360():
    lab = np.array([[0.6, 0.1, 0.0], [0.6, 0.0, 0.1], [0.6, -0.1, 0.0], [0.6, 0.0, -0.1]])
    lch = space.oklab_to_oklch(lab)
    assert lch[:, 1] == pytest.approx([0.1] * 4) and lch[:, 2] == pytest.approx([0, 90, 180, 270])
    assert np.abs(space.oklch_to_oklab(lch) - lab).max() < 1e-12


def test_out_of_gamut_colours_are_clipped_and_flagged():
    vivid = np.array([0.7, 0.4, 140.0])  # chroma far beyond any sRGB green
    assert not space.in_srgb_gamut(vivid) and space.in_srgb_gamut(np.array([0.7, 0.05, 140.0]))
    out = space.oklch_to_srgb(vivid)
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert space.in_srgb_gamut(space.srgb_to_oklch(np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]]))).all()
