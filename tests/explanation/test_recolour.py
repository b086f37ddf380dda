"""Recolouring a garment on the photo (neipalette_tf.explanation.recolour)."""

import numpy as np
import pytest
from explain_stand_ins import GREEN, RED, SIZE, garment

from neipalette_tf.colour import space
from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.explanation import recolour


def test_shift_ab_takes_the_colour_to_the_target_and_keeps_texture():
    current, target = np.array([0.6, 0.15, 0.05]), np.array([0.6, -0.02, -0.1])
    assert np.allclose(recolour.shift_ab(current[1:], current, target), target[1:])
    near = current[1:] + [0.01, -0.01]
    assert np.linalg.norm(recolour.shift_ab(near, current, target) - target[1:]) == pytest.approx(
        0.01 * np.sqrt(2) * np.hypot(*target[1:]) / np.hypot(*current[1:]))
    grey = np.array([0.5, 0.005, 0.0])
    assert np.allclose(recolour.shift_ab(grey[1:], grey, target), target[1:])  # translated


def test_colour_region_is_the_colour_inside_the_attention():
    image = garment(RED)
    region = recolour.colour_region(image, None, space.srgb_to_oklab(np.array(RED)))
    assert region[10, 12] == 1.0 and region[0, 0] == 0.0
    side = SIZE // 2
    attention = np.zeros((side, side))
    attention[8, 8] = 1.0  # a peaked map: the region is where the colour is around the peak
    region = recolour.colour_region(image, attention, space.srgb_to_oklab(np.array(RED)))
    assert region[15, 15] == 1.0 and region[0, 0] == 0.0


def test_recolour_moves_the_region_to_the_target_and_nothing_else():
    image = garment(RED)
    current = space.srgb_to_oklab(np.array(RED, np.float64))
    target = space.srgb_to_oklab(np.array(GREEN, np.float64))
    region = recolour.colour_region(image, None, current)
    out = recolour.recolour(image, region, current, target)
    assert out.dtype == np.uint8 and (out[region == 0] == image[region == 0]).all()
    moved = space.srgb_to_oklab(estimate_main_colour(out))
    assert np.linalg.norm(moved - target) < 0.01  # lightness stepped too: GREEN's L, not RED's
    assert np.allclose(out[15, 15], GREEN, atol=2)


def test_upsample_keeps_the_map_normalised():
    attention = np.arange(16, dtype=np.float64).reshape(4, 4)
    up = recolour.upsample(attention, 32)
    assert up.shape == (32, 32) and up.sum() == pytest.approx(1.0)
    assert up[31, 31] == up.max() and up[0, 0] == 0.0
