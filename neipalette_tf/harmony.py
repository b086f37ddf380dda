"""The NeiPalette harmony rule, v1 (see `docs/harmony_rule.md`).

Colours are compared in OKLCH. A top and a bottom are harmonious when either
main colour is neutral, or their hue distance is analogous (<= 30 degrees) or
complementary (>= 150 degrees). Everything here is vectorised NumPy and
imports neither TensorFlow nor Keras, so runtimes and data tools can use it.

Example:

>>> import numpy as np
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

# The model's colour space: OKLab scaled per channel, (L, 4a, 4b), so the three spread alike
# (`neipalette_tf.models.colour_pooling`; the last three values of a garment embedding).
OKLAB_SCALE = (1.0, 4.0, 4.0)

ANALOGOUS_MAX_DEG = 30.0
COMPLEMENTARY_MIN_DEG = 150.0

# (hue_low, hue_high, chroma_below): a colour inside one of these is neutral.
# The achromatic zone covers every hue.
NEUTRAL_ZONES = {
    "achromatic": (0.0, 360.0, 0.05),
    "navy_denim": (220.0, 275.0, 0.12),
    "earth": (40.0, 95.0, 0.09),
}

_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_OKLAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


def srgb_to_oklab(rgb):
    """sRGB 0..255 (any shape `[..., 3]`) -> OKLab `[..., 3]` (L, a, b)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lms = np.cbrt(linear @ _RGB_TO_LMS.T)
    return lms @ _LMS_TO_OKLAB.T


def oklab_to_oklch(lab):
    """OKLab `[..., 3]` -> OKLCH `[..., 3]` with hue in degrees, [0, 360)."""
    lab = np.asarray(lab, dtype=np.float64)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    h = np.degrees(np.arctan2(b, a)) % 360.0
    return np.stack([L, np.hypot(a, b), h], axis=-1)


def oklch_to_oklab(lch):
    """OKLCH `[..., 3]` (hue in degrees) -> OKLab `[..., 3]`."""
    lch = np.asarray(lch, dtype=np.float64)
    h = np.radians(lch[..., 2])
    return np.stack([lch[..., 0], lch[..., 1] * np.cos(h), lch[..., 1] * np.sin(h)], axis=-1)


def srgb_to_oklch(rgb):
    """sRGB 0..255 (any shape `[..., 3]`) -> OKLCH `[..., 3]` (L, C, h deg)."""
    return oklab_to_oklch(srgb_to_oklab(rgb))


def oklch_to_srgb(lch):
    """OKLCH `[..., 3]` -> sRGB floats 0..255, clipped to the gamut.

    Used by the synthetic renderer to paint a chosen main colour.
    """
    lms = oklch_to_oklab(lch) @ np.linalg.inv(_LMS_TO_OKLAB).T
    linear = (lms**3) @ np.linalg.inv(_RGB_TO_LMS).T
    linear = np.clip(linear, 0.0, 1.0)
    srgb = np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055
    )
    return np.clip(srgb * 255.0, 0.0, 255.0)


def in_srgb_gamut(lch, tolerance=1e-6):
    """True where an OKLCH colour maps into sRGB without clipping."""
    lms = oklch_to_oklab(lch) @ np.linalg.inv(_LMS_TO_OKLAB).T
    linear = (lms**3) @ np.linalg.inv(_RGB_TO_LMS).T
    return np.all((linear >= -tolerance) & (linear <= 1 + tolerance), axis=-1)


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
