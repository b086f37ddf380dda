"""The NeiPalette harmony rule, v1 (see `docs/harmony_rule.md`).

Colours are compared in OKLCH (`neipalette_tf.colour.space`). A top and a bottom are harmonious when either
main colour is neutral, or their hue distance is analogous (<= 30 degrees) or
complementary (>= 150 degrees). Everything here is vectorised NumPy and
imports neither TensorFlow nor Keras, so runtimes and data tools can use it.

Example:

>>> import numpy as np
>>> from neipalette_tf.colour.space import srgb_to_oklch
>>> lch = srgb_to_oklch(np.array([[255, 0, 0], [30, 40, 70]], dtype=np.uint8))
>>> np.round(lch[0], 3).tolist()
[0.628, 0.258, 29.234]
>>> bool(is_neutral(*lch[1]))  # navy
True
>>> bool(harmonious(lch[0], lch[1]))  # anything goes with navy
True
"""

import numpy as np

RULE_VERSION = "v1"

ANALOGOUS_MAX_DEG = 30.0
COMPLEMENTARY_MIN_DEG = 150.0

# (hue_low, hue_high, chroma_below): a colour inside one of these is neutral.
# The achromatic zone covers every hue.
NEUTRAL_ZONES = {
    "achromatic": (0.0, 360.0, 0.05),
    "navy_denim": (220.0, 275.0, 0.12),
    "earth": (40.0, 95.0, 0.09),
}

def is_neutral(L, C, h):
    """True where a colour `(L, C, h)` lies in one of the neutral zones.

    `L` is unused by rule v1 but kept so callers pass a whole colour.
    """
    del L
    C = np.asarray(C, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64) % 360.0
    neutral = np.zeros(np.broadcast(C, h).shape, dtype=bool)
    for low, high, chroma_below in NEUTRAL_ZONES.values():
        neutral |= (h >= low) & (h <= high) & (C < chroma_below)
    return neutral


def hue_distance(h1, h2):
    """Circular hue distance in degrees, 0..180."""
    d = np.abs(np.asarray(h1, dtype=np.float64) - np.asarray(h2, dtype=np.float64))
    d = d % 360.0
    return np.minimum(d, 360.0 - d)


def harmonious(top_lch, bottom_lch):
    """Rule v1 on main colours `[..., 3]` (L, C, h). Returns a bool array."""
    top = np.asarray(top_lch, dtype=np.float64)
    bottom = np.asarray(bottom_lch, dtype=np.float64)
    d = hue_distance(top[..., 2], bottom[..., 2])
    return (
        is_neutral(*np.moveaxis(top, -1, 0))
        | is_neutral(*np.moveaxis(bottom, -1, 0))
        | (d <= ANALOGOUS_MAX_DEG)
        | (d >= COMPLEMENTARY_MIN_DEG)
    )
