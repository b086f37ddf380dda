"""Colour names and the rule's reading in words (no TensorFlow)."""

import numpy as np
import pytest

from neipalette_tf.colour import harmony, space
from neipalette_tf.colour.names import NAMES, PALETTE, colour_name, colour_name_of_srgb, hex_of_srgb


@pytest.mark.parametrize("rgb,name", [
    ((30, 40, 70), "navy"), ((183, 65, 14), "rust"), ((242, 239, 230), "off-white"), ((255, 0, 0), "red"),
    ((20, 20, 20), "black"), ((128, 128, 128), "grey"), ((0, 128, 0), "green"), ((128, 0, 32), "burgundy"),
    ((60, 90, 140), "denim"), ((200, 180, 150), "beige"),
])
def test_plain_names(rgb, name):
    assert colour_name_of_srgb(rgb) == name


def test_every_anchor_is_named_after_itself_and_oklch_agrees():
    for name in NAMES:
        code = PALETTE[name]
        rgb = [int(code[i:i + 2], 16) for i in (1, 3, 5)]
        assert colour_name_of_srgb(rgb) == name
        assert colour_name(space.srgb_to_oklch(np.array(rgb, np.uint8))) == name
        assert hex_of_srgb(rgb) == code


def test_rule_reading_names_the_deciding_clause():
    from neipalette_tf.explanation.readings import rule_reading

    red, green = space.srgb_to_oklch(np.array([[200, 30, 40], [40, 150, 60]], np.uint8))
    ok, text = rule_reading(red, green, ("red", "green"))
    d = float(harmony.hue_distance(red[2], green[2]))
    assert not ok and text.startswith(f"clashing: the red top and the green bottom are {d:.0f}° apart in hue")
    assert f"≤ {harmony.ANALOGOUS_MAX_DEG:g}°" in text and f"≥ {harmony.COMPLEMENTARY_MIN_DEG:g}°" in text
    navy = space.srgb_to_oklch(np.array([30, 40, 70], np.uint8))
    ok, text = rule_reading(red, navy, ("red", "navy"))
    assert ok and text.startswith("harmonious: the navy bottom is a navy / denim neutral")
    ok, text = rule_reading(red, red + [0, 0, 10], ("red", "red"))
    assert ok and "analogous" in text
    ok, text = rule_reading(red, red + [0, 0, 170])
    assert ok == bool(harmony.harmonious(red, red + [0, 0, 170])) and "complementary" in text
