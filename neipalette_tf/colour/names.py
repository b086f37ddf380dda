"""Plain names for colours ("navy", "rust", "off-white"), for explanations.

A colour is named after the nearest entry of `PALETTE` (about fifty
clothing-colour names, each anchored at one sRGB colour) in OKLab, with
the a, b (hue / chroma) axes weighted `AB_WEIGHT` times the lightness
axis: a person calls a dark and a light blue both "blue" sooner than a
blue and a grey of one lightness the same. The OKLab / OKLCH maths is
`neipalette_tf.colour.harmony`'s; this module only holds the names. NumPy only.

Example:

>>> colour_name((0.25, 0.05, 265.0))  # OKLCH: a dark, slightly blue colour
'navy'
>>> colour_name_of_srgb((183, 65, 14))
'rust'
>>> colour_name_of_srgb((242, 239, 230))
'off-white'
"""

import numpy as np

from neipalette_tf.colour.space import oklch_to_oklab, srgb_to_oklab

AB_WEIGHT = 2.0

# name -> sRGB hex of a typical garment of that colour
PALETTE = {
    "black": "#111111", "charcoal": "#37393d", "dark grey": "#5a5a5a", "grey": "#8a8a8a",
    "light grey": "#c4c4c4", "white": "#fbfbfb", "off-white": "#f2efe6", "cream": "#efe3c2",
    "beige": "#d8c6a6", "taupe": "#8b7d6b", "tan": "#c9a878", "camel": "#b98a52",
    "khaki": "#b8ab7e", "brown": "#6b4423", "chocolate": "#43291b", "rust": "#b7410e",
    "terracotta": "#c4603f", "orange": "#f0842a", "peach": "#f6bf9c", "coral": "#f07462",
    "mustard": "#d2a218", "yellow": "#f3d23a", "pale yellow": "#f4eaa2", "lime": "#a7c83a",
    "olive": "#6f7530", "khaki green": "#8a8a5a", "sage": "#9caf88", "green": "#2f9444",
    "forest green": "#1f4d2b", "mint": "#a4dcbc", "emerald": "#119467", "teal": "#0f7a7a",
    "turquoise": "#35c2c0", "sky blue": "#8ccbed", "light blue": "#b1c9e6", "denim": "#4a6590",
    "blue": "#2f62c8", "royal blue": "#2845b5", "navy": "#1f2a48", "indigo": "#3b3585",
    "purple": "#6c3a9c", "lavender": "#b9a9dc", "plum": "#6a2c5c", "magenta": "#c0318e",
    "pink": "#f3a7c3", "hot pink": "#e6418e", "red": "#cc2330", "burgundy": "#74202f",
    "maroon": "#5a1a1c", "dusty pink": "#d29a9f", "pale pink": "#ecd0dc", "lilac": "#c4a3cf",
    "pale blue": "#d3e0ee", "pale green": "#d2e6cc",
}


def _hex_to_rgb(code):
    code = code.lstrip("#")
    return [int(code[i:i + 2], 16) for i in (0, 2, 4)]


NAMES = tuple(PALETTE)
_ANCHORS = srgb_to_oklab(np.array([_hex_to_rgb(PALETTE[n]) for n in NAMES], dtype=np.float64))
_WEIGHTS = np.array([1.0, AB_WEIGHT, AB_WEIGHT])


def nearest_names(lab):
    """Palette indices of the nearest names of OKLab colours `[..., 3]`."""
    lab = np.asarray(lab, dtype=np.float64)
    d = np.sum(((lab[..., None, :] - _ANCHORS) * _WEIGHTS) ** 2, axis=-1)
    return np.argmin(d, axis=-1)


def colour_name_of_oklab(lab):
    """The plain name of one OKLab colour `(L, a, b)`."""
    return NAMES[int(nearest_names(np.asarray(lab, dtype=np.float64)))]


def colour_name(lch):
    """The plain name of one OKLCH colour `(L, C, h)` (h in degrees)."""
    return colour_name_of_oklab(oklch_to_oklab(np.asarray(lch, dtype=np.float64)))


def colour_name_of_srgb(rgb):
    """The plain name of one sRGB colour (0..255)."""
    return colour_name_of_oklab(srgb_to_oklab(np.asarray(rgb, dtype=np.float64)))


def hex_of_srgb(rgb):
    """`#rrggbb` of an sRGB colour (floats 0..255 are rounded)."""
    r, g, b = (int(v) for v in np.clip(np.round(np.asarray(rgb, dtype=np.float64)), 0, 255))
    return f"#{r:02x}{g:02x}{b:02x}"
