"""A rough estimate of a garment photo's main colour, for display only.

Used by the sample grid (`neipalette_tf.evaluation.plots.plot_samples`) to paint a
swatch when a record carries no OKLCH main-colour columns. It is a simple
heuristic, not a measurement, and plays no part in labels or training:

1. The background colour is the median of the image's border pixels.
2. Pixels within `BACKGROUND_DELTA` of it (Euclidean distance in OKLab)
   are dropped as background; what remains is the garment.
3. Garment pixels in the central box (the middle half of each side) are
   preferred, since the garment is usually centred; when too few lie there,
   all garment pixels are used, and when nothing stands out from the
   background, the central box as a whole.
4. The main colour is the per-channel median of the chosen pixels.

Example:

>>> import numpy as np
>>> img = np.full((40, 40, 3), 245, dtype=np.uint8)  # light studio background
>>> img[8:32, 10:30] = (160, 30, 40)                 # a burgundy garment
>>> estimate_main_colour(img).tolist()
[160, 30, 40]
"""

import numpy as np

from neipalette_tf.colour.space import srgb_to_oklab
from neipalette_tf.core.vocabulary import BACKGROUND_DELTA

MIN_PIXELS = 16


def estimate_main_colour(rgb_uint8):
    """Estimate the main colour of a garment image.

    Args:
        rgb_uint8: an RGB image, uint8 `[H, W, 3]`.

    Returns:
        The estimated main colour as a uint8 array `[3]` (sRGB).
    """
    img = np.asarray(rgb_uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {img.shape}")
    h, w = img.shape[:2]
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]], axis=0)
    background = np.median(border, axis=0)
    distance = np.linalg.norm(srgb_to_oklab(img) - srgb_to_oklab(background), axis=-1)
    foreground = distance > BACKGROUND_DELTA
    centre = np.zeros((h, w), dtype=bool)
    centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    for mask in (foreground & centre, foreground, centre):
        if mask.sum() >= min(MIN_PIXELS, centre.sum()):
            break
    return np.round(np.median(img[mask], axis=0)).astype(np.uint8)
