"""Colour spaces: sRGB 0..255, linear light, OKLab and OKLCH — the one home of these formulas.

NumPy, vectorised over any leading shape. The Keras-op twins that run inside
the model graph (`neipalette_tf.models.colour_pooling`) use the same
matrices from here.

Example:

>>> import numpy as np
>>> np.round(srgb_to_oklab(np.array([255, 0, 0])), 3).tolist()  # sRGB red
[0.628, 0.225, 0.126]
>>> np.round(oklch_to_srgb(srgb_to_oklch(np.array([30.0, 40.0, 70.0]))), 3).tolist()  # round trip
[30.0, 40.0, 70.0]
"""

import numpy as np

# The model's colour space: OKLab scaled per channel, (L, 4a, 4b), so the three spread alike
# (`neipalette_tf.models.colour_pooling`; the last three values of a garment embedding).
OKLAB_SCALE = (1.0, 4.0, 4.0)

# The sRGB transfer function's knee, of 0..1 values (10.3 of 0..255 pixels); its linear-light twin.
SRGB_KNEE = 0.04045
LINEAR_KNEE = 0.0031308


def srgb_to_linear(c):
    """sRGB values 0..1 -> linear light 0..1 (the sRGB transfer function, inverted)."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= SRGB_KNEE, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear):
    """Linear light 0..1 -> sRGB values 0..1."""
    linear = np.asarray(linear, dtype=np.float64)
    return np.where(linear <= LINEAR_KNEE, 12.92 * linear, 1.055 * np.maximum(linear, 0.0) ** (1 / 2.4) - 0.055)


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

# Their inverses, computed once (OKLab -> sRGB runs for every candidate colour and every preview).
_OKLAB_TO_LMS = np.linalg.inv(_LMS_TO_OKLAB)
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)


def srgb_to_oklab(rgb):
    """sRGB 0..255 (any shape `[..., 3]`) -> OKLab `[..., 3]` (L, a, b)."""
    linear = srgb_to_linear(np.asarray(rgb, dtype=np.float64) / 255.0)
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
    return oklab_to_srgb(oklch_to_oklab(lch))


def oklab_to_srgb(lab):
    """OKLab `[..., 3]` -> sRGB floats 0..255, clipped to the gamut."""
    lms = np.asarray(lab, dtype=np.float64) @ _OKLAB_TO_LMS.T
    linear = (lms**3) @ _LMS_TO_RGB.T
    return np.clip(linear_to_srgb(np.clip(linear, 0.0, 1.0)) * 255.0, 0.0, 255.0)


def in_srgb_gamut(lch, tolerance=1e-6):
    """True where an OKLCH colour maps into sRGB without clipping."""
    lms = oklch_to_oklab(lch) @ _OKLAB_TO_LMS.T
    linear = (lms**3) @ _LMS_TO_RGB.T
    return np.all((linear >= -tolerance) & (linear <= 1 + tolerance), axis=-1)
