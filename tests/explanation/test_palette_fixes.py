"""Suggestions on palettes (neipalette_tf.explanation.palette_fixes)."""

import numpy as np

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

    def predict_details(self, tops, bottoms):
        return {"p": np.full(len(tops), 0.5), "rating": None}


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


def test_a_suggestion_recolours_one_entry_and_lifts_the_read_palette_over_the_line():
    top = _striped((31, 45, 84), (200, 30, 40))  # navy and red stripes
    bottom = np.full((SIZE, SIZE, 3), (120, 60, 160), np.uint8)  # purple
    result = palette_fixes.suggest(_Stub(), top, bottom)
    assert len(result["palettes"]["top"]) == 2 and result["rating"] < result["threshold"]
    assert result["suggestions"], result["checked"]
    for s in result["suggestions"]:
        assert s["rating_pixels"] >= people.RATING_THRESHOLD + palette_fixes.PEOPLE_MARGIN
    # the nearest fix recolours the red stripes only: the navy ones stay
    best = result["suggestions"][0]
    assert best["role"] == "top" and best["entry"]["hex"] == "#c81e28" and best["entry"]["share"] == 0.5
    ratings = [s["delta_e"] for s in result["suggestions"]]
    assert ratings == sorted(ratings)  # nearest first
