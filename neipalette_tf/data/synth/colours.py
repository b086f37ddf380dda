"""Colour helpers and main-colour sampling clear of the harmony rule's boundaries.

OKLCH <-> sRGB conversions, the gamut test and the sRGB curve come from
`neipalette_tf.colour.space`, the rule from `neipalette_tf.colour.harmony`; this module only adds what the renderer needs on top
of them: 8-bit paint colours, random colours for scenes and prints, and the
main colours of a pair sampled so that their rule label is the planned one.
"""

import numpy as np

from neipalette_tf.colour.harmony import (
    ANALOGOUS_MAX_DEG,
    COMPLEMENTARY_MIN_DEG,
    NEUTRAL_ZONES,
    harmonious,
    hue_distance,
    is_neutral,
)
from neipalette_tf.colour.space import (
    LINEAR_KNEE,
    in_srgb_gamut,
    oklch_to_srgb,
    srgb_to_linear,
    srgb_to_oklch,
)

L_RANGE = (0.25, 0.92)  # lightness of main colours

HARMONY_REASONS = ("top_neutral", "bottom_neutral", "both_neutral", "analogous", "complementary")
HARMONY_REASON_P = (0.22, 0.22, 0.12, 0.22, 0.22)

# --------------------------------------------------------------------------
# Colour helpers
# --------------------------------------------------------------------------

# The sRGB transfer curve (`neipalette_tf.colour.space`): decoded through a 256-entry table,
# encoded in float32 for whole images (space's float64 form would double the renderer's memory).
_LUT_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
LUM = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_C_GRID = np.linspace(0.0, 0.40, 321)


def to_linear(u8):
    """sRGB uint8 array -> linear float32 (lookup table)."""
    return _LUT_LINEAR[u8]


def to_srgb(lin):
    """Linear float array in [0, 1] -> sRGB 0..255 floats."""
    lin = np.clip(lin, 0.0, 1.0)
    s = np.where(lin <= LINEAR_KNEE, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return s * 255.0


def _max_chroma(L, h):
    """The largest chroma (on a 0.00125 grid) that is inside sRGB at (L, h)."""
    lch = np.stack([np.full_like(_C_GRID, L), _C_GRID, np.full_like(_C_GRID, h)], axis=-1)
    ok = in_srgb_gamut(lch)
    if ok.all():
        return float(_C_GRID[-1])
    first_out = int(np.argmin(ok))
    return float(_C_GRID[max(first_out - 1, 0)])


def quantise(lch):
    """OKLCH -> the 8-bit sRGB paint colour and the OKLCH of that paint."""
    rgb = tuple(int(v) for v in np.round(oklch_to_srgb(np.asarray(lch, dtype=np.float64))))
    return rgb, tuple(float(v) for v in srgb_to_oklch(np.array(rgb, dtype=np.float64)))


def lch_rgb(L, C, h):
    """OKLCH -> an 8-bit sRGB tuple (clipped into gamut)."""
    return tuple(int(v) for v in np.round(oklch_to_srgb(np.array([L, C, h], dtype=np.float64))))


def random_rgb(rng, L=(0.25, 0.95), sat=(0.0, 1.0), h=None):
    """Any colour: lightness in L, chroma a fraction `sat` of the gamut limit."""
    L_ = rng.uniform(*L)
    h_ = rng.uniform(0, 360) if h is None else h % 360
    C_ = rng.uniform(*sat) * _max_chroma(L_, h_)
    return lch_rgb(L_, C_, h_)


def print_colour(rng):
    """A colour for prints and trims: white, black or anything."""
    u = rng.random()
    if u < 0.28:
        return lch_rgb(rng.uniform(0.9, 0.99), rng.uniform(0, 0.02), rng.uniform(0, 360))
    if u < 0.42:
        return lch_rgb(rng.uniform(0.12, 0.3), rng.uniform(0, 0.03), rng.uniform(0, 360))
    return random_rgb(rng, L=(0.3, 0.95), sat=(0.2, 1.0))


# --------------------------------------------------------------------------
# Main colours: sampling clear of the rule's boundaries
# --------------------------------------------------------------------------


def near_neutral_boundary(lch, hue_margin, chroma_margin):
    """True when moving a colour by up to the margins could change is_neutral.

    The neutral zones are rectangles in (h, C); the colour is ambiguous when
    the box [h +- hue_margin] x [C +- chroma_margin] around it is not all on
    one side. Checking the 3 x 3 grid of the box's corners, edge middles and
    centre is exact because every zone is larger than the box.
    """
    L, C, h = (float(v) for v in lch)
    hs = h + np.array([-hue_margin, 0.0, hue_margin])
    cs = np.clip(C + np.array([-chroma_margin, 0.0, chroma_margin]), 0.0, None)
    hh, cc = np.meshgrid(hs % 360.0, cs)
    neutral = is_neutral(L, cc, hh)
    return bool(neutral.any() and not neutral.all())


def near_hue_boundary(h1, h2, hue_margin):
    """True when the hue distance is within the margin of 30 or 150 degrees."""
    d = float(hue_distance(h1, h2))
    return (
        abs(d - ANALOGOUS_MAX_DEG) < hue_margin
        or abs(d - COMPLEMENTARY_MIN_DEG) < hue_margin
    )


def _chromatic_floor(h, hue_margin, chroma_margin):
    """The smallest chroma that is clearly chromatic at hue h."""
    floor = 0.0
    for low, high, below in NEUTRAL_ZONES.values():
        inside = float(hue_distance(h, (low + high) / 2)) <= (high - low) / 2 + hue_margin
        if high - low >= 360 or inside:
            floor = max(floor, below + chroma_margin)
    return floor


def _sample_chromatic(rng, hue, margins, tries=60):
    """A clearly chromatic colour; `hue` fixed or None (uniform)."""
    hue_margin, chroma_margin = margins
    for _ in range(tries):
        h = rng.uniform(0.0, 360.0) if hue is None else hue % 360.0
        L = rng.uniform(*L_RANGE)
        cmax = _max_chroma(L, h) * 0.99
        cmin = _chromatic_floor(h, hue_margin, chroma_margin) + 0.002
        if cmax < cmin + 0.004:
            continue
        C = cmin + (cmax - cmin) * rng.random() ** 0.75  # a little more saturated than uniform
        _, q = quantise((L, C, h))
        if is_neutral(*q) or near_neutral_boundary(q, hue_margin, chroma_margin):
            continue
        return q
    return None


def _sample_neutral(rng, margins, tries=60):
    """A clearly neutral colour from one of the three zones."""
    hue_margin, chroma_margin = margins
    zone = rng.choice(["achromatic", "navy_denim", "earth"], p=[0.45, 0.25, 0.30])
    low, high, below = NEUTRAL_ZONES[zone]
    for _ in range(tries):
        L = rng.uniform(*L_RANGE)
        if zone == "achromatic":
            h = rng.uniform(0.0, 360.0)
            C = (below - chroma_margin - 0.002) * rng.random() ** 1.3
        else:
            h = rng.uniform(low + hue_margin + 0.5, high - hue_margin - 0.5)
            achromatic = NEUTRAL_ZONES["achromatic"][2]
            if rng.random() < 0.7:  # the chroma only these hues keep neutral
                C = rng.uniform(achromatic + chroma_margin, below - chroma_margin - 0.002)
            else:
                C = rng.uniform(0.015, achromatic + chroma_margin)
        if C > _max_chroma(L, h) * 0.99:
            continue
        _, q = quantise((L, C, h))
        if not is_neutral(*q) or near_neutral_boundary(q, hue_margin, chroma_margin):
            continue
        return q
    return None


def sample_pair_colours(rng, harmonious_target, hue_margin=5.0, chroma_margin=0.012):
    """Main colours (top, bottom) in OKLCH whose rule label is the target.

    The proposal depends on a reason (neutral top / bottom / both,
    analogous, complementary; clashing: two chromatic colours 30..150
    degrees apart); every proposal is checked with `harmonious`
    and rejected when it has the wrong label or lies within the margins of
    a boundary. Returns (top, bottom, reason).
    """
    margins = (hue_margin, chroma_margin)
    for _ in range(2000):
        top = bottom = None
        if harmonious_target:
            reason = str(rng.choice(HARMONY_REASONS, p=HARMONY_REASON_P))
            if reason == "top_neutral":
                top, bottom = _sample_neutral(rng, margins), _sample_chromatic(rng, None, margins)
            elif reason == "bottom_neutral":
                top, bottom = _sample_chromatic(rng, None, margins), _sample_neutral(rng, margins)
            elif reason == "both_neutral":
                top, bottom = _sample_neutral(rng, margins), _sample_neutral(rng, margins)
            else:
                top = _sample_chromatic(rng, None, margins)
                if top is not None:
                    offset = rng.uniform(-1, 1) * (ANALOGOUS_MAX_DEG - hue_margin)
                    if reason == "complementary":
                        offset += 180.0
                    bottom = _sample_chromatic(rng, top[2] + offset, margins)
        else:
            reason = "clash"
            top = _sample_chromatic(rng, None, margins)
            if top is not None:
                lo = ANALOGOUS_MAX_DEG + hue_margin
                hi = COMPLEMENTARY_MIN_DEG - hue_margin
                offset = rng.uniform(lo, hi) * rng.choice([-1.0, 1.0])
                bottom = _sample_chromatic(rng, top[2] + offset, margins)
        if top is None or bottom is None:
            continue
        if bool(harmonious(top, bottom)) != bool(harmonious_target):
            continue
        both_chromatic = not is_neutral(*top) and not is_neutral(*bottom)
        if both_chromatic and near_hue_boundary(top[2], bottom[2], hue_margin):
            continue
        if reason.endswith("neutral"):
            top_n, bottom_n = bool(is_neutral(*top)), bool(is_neutral(*bottom))
            reason = {(True, True): "both_neutral", (True, False): "top_neutral",
                      (False, True): "bottom_neutral"}.get((top_n, bottom_n), reason)
        return top, bottom, reason
    raise RuntimeError("could not sample a pair of main colours (margins too large?)")


# --------------------------------------------------------------------------
# Main colours labelled by the people model
# --------------------------------------------------------------------------

PEOPLE_NEUTRAL_P = 0.4      # share of garments in a neutral colour (the rule's zones)
PEOPLE_RELATED_HUE_P = 0.3  # share of chromatic pairs whose bottom hue is near or opposite the top's
PEOPLE_MARGIN = 0.05        # |rating - threshold| of every sampled pair, on the 1..5 scale


def _garment_colour(rng, margins, hue=None):
    if hue is None and rng.random() < PEOPLE_NEUTRAL_P:
        return _sample_neutral(rng, margins)
    return _sample_chromatic(rng, hue, margins)


def sample_people_pair_colours(rng, harmonious_target, model=None, threshold=None, margin=PEOPLE_MARGIN,
                               hue_margin=5.0, chroma_margin=0.012):
    """Main colours (top, bottom) in OKLCH whose people-model label is the target.

    Each garment colour is neutral (40 %) or chromatic, as for rule v1; 30 % of chromatic bottoms
    take a hue near the top's or opposite it, so the hue relations people react to are all
    drawn. A proposal is kept when people's predicted rating `f(top, bottom)` is on the target's
    side of `threshold` by at least `margin` (labels clear of the boundary, as the rule's
    margins do). Returns (top, bottom, reason, rating).
    """
    from neipalette_tf.colour import people
    from neipalette_tf.colour.space import oklch_to_oklab

    model = model or people.default()
    threshold = people.RATING_THRESHOLD if threshold is None else threshold
    margins = (hue_margin, chroma_margin)
    for _ in range(2000):
        top = _garment_colour(rng, margins)
        if top is None:
            continue
        hue = None
        if not is_neutral(*top) and rng.random() < PEOPLE_RELATED_HUE_P:
            hue = top[2] + rng.uniform(-25.0, 25.0) + (180.0 if rng.random() < 0.5 else 0.0)
        bottom = _garment_colour(rng, margins, hue)
        if bottom is None:
            continue
        rating = float(model.rate(oklch_to_oklab(np.array(top)), oklch_to_oklab(np.array(bottom))))
        if (rating >= threshold + margin) if harmonious_target else (rating <= threshold - margin):
            return top, bottom, "people_like" if harmonious_target else "people_dislike", rating
    raise RuntimeError("could not sample a pair of main colours for the people label (margin too large?)")
