"""Recolouring a garment on the photo: its colour region (pixels near the read colour inside the
attention's support) moved to a target colour in OKLCH hue / chroma, lightness step and texture kept.

`explain` checks every suggestion on a photo recoloured this way; `palette_fixes` recolours
one palette entry's pixels with the same `recolour`.
"""

import math

import numpy as np

from neipalette_tf.colour.space import oklab_to_srgb, srgb_to_oklab

# Recolouring: pixels belong to the garment's colour region when their OKLab distance to the read
# colour (lightness counted at LIGHTNESS_WEIGHT: shading changes L, not the fabric) is below
# REGION_NEAR (fully) .. REGION_FAR (not at all), inside the blurred attention's support.
REGION_NEAR, REGION_FAR, LIGHTNESS_WEIGHT = 0.07, 0.14, 0.4
SUPPORT_FRACTION = 0.08  # of the blurred attention map's peak
GREY_CHROMA = 0.03  # below: a hue shift is meaningless, the colour is moved (a, b translated)


def _blur(x, sigma):
    """A separable Gaussian blur of a 2-D map (edges extended)."""
    radius = max(1, int(round(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        padded = np.pad(x, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        x = np.lib.stride_tricks.sliding_window_view(padded, len(kernel), axis=axis) @ kernel  # symmetric kernel
    return x


def upsample(attention, size):
    """An attention map `[h, w]` at the image's size `[size, size]` (nearest), normalised to sum 1."""
    h, w = attention.shape
    rows = np.minimum(np.arange(size) * h // size, h - 1)
    cols = np.minimum(np.arange(size) * w // size, w - 1)
    up = attention[rows][:, cols]
    return up / max(up.sum(), 1e-12)


def colour_region(image, attention, lab):
    """Soft mask `[S, S]` in 0..1 of the pixels of the garment's read colour `lab`.

    Pixels near the read colour (lightness down-weighted: shading is not a
    colour change) inside the support of the attention map, blurred over an
    eighth of the image (attention picks a few telling pixels of the
    garment, not its outline). Without a map: near pixels anywhere.
    """
    size = image.shape[0]
    pixels = srgb_to_oklab(image)
    delta = (pixels - np.asarray(lab)) * np.array([LIGHTNESS_WEIGHT, 1.0, 1.0])
    near = np.clip((REGION_FAR - np.linalg.norm(delta, axis=-1)) / (REGION_FAR - REGION_NEAR), 0.0, 1.0)
    if attention is None:
        return near
    support = _blur(upsample(attention, size), size / 8.0)
    support = np.clip(support / max(support.max(), 1e-12) / SUPPORT_FRACTION, 0.0, 1.0)
    region = near * support
    return region if region.sum() >= 0.02 * size * size * near.mean() else near


def shift_ab(ab, current_lab, target_lab):
    """`recolour`'s map of (a, b) values `[..., 2]` that takes `current_lab` to `target_lab`.

    A chromatic colour is rotated in hue and scaled in chroma (so a
    texture's variations keep their relative size); a near-grey one
    (chroma < `GREY_CHROMA`, no hue to rotate) is moved by the difference in
    (a, b).
    """
    current, target = np.asarray(current_lab, np.float64), np.asarray(target_lab, np.float64)
    ab = np.asarray(ab, np.float64)
    c_now, c_new = np.hypot(*current[1:]), np.hypot(*target[1:])
    if c_now < GREY_CHROMA:
        return ab + (target[1:] - current[1:])
    turn = math.atan2(target[2], target[1]) - math.atan2(current[2], current[1])
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    return (ab @ rotation.T) * (c_new / c_now)


def recolour(image, region, current_lab, target_lab):
    """The photo with its colour region moved from `current_lab` to `target_lab` in OKLCH hue / chroma.

    Every pixel's (a, b) goes through `shift_ab`, blended in by `region`
    (0..1); lightness moves by the same step for every pixel (none when the
    target keeps the garment's lightness), so shading and texture stay.
    """
    lab = srgb_to_oklab(image)
    ab = lab[..., 1:]
    new = lab.copy()
    new[..., 1:] = ab + region[..., None] * (shift_ab(ab, current_lab, target_lab) - ab)
    new[..., 0] = lab[..., 0] + region * (float(target_lab[0]) - float(current_lab[0]))
    return np.round(oklab_to_srgb(new)).astype(np.uint8)
