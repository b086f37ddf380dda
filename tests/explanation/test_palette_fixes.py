"""Suggestions on palettes (neipalette_tf.explanation.palette_fixes)."""

import numpy as np
import pytest

from neipalette_tf.colour import palette, people
from neipalette_tf.colour.space import srgb_to_oklab
from neipalette_tf.explanation import palette_fixes

SIZE = 32


class _Stub:
    """Uniform attention over the whole photo, the palette in NumPy; p is a constant (no model)."""

    image_size, format, path = SIZE, "test", "stub"

    def attend_details(self, images):
        n, p = len(images), (SIZE // 2) ** 2
        attention = np.full((n, p), 1.0 / p, np.float32)
        return {"embedding": np.zeros((n, 4), np.float32), "attention": attention,
                "palette": palette.palettes_from_attention(images, attention)}

    def score_batch(self, e_tops, e_bottoms):
        return np.full(len(e_tops), 0.5)


def _striped(a, b):
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    for y in range(SIZE):
        image[y] = a if (y // 4) % 2 == 0 else b
    return image


def test_entry_region_covers_that_entrys_pixels_only():
    image = _striped((200, 30, 40), (245, 245, 240))
    attention = np.full((SIZE // 2) ** 2, 1.0 / (SIZE // 2) ** 2)
    entries = palette.read_palette(palette.palettes_from_attention(image[None], attention[None])[0])
    assert len(entries) == 2
    red = int(np.argmin([np.linalg.norm(e - srgb_to_oklab(np.array([200, 30, 40]))) for e, _ in entries]))
    region = palette_fixes.entry_region(image, attention, entries, red)
    stripes = np.array([(y // 4) % 2 == 0 for y in range(SIZE)])
    assert region[stripes].min() > 0.99 and region[~stripes].max() < 0.01


def test_a_garment_is_multi_colour_from_the_second_entrys_share():
    lab = np.zeros(3)
    assert not palette_fixes.is_multi_colour([(lab, 1.0)])
    assert not palette_fixes.is_multi_colour([(lab, 0.85), (lab, 0.15)])  # a small print: texture
    assert palette_fixes.is_multi_colour([(lab, 0.8), (lab, palette_fixes.MULTI_COLOUR_SHARE)])


def test_ratings_with_one_entry_replaced_are_the_outfit_ratings():
    rng = np.random.default_rng(0)
    model = people.default()
    read = [[(rng.uniform([0.3, -0.1, -0.1], [0.9, 0.1, 0.1]), s) for s in (0.6, 0.3, 0.1)],
            [(rng.uniform([0.3, -0.1, -0.1], [0.9, 0.1, 0.1]), s) for s in (0.7, 0.3)]]
    targets = rng.uniform([0.2, -0.2, -0.2], [0.95, 0.2, 0.2], (40, 3))
    for g, j in ((0, 0), (0, 2), (1, 1)):
        fast = palette_fixes.ratings_with_entry(read, g, j, targets, model)
        for t, r in zip(targets, fast):
            moved = [list(p) for p in read]
            moved[g][j] = (t, read[g][j][1])
            assert r == pytest.approx(palette_fixes.outfit_rating(moved, model), abs=1e-9)


def test_a_suggestion_recolours_one_entry_and_lifts_the_read_palette_over_the_line():
    top = _striped((31, 45, 84), (200, 30, 40))  # navy and red stripes
    bottom = np.full((SIZE, SIZE, 3), (120, 60, 160), np.uint8)  # purple
    result = palette_fixes.suggest(_Stub(), top, bottom)
    assert len(result["palettes"]["top"]) == 2 and result["rating"] < result["threshold"]
    assert result["suggestions"], result["checked"]
    for s in result["suggestions"]:
        assert s["rating_pixels"] >= people.RATING_THRESHOLD + palette_fixes.PEOPLE_MARGIN
        assert s["delta_e"] >= palette_fixes.MIN_SUGGESTION_SPACING  # a change one can see
        assert s["p_pixels"] == 0.5 and s["text"].startswith(f"make the {palette_fixes.ENTRY_WORDS[s['entry']]} of ")
    # the nearest fix recolours the red stripes only: the navy ones stay
    best = result["suggestions"][0]
    assert best["role"] == "top" and best["from"]["hex"] == "#c81e28" and best["share"] == 0.5
    assert [s["delta_e"] for s in result["suggestions"]] == sorted(s["delta_e"] for s in result["suggestions"])
