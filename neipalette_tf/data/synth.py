"""The procedural synthetic data set of NeiPalette (the embedded default).

Every pair is a top photo and a bottom photo, each showing ONE garment lying
flat or hanging on a background (carpet, floor boards, tiles, bed sheets,
rugs, plain walls or blankets). The garment's main colour is sampled in
OKLCH so that the pair's label under the harmony rule
(`neipalette_tf.harmony`) is the label planned for it, clear of every rule
boundary by a margin. See `docs/synthetic_data.md` for the full description.

Command line:

    python -m neipalette_tf.data.synth --out data/synth --pairs 6000 \\
        --seed 0 --image-size 96 [--label-noise 0.05] [--workers 2]

Output in the folder: `images/000123_top.jpg`, `images/000123_bottom.jpg`,
`pairs.csv` (paths, label, split, categories, main colours in OKLCH,
`label_noise_flipped`) and `dataset.json` (generator, version, parameters,
counts). The same arguments give byte-identical files whatever the number
of workers; a rerun with the same arguments reuses the existing data.

Pure NumPy + Pillow (no TensorFlow).
"""

import argparse
import csv
import functools
import io
import json
import math
import os
import shutil
import sys
import time
import multiprocessing
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from neipalette_tf import harmony

GENERATOR_NAME = "neipalette_tf.data.synth"
GENERATOR_VERSION = "1.1.0"

CSV_COLUMNS = (
    "top", "bottom", "label", "split",
    "top_category", "top_L", "top_C", "top_h",
    "bottom_category", "bottom_L", "bottom_C", "bottom_h",
    "label_noise_flipped",
)
SPLITS = ("train", "val", "test")
LABELS = ("clashing", "harmonious")  # index = class id

TOP_CATEGORIES = ("tshirt", "shirt", "longsleeve", "hoodie", "jacket")
TOP_CATEGORY_P = (0.30, 0.17, 0.23, 0.18, 0.12)
BOTTOM_CATEGORIES = ("trousers", "jeans", "shorts", "skirt")

# Canvas aspects, (width, height) ratio, and how often each is drawn.
ASPECTS = {"3:4": (3, 4), "1:1": (1, 1), "9:16": (9, 16), "4:3": (4, 3)}
ASPECT_P = (0.62, 0.14, 0.12, 0.12)

L_RANGE = (0.25, 0.92)  # lightness of main colours
MAX_PRINT_FRACTION = 0.30  # prints / trims cover at most this share of a garment
PRINT_P = 0.5  # share of garments with prints, stripes, logos or trims
JPEG_QUALITY = (70, 95)
JPEG_SUBSAMPLING = 2  # 4:2:0, like phone cameras
GLOBAL_LIGHT_RANGE = (0.85, 1.15)  # lighting factor allowed on the garment (linear light)
WHITE_BALANCE_SHIFT = 0.006  # per-channel gain, +-, in linear light

HARMONY_REASONS = ("top_neutral", "bottom_neutral", "both_neutral", "analogous", "complementary")
HARMONY_REASON_P = (0.22, 0.22, 0.12, 0.22, 0.22)

# --------------------------------------------------------------------------
# Colour helpers
# --------------------------------------------------------------------------

_U8 = np.arange(256, dtype=np.float64) / 255.0
_LUT_LINEAR = np.where(_U8 <= 0.04045, _U8 / 12.92, ((_U8 + 0.055) / 1.055) ** 2.4).astype(np.float32)
_LUM = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_C_GRID = np.linspace(0.0, 0.40, 321)


def _to_linear(u8):
    """sRGB uint8 array -> linear float32 (lookup table)."""
    return _LUT_LINEAR[u8]


def _to_srgb(lin):
    """Linear float array in [0, 1] -> sRGB 0..255 floats."""
    lin = np.clip(lin, 0.0, 1.0)
    s = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return s * 255.0


def _max_chroma(L, h):
    """The largest chroma (on a 0.00125 grid) that is inside sRGB at (L, h)."""
    lch = np.stack([np.full_like(_C_GRID, L), _C_GRID, np.full_like(_C_GRID, h)], axis=-1)
    ok = harmony.in_srgb_gamut(lch)
    if ok.all():
        return float(_C_GRID[-1])
    first_out = int(np.argmin(ok))
    return float(_C_GRID[max(first_out - 1, 0)])


def _quantise(lch):
    """OKLCH -> the 8-bit sRGB paint colour and the OKLCH of that paint."""
    rgb = tuple(int(v) for v in np.round(harmony.oklch_to_srgb(np.asarray(lch, dtype=np.float64))))
    return rgb, tuple(float(v) for v in harmony.srgb_to_oklch(np.array(rgb, dtype=np.float64)))


def _lch_rgb(L, C, h):
    """OKLCH -> an 8-bit sRGB tuple (clipped into gamut)."""
    return tuple(int(v) for v in np.round(harmony.oklch_to_srgb(np.array([L, C, h], dtype=np.float64))))


def _random_rgb(rng, L=(0.25, 0.95), sat=(0.0, 1.0), h=None):
    """Any colour: lightness in L, chroma a fraction `sat` of the gamut limit."""
    L_ = rng.uniform(*L)
    h_ = rng.uniform(0, 360) if h is None else h % 360
    C_ = rng.uniform(*sat) * _max_chroma(L_, h_)
    return _lch_rgb(L_, C_, h_)


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
    neutral = harmony.is_neutral(L, cc, hh)
    return bool(neutral.any() and not neutral.all())


def near_hue_boundary(h1, h2, hue_margin):
    """True when the hue distance is within the margin of 30 or 150 degrees."""
    d = float(harmony.hue_distance(h1, h2))
    return (
        abs(d - harmony.ANALOGOUS_MAX_DEG) < hue_margin
        or abs(d - harmony.COMPLEMENTARY_MIN_DEG) < hue_margin
    )


def _chromatic_floor(h, hue_margin, chroma_margin):
    """The smallest chroma that is clearly chromatic at hue h."""
    floor = 0.0
    for low, high, below in harmony.NEUTRAL_ZONES.values():
        inside = float(harmony.hue_distance(h, (low + high) / 2)) <= (high - low) / 2 + hue_margin
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
        _, q = _quantise((L, C, h))
        if harmony.is_neutral(*q) or near_neutral_boundary(q, hue_margin, chroma_margin):
            continue
        return q
    return None


def _sample_neutral(rng, margins, tries=60):
    """A clearly neutral colour from one of the three zones."""
    hue_margin, chroma_margin = margins
    zone = rng.choice(["achromatic", "navy_denim", "earth"], p=[0.45, 0.25, 0.30])
    low, high, below = harmony.NEUTRAL_ZONES[zone]
    for _ in range(tries):
        L = rng.uniform(*L_RANGE)
        if zone == "achromatic":
            h = rng.uniform(0.0, 360.0)
            C = (below - chroma_margin - 0.002) * rng.random() ** 1.3
        else:
            h = rng.uniform(low + hue_margin + 0.5, high - hue_margin - 0.5)
            achromatic = harmony.NEUTRAL_ZONES["achromatic"][2]
            if rng.random() < 0.7:  # the chroma only these hues keep neutral
                C = rng.uniform(achromatic + chroma_margin, below - chroma_margin - 0.002)
            else:
                C = rng.uniform(0.015, achromatic + chroma_margin)
        if C > _max_chroma(L, h) * 0.99:
            continue
        _, q = _quantise((L, C, h))
        if not harmony.is_neutral(*q) or near_neutral_boundary(q, hue_margin, chroma_margin):
            continue
        return q
    return None


def sample_pair_colours(rng, harmonious_target, hue_margin=5.0, chroma_margin=0.012):
    """Main colours (top, bottom) in OKLCH whose rule label is the target.

    The proposal depends on a reason (neutral top / bottom / both,
    analogous, complementary; clashing: two chromatic colours 30..150
    degrees apart); every proposal is checked with `harmony.harmonious`
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
                    offset = rng.uniform(-1, 1) * (harmony.ANALOGOUS_MAX_DEG - hue_margin)
                    if reason == "complementary":
                        offset += 180.0
                    bottom = _sample_chromatic(rng, top[2] + offset, margins)
        else:
            reason = "clash"
            top = _sample_chromatic(rng, None, margins)
            if top is not None:
                lo = harmony.ANALOGOUS_MAX_DEG + hue_margin
                hi = harmony.COMPLEMENTARY_MIN_DEG - hue_margin
                offset = rng.uniform(lo, hi) * rng.choice([-1.0, 1.0])
                bottom = _sample_chromatic(rng, top[2] + offset, margins)
        if top is None or bottom is None:
            continue
        if bool(harmony.harmonious(top, bottom)) != bool(harmonious_target):
            continue
        both_chromatic = not harmony.is_neutral(*top) and not harmony.is_neutral(*bottom)
        if both_chromatic and near_hue_boundary(top[2], bottom[2], hue_margin):
            continue
        if reason.endswith("neutral"):
            top_n, bottom_n = bool(harmony.is_neutral(*top)), bool(harmony.is_neutral(*bottom))
            reason = {(True, True): "both_neutral", (True, False): "top_neutral",
                      (False, True): "bottom_neutral"}.get((top_n, bottom_n), reason)
        return top, bottom, reason
    raise RuntimeError("could not sample a pair of main colours (margins too large?)")


# --------------------------------------------------------------------------
# Garment shapes, in garment units (y down, about 1 unit tall, x centred)
# --------------------------------------------------------------------------


def _arc(cx, cy, rx, ry, a0, a1, n=10):
    """Points on an ellipse from angle a0 to a1 (degrees; 90 = down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _bezier(p0, p1, p2, n=8):
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _poly(*pieces):
    return np.concatenate([np.atleast_2d(np.asarray(p, dtype=np.float64)) for p in pieces], axis=0)


def _mirror(pts):
    pts = np.array(pts, dtype=np.float64)
    pts[:, 0] *= -1
    return pts


class _Shape:
    """A garment drawn as polygons plus the places where details go."""

    def __init__(self, kind):
        self.kind = kind
        self.parts = []      # polygons: their union is the garment
        self.shade = []      # (polygon, factor): areas seen darker (inside of the neck, hood)
        self.seams = []      # (polyline, width, factor): seams, hems, pocket outlines, creases
        self.trims = []      # polygons that may take a trim colour (collar, cuffs, bands)
        self.stitches = []   # polylines of top-stitching (jeans)
        self.lines = []      # (polyline, width) structural lines in another colour (zip, strings)
        self.dots = []       # (x, y, r) buttons, rivets
        self.panels = []     # polygons for colour blocks
        self.side = []       # polygons for side stripes
        self.chest = (0.0, 0.35, 0.3, 0.2)  # logo area (cx, cy, w, h)
        self.hanger = None   # ("hook", x, y) or ("clip", x, y, half_width)


def _creases(rng, s, box, n):
    """Folds: a dark line with a lighter ridge beside it."""
    x0, y0, x1, y1 = box
    for _ in range(n):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        ang = rng.uniform(0, math.pi)
        ln = rng.uniform(0.08, 0.3)
        d = np.array([math.cos(ang), math.sin(ang)])
        nrm = np.array([-d[1], d[0]])
        mid = np.array([cx, cy]) + nrm * rng.uniform(-0.04, 0.04)
        line = _bezier(np.array([cx, cy]) - ln * d, mid, np.array([cx, cy]) + ln * d)
        width = rng.uniform(0.008, 0.02)
        s.seams.append((line, width, rng.uniform(0.72, 0.88)))
        s.seams.append((line + nrm * width * 1.2, width, rng.uniform(1.05, 1.15)))


def _wobble(rng, poly, amp):
    """Resample a polygon's outline and displace it a little (cloth is not straight)."""
    poly = np.asarray(poly, dtype=np.float64)
    closed = np.vstack([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    out = []
    for i in range(len(poly)):
        k = max(1, int(seg[i] / 0.04))
        t = np.arange(k)[:, None] / k
        out.append(closed[i] + t * (closed[i + 1] - closed[i]))
    pts = np.concatenate(out)
    n = len(pts)
    phase = rng.uniform(0, 2 * math.pi, size=3)
    idx = np.arange(n) / n * 2 * math.pi
    noise = sum(np.sin(f * idx + p) / f for f, p in zip((3.0, 7.0, 13.0), phase))
    noise += rng.normal(0, 0.3, size=n)
    centre = pts.mean(axis=0)
    radial = pts - centre
    radial /= np.maximum(np.hypot(*radial.T)[:, None], 1e-6)
    return pts + radial * (amp * noise)[:, None]


def _top_shape(rng, kind):
    s = _Shape(kind)
    long_sleeves = kind in ("longsleeve", "hoodie", "jacket") or (kind == "shirt" and rng.random() < 0.6)
    half = rng.uniform(0.29, 0.41)
    sh_half = half * rng.uniform(1.0, 1.1)
    y_sh = rng.uniform(0.03, 0.08)
    nw = rng.uniform(0.085, 0.13)
    nd = rng.uniform(0.05, 0.14)
    arm_y = y_sh + rng.uniform(0.19, 0.29)
    hem_half = half * rng.uniform(0.93, 1.07)
    if kind == "shirt":
        hem = _arc(0, 0.93, hem_half, 0.07, 0, 180, 9)
    else:
        hem = _arc(0, 0.99, hem_half, 0.01, 0, 180, 5)
    back_neck = _arc(0, 0, nw, 0.015, 180, 0, 7)
    front_neck = _arc(0, 0, nw, nd, 180, 0, 9)
    P2, A = np.array([sh_half, y_sh]), np.array([half, arm_y])
    body = _poly(back_neck, P2, A, hem, _mirror([A])[0], _mirror([P2])[0])
    s.parts.append(body)
    # sleeves
    if long_sleeves:
        sl = rng.uniform(0.55, 0.85)
        base = rng.uniform(22, 52) if rng.random() < 0.55 else rng.uniform(58, 80)
        end_w = rng.uniform(0.09, 0.15)
    else:
        sl = rng.uniform(0.15, 0.32)
        base = rng.uniform(12, 45)
        end_w = rng.uniform(0.14, 0.23)
    cuff = rng.uniform(0.035, 0.07) if long_sleeves else rng.uniform(0.02, 0.04)
    for sign in (1.0, -1.0):
        a = math.radians(base + rng.uniform(-7, 7))
        d = np.array([sign * math.cos(a), math.sin(a)])
        n = np.array([-sign * math.sin(a), math.cos(a)])
        p2 = np.array([sign * sh_half, y_sh])
        pa = np.array([sign * half, arm_y])
        e1 = p2 + sl * d
        e2 = e1 + end_w * n
        s.parts.append(_poly(p2, e1, e2, pa))
        s.seams.append((_poly(p2, pa), 0.006, 0.88))
        s.seams.append((_poly(pa, e2), 0.008, 0.85))  # sleeve's lower edge over the body
        c1, c2 = e1 - cuff * d, e2 - cuff * d
        s.trims.append(_poly(c1, e1, e2, c2))
        s.seams.append((_poly(c1, c2), 0.005, 0.85))
    # neck: the inside of the back shows above the front neckline
    s.shade.append((_poly(front_neck, back_neck[::-1]), rng.uniform(0.6, 0.8)))
    rib = rng.uniform(0.015, 0.03)
    s.trims.append(_poly(front_neck, _arc(0, 0, nw + rib, nd + rib, 0, 180, 9)))
    s.seams.append((_arc(0, 0, nw + rib, nd + rib, 180, 0, 9), 0.005, 0.85))
    hem_band = rng.uniform(0.03, 0.08)
    s.trims.append(_poly(hem[:, :] - [0, hem_band], hem[::-1]))
    s.seams.append((hem - [0, hem_band], 0.005, 0.86))
    s.chest = (0.0, arm_y + rng.uniform(0.02, 0.18), 2 * half * rng.uniform(0.35, 0.8), rng.uniform(0.12, 0.35))
    s.panels.append(_poly([-3, arm_y + 0.1], [3, arm_y + 0.1], [3, arm_y + 0.1 + rng.uniform(0.08, 0.2)],
                          [-3, arm_y + 0.1 + 0.14]))
    s.panels.append(_poly([half * 0.55, arm_y], [half * 1.1, arm_y], [hem_half * 1.1, 1.0], [hem_half * 0.6, 1.0]))
    s.panels.append(_poly([-half * 1.2, -0.2], [half * 1.2, -0.2], [half * 1.2, y_sh + 0.1], [-half * 1.2, y_sh + 0.1]))
    y_top = 0.0
    if kind == "shirt":
        wing = rng.uniform(0.05, 0.09)
        stand = _poly(_arc(0, 0.0, nw + 0.02, 0.04, 180, 360, 9), _arc(0, 0.0, nw, 0.015, 0, 180, 7))
        s.parts.append(stand)
        s.trims.append(stand)
        for sign in (1.0, -1.0):
            w = np.array([[0.005, 0.0], [nw + 0.025, -0.015], [nw + 0.03 + wing * 0.5, 0.04 + wing],
                          [0.01, nd + 0.02]])
            w[:, 0] *= sign
            s.parts.append(w)
            s.trims.append(w)
            s.seams.append((_poly(w, w[:1]), 0.005, 0.8))
        s.shade = []
        for x in (-0.028, 0.028):
            s.seams.append((_poly([x, nd + 0.02], [x, 0.98]), 0.004, 0.85))
        for y in np.arange(nd + 0.08, 0.95, rng.uniform(0.1, 0.14)):
            s.dots.append((0.0, float(y), 0.011))
        if rng.random() < 0.5:
            x0, y0 = -half * 0.75, arm_y - 0.02
            s.seams.append((_poly([x0, y0], [x0 + 0.14, y0], [x0 + 0.14, y0 + 0.15],
                                  [x0 + 0.07, y0 + 0.17], [x0, y0 + 0.15], [x0, y0]), 0.005, 0.85))
        y_top = -0.04
    if kind in ("hoodie", "jacket"):
        hood = kind == "hoodie" or rng.random() < 0.4
        zipped = kind == "jacket" or rng.random() < 0.35
        if hood:
            rx, ry = nw + rng.uniform(0.05, 0.1), rng.uniform(0.13, 0.25)
            outer = _arc(0, 0.03, rx, ry, 180, 360, 13)
            s.parts.append(outer)
            inner = _poly(_arc(0, 0.03, nw + 0.005, ry * 0.55, 180, 360, 11), front_neck[::-1])
            s.trims.append(inner)
            s.shade = [(inner, rng.uniform(0.55, 0.75))]
            y_top = 0.03 - ry
            if not zipped or rng.random() < 0.5:
                length = rng.uniform(0.1, 0.25)
                for x in (-0.05, 0.05):
                    s.lines.append((_poly([x, nd], [x * 1.2, nd + length]), 0.012))
        else:
            collar = _poly(_arc(0, 0.0, nw + 0.025, 0.06, 180, 360, 9), _arc(0, 0.0, nw, 0.02, 0, 180, 7))
            s.parts.append(collar)
            s.trims.append(collar)
            y_top = -0.06
        if zipped:
            s.lines.append((_poly([0.0, nd * 0.6], [0.0, 0.99]), 0.016))
            for sign in (1.0, -1.0):
                s.seams.append((_poly([sign * half * 0.45, 0.62], [sign * half * 0.7, 0.82]), 0.008, 0.7))
        else:
            kp = _poly([-0.2, 0.6], [0.2, 0.6], [0.27, 0.88], [-0.27, 0.88], [-0.2, 0.6])
            s.seams.append((kp * [half / 0.38, 1.0], 0.006, 0.82))
    if kind == "tshirt" and rng.random() < 0.25:  # a pocket
        x0, y0 = half * 0.3, arm_y
        s.seams.append((_poly([x0, y0], [x0 + 0.12, y0], [x0 + 0.12, y0 + 0.13], [x0, y0 + 0.13], [x0, y0]),
                        0.005, 0.85))
    _creases(rng, s, (-half, 0.15, half, 0.95), int(rng.integers(0, 5)))
    s.hanger = ("hook", 0.0, y_top)
    return s


def _bottom_shape(rng, kind):
    s = _Shape(kind)
    if kind == "skirt":
        w = 1.0 / (2 * rng.uniform(0.75, 1.8))
        hw = w * rng.uniform(1.02, 1.12)
        y_hip = rng.uniform(0.1, 0.2)
        hh = hw * rng.uniform(1.05, 1.8)
        dip = rng.uniform(0.0, 0.06)
        hem = _arc(0, 1.0 - dip, hh, dip, 0, 180, 11)
        s.parts.append(_poly([-w, 0], [w, 0], [hw, y_hip], hem, [-hw, y_hip]))
        wb = rng.uniform(0.04, 0.09)
        band = _poly([-w * 1.02, -0.005], [w * 1.02, -0.005], [w * 1.03, wb], [-w * 1.03, wb])
        s.trims.append(band)
        s.seams.append((_poly([-w, wb], [w, wb]), 0.006, 0.85))
        if rng.random() < 0.35:  # pleats
            for x in np.linspace(-0.8, 0.8, rng.integers(5, 11)):
                s.seams.append((_poly([x * w, wb], [x * hh, 1.0 - dip * (1 - x * x) * 0.2]), 0.006, 0.82))
        s.side.append(_poly([-hh * 2, 0.8], [hh * 2, 0.8], [hh * 2, 0.86], [-hh * 2, 0.86]))
        s.panels.append(_poly([-hh * 2, 0.65], [hh * 2, 0.65], [hh * 2, 1.2], [-hh * 2, 1.2]))
        s.chest = (w * 0.5, 0.3, w * 0.5, 0.12)
        _creases(rng, s, (-hw, 0.15, hw, 0.95), int(rng.integers(0, 4)))
        s.hanger = ("clip", 0.0, 0.0, w)
        return s
    if kind in ("trousers", "jeans"):
        w = 1.0 / (2 * rng.uniform(2.1, 3.0))
        y_c = rng.uniform(0.27, 0.37)
        hw = w * rng.uniform(1.03, 1.18)
        y_hip = rng.uniform(0.12, 0.2)
        ho = hw * rng.uniform(0.62, 1.35)
        lw = rng.uniform(0.09, 0.19)
        jog = kind == "trousers" and rng.random() < 0.3  # sweatpants / joggers
        if jog:
            ho = hw * rng.uniform(0.6, 0.85)
            lw = rng.uniform(0.07, 0.11)
    else:  # shorts
        w = 1.0 / (2 * rng.uniform(1.0, 1.45))
        y_c = rng.uniform(0.45, 0.65)
        hw = w * rng.uniform(1.03, 1.15)
        y_hip = rng.uniform(0.15, 0.3)
        ho = hw * rng.uniform(1.0, 1.22)
        lw = ho * rng.uniform(0.55, 0.8)
        jog = False
    xi = max(ho - lw, 0.02)
    jr, jl = rng.uniform(0, 0.03, size=2)
    s.parts.append(_poly([-w, 0], [w, 0], [hw, y_hip], [ho, 1 - jr], [xi, 1 - jr], [0, y_c],
                         [-xi, 1 - jl], [-ho, 1 - jl], [-hw, y_hip]))
    wb = rng.uniform(0.035, 0.06) if not jog else rng.uniform(0.06, 0.09)
    s.trims.append(_poly([-w * 1.02, -0.005], [w * 1.02, -0.005], [w * 1.03, wb], [-w * 1.03, wb]))
    s.seams.append((_poly([-w, wb], [w, wb]), 0.006, 0.82))
    cuff = rng.uniform(0.03, 0.08)
    for sign, j in ((1.0, jr), (-1.0, jl)):
        o, i = np.array([sign * ho, 1 - j]), np.array([sign * xi, 1 - j])
        top_o = o + (np.array([sign * hw, y_hip]) - o) * cuff / (1 - j - y_hip)
        top_i = i + (np.array([0, y_c]) - i) * cuff / (1 - j - y_c)
        s.trims.append(_poly(top_o, o, i, top_i))
        s.seams.append((_poly(top_o, top_i), 0.005, 0.85))
        # a side stripe along the outer seam
        k1, k2 = rng.uniform(0.01, 0.02), rng.uniform(0.03, 0.05)
        outer = np.array([[sign * w, 0], [sign * hw, y_hip], [sign * ho, 1 - j]])
        s.side.append(_poly(outer - [sign * k1, 0], (outer - [sign * k2, 0])[::-1]))
        s.panels.append(_poly([sign * 0.0, 1 - j - 0.25], [sign * 2.0, 1 - j - 0.25], [sign * 2.0, 1.2],
                              [0.0, 1.2]))
        # crease down the leg
        if kind != "shorts" and rng.random() < 0.6:
            s.seams.append((_poly([sign * hw * 0.55, y_hip + 0.05], [sign * (ho + xi) / 2, 1 - j]),
                            0.006, 0.9))
        # front pocket
        if not jog:
            pocket = _bezier([sign * w * 0.45, wb], [sign * w * 0.6, y_hip * 0.9], [sign * hw * 0.98, y_hip + 0.03])
            s.seams.append((pocket, 0.006, 0.8))
            if kind == "jeans":
                s.stitches.append(pocket + [-sign * 0.012, 0.004])
                s.dots.append((sign * w * 0.45, wb + 0.01, 0.008))
                s.dots.append((sign * hw * 0.97, y_hip + 0.025, 0.008))
    if not jog:  # fly
        fly = _poly([0.05, wb], [0.05, y_c - 0.1], [0.0, y_c - 0.04])
        s.seams.append((fly, 0.006, 0.82))
        if kind == "jeans":
            s.stitches.append(fly + [-0.012, 0])
            s.stitches.append(_poly([-w, wb - 0.01], [w, wb - 0.01]))
            for sign in (1.0, -1.0):
                s.stitches.append(_poly([sign * (ho - 0.01), 1 - 0.03], [sign * (xi + 0.01), 1 - 0.03]))
        for x in (-0.8, -0.3, 0.3, 0.8):  # belt loops
            s.seams.append((_poly([x * w - 0.01, -0.005], [x * w - 0.01, wb + 0.01], [x * w + 0.01, wb + 0.01],
                                  [x * w + 0.01, -0.005]), 0.005, 0.8))
    else:  # drawstring
        for x in (-0.03, 0.03):
            s.lines.append((_poly([x, wb * 0.6], [x * 1.5, wb + rng.uniform(0.06, 0.12)]), 0.01))
    if kind == "shorts":
        s.chest = (rng.choice([-1.0, 1.0]) * (ho + xi) / 2, 1 - 0.1 - cuff, lw * 0.75, 0.08)
    else:
        s.chest = (rng.choice([-1.0, 1.0]) * w * 0.55, y_hip, w * 0.4, 0.06)
    _creases(rng, s, (-ho, y_hip, ho, 0.95), int(rng.integers(0, 5)))
    s.hanger = ("clip", 0.0, 0.0, w)
    return s


# --------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------


class _Xf:
    """Garment units -> working-canvas pixels: scale, rotate, translate."""

    def __init__(self, scale, theta_deg, centre_local, centre_px):
        t = math.radians(theta_deg)
        self.scale = scale
        self.theta = theta_deg
        self.m = scale * np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        self.c0 = np.asarray(centre_local, dtype=np.float64)
        self.t = np.asarray(centre_px, dtype=np.float64)

    def __call__(self, pts):
        pts = (np.atleast_2d(np.asarray(pts, dtype=np.float64)) - self.c0) @ self.m.T + self.t
        return [tuple(p) for p in pts.tolist()]

    def px(self, length):
        return max(1, int(round(length * self.scale)))


def _polyline(draw, pts, fill, width):
    if len(pts) >= 2:
        draw.line(pts, fill=fill, width=width, joint="curve" if len(pts) > 2 else None)


def _disc(draw, centre, r, fill):
    x, y = centre
    draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


@functools.lru_cache(maxsize=64)
def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


_WORDS = ("GAP", "JUST DO IT", "KEEP CALM", "NYC", "SPORT", "CHICAGO", "ORIGINAL", "1987", "LOVE",
          "BROOKLYN", "TEAM", "VIBES", "RUN", "CLUB", "ATHLETIC", "SUMMER", "NO. 7", "CALIFORNIA",
          "BASIC", "WILD", "THE DOCTOR", "EVOLUTION", "OK", "SURF", "AUTHENTIC", "85", "PARIS", "HELLO")


def _text_mask(text, height_px, width_px):
    """An 'L' image of the text, about height_px tall and at most width_px wide."""
    ref = _font(32)
    l, t, r, b = ref.getbbox(text)
    size = min(height_px * 32.0 / max(b - t, 1), width_px * 32.0 / max(r - l, 1))
    size = int(max(6, min(size, 400)))
    font = _font(size)
    l, t, r, b = font.getbbox(text)
    img = Image.new("L", (r - l + 2, b - t + 2), 0)
    ImageDraw.Draw(img).text((1 - l, 1 - t), text, fill=255, font=font)
    return img


def _print_colour(rng):
    """A colour for prints and trims: white, black or anything."""
    u = rng.random()
    if u < 0.28:
        return _lch_rgb(rng.uniform(0.9, 0.99), rng.uniform(0, 0.02), rng.uniform(0, 360))
    if u < 0.42:
        return _lch_rgb(rng.uniform(0.12, 0.3), rng.uniform(0, 0.03), rng.uniform(0, 360))
    return _random_rgb(rng, L=(0.3, 0.95), sat=(0.2, 1.0))


def _smooth_noise(rng, h, w, cells):
    """Low-frequency noise, about N(0, 1), at h x w from a cells grid."""
    cy = max(2, int(round(cells * h / max(h, w))) + 1)
    cx = max(2, int(round(cells * w / max(h, w))) + 1)
    small = Image.fromarray(rng.standard_normal((cy, cx)).astype(np.float32))
    return np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float32)


def _grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx / max(h, w), yy / max(h, w)


def _waves(rng, xx, yy, n, wavelength, amp):
    """A sum of n random plane waves (folds, wrinkles)."""
    out = np.zeros_like(xx)
    for _ in range(n):
        a = rng.uniform(0, 2 * math.pi)
        lam = rng.uniform(*wavelength)
        out += rng.uniform(*amp) * np.sin(
            2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / lam + rng.uniform(0, 2 * math.pi)
        )
    return out


# --------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------

BG_KINDS = ("plain", "boards", "tiles", "sheet", "rug", "wall")


def sample_scene(rng):
    """The scene of a photo: aspect, background kind and its colours, hanging or not."""
    hanging = bool(rng.random() < 0.18)
    spec = {"aspect": str(rng.choice(list(ASPECTS), p=ASPECT_P)), "hanging": hanging}
    if hanging:
        kind = str(rng.choice(["wall", "boards", "tiles", "sheet"], p=[0.6, 0.14, 0.14, 0.12]))
    else:
        kind = str(rng.choice(["plain", "boards", "tiles", "sheet", "rug"], p=[0.2, 0.2, 0.17, 0.21, 0.22]))
    spec["kind"] = kind
    u = rng.random()
    if kind == "wall":
        if u < 0.8:
            spec["colour"] = _lch_rgb(rng.uniform(0.78, 0.97), rng.uniform(0, 0.025), rng.uniform(0, 360))
        else:
            spec["colour"] = _random_rgb(rng, L=(0.6, 0.92), sat=(0.05, 0.4))
        spec["fleece"] = False
    elif kind == "plain":
        if u < 0.3:
            spec["colour"] = _lch_rgb(rng.uniform(0.75, 0.96), rng.uniform(0, 0.03), rng.uniform(0, 360))
        elif u < 0.65:
            spec["colour"] = _random_rgb(rng, L=(0.3, 0.8), sat=(0.45, 1.0))
        else:
            spec["colour"] = _random_rgb(rng, L=(0.2, 0.75), sat=(0.0, 0.35))
        spec["fleece"] = bool(rng.random() < 0.55)
    elif kind == "boards":
        if u < 0.6:
            spec["lch"] = (rng.uniform(0.4, 0.8), rng.uniform(0.03, 0.1), rng.uniform(45, 80))
        elif u < 0.85:
            spec["lch"] = (rng.uniform(0.4, 0.85), rng.uniform(0.0, 0.02), rng.uniform(0, 360))
        else:
            spec["lch"] = (rng.uniform(0.78, 0.9), rng.uniform(0.01, 0.03), rng.uniform(50, 90))
        spec["plank"] = rng.uniform(0.1, 0.3)
        spec["angle"] = float(rng.choice([0.0, 90.0])) + rng.uniform(-8, 8)
        spec["gap"] = rng.uniform(0.35, 0.75)
    elif kind == "tiles":
        if u < 0.6:
            spec["colour"] = _lch_rgb(rng.uniform(0.8, 0.96), rng.uniform(0, 0.03), rng.uniform(0, 360))
        elif u < 0.85:
            spec["colour"] = _lch_rgb(rng.uniform(0.45, 0.7), rng.uniform(0.0, 0.09), rng.uniform(30, 80))
        else:
            spec["colour"] = _random_rgb(rng, L=(0.4, 0.9), sat=(0.1, 0.8))
        spec["tile"] = rng.uniform(0.15, 0.45)
        spec["angle"] = 45.0 if rng.random() < 0.12 else rng.uniform(-6, 6)
        spec["grout"] = _lch_rgb(rng.uniform(0.45, 0.95), rng.uniform(0, 0.02), rng.uniform(0, 360))
    elif kind == "sheet":
        if u < 0.5:
            spec["colour"] = _random_rgb(rng, L=(0.82, 0.97), sat=(0.0, 0.35))
        elif u < 0.8:
            spec["colour"] = _random_rgb(rng, L=(0.55, 0.9), sat=(0.1, 0.6))
        else:
            spec["colour"] = _random_rgb(rng, L=(0.3, 0.85), sat=(0.3, 1.0))
        spec["pattern"] = str(rng.choice(["none", "stripes", "dots", "flowers", "checks"],
                                         p=[0.35, 0.2, 0.15, 0.2, 0.1]))
        spec["ink"] = [_random_rgb(rng, L=(0.3, 0.95), sat=(0.1, 1.0)) for _ in range(3)]
        spec["scale"] = rng.uniform(0.04, 0.14)
    else:  # rug
        spec["style"] = str(rng.choice(["shaggy", "plaid", "geometric"], p=[0.45, 0.35, 0.2]))
        if spec["style"] == "shaggy":
            spec["colour"] = _lch_rgb(rng.uniform(0.45, 0.82), rng.uniform(0, 0.04), rng.uniform(0, 360))
        else:
            spec["colour"] = _random_rgb(rng, L=(0.3, 0.75), sat=(0.4, 1.0))
        spec["ink"] = [_random_rgb(rng, L=(0.2, 0.95), sat=(0.0, 1.0)) for _ in range(3)]
        spec["scale"] = rng.uniform(0.08, 0.25)
    return spec


def _rotated_pattern(size, angle, colour, draw_fn):
    """Draw a pattern axis-aligned on a larger square, rotate it, crop to size."""
    w, h = size
    d = int(math.ceil(math.hypot(w, h))) + 2
    img = Image.new("RGB", (d, d), colour)
    draw_fn(ImageDraw.Draw(img), d)
    if abs(angle) > 0.01:
        img = img.rotate(angle, resample=Image.NEAREST, fillcolor=colour)
    x0, y0 = (d - w) // 2, (d - h) // 2
    return img.crop((x0, y0, x0 + w, y0 + h))


def _jitter_rgb(rng, rgb, dl):
    """A colour a little lighter or darker (same hue)."""
    f = max(0.0, 1.0 + rng.normal(0, dl))
    return tuple(int(min(255, max(0, round(v * f)))) for v in rgb)


def _draw_background(rng, spec, size, final_size):
    """The background at working size (PIL RGB) and its shading field at final size."""
    w, h = size
    fw, fh = final_size
    short = min(w, h)
    kind = spec["kind"]
    xx, yy = _grid(fh, fw)
    field = np.ones((fh, fw), dtype=np.float32)
    if kind in ("plain", "wall"):
        img = Image.new("RGB", size, spec["colour"])
        if spec.get("fleece"):
            field += _waves(rng, xx, yy, 4, (0.2, 0.6), (0.01, 0.04))
            field += 0.03 * rng.standard_normal((fh, fw)).astype(np.float32)
        else:
            field += 0.008 * rng.standard_normal((fh, fw)).astype(np.float32)
    elif kind == "boards":
        base = _lch_rgb(*spec["lch"])
        pw = max(4, int(spec["plank"] * short))
        gap = tuple(int(v * spec["gap"]) for v in base)

        def boards(draw, d):
            for x in range(0, d, pw):
                draw.rectangle([x, 0, x + pw, d], fill=_jitter_rgb(rng, base, 0.07))
                y = rng.uniform(-d, 0)
                while y < d:
                    draw.line([(x, y), (x + pw, y)], fill=gap, width=max(1, short // 150))
                    y += rng.uniform(0.6, 1.6) * d
                draw.line([(x, 0), (x, d)], fill=gap, width=max(1, short // 120))

        img = _rotated_pattern(size, spec["angle"], base, boards)
        t = math.radians(spec["angle"])
        u = xx * math.cos(t) + yy * math.sin(t)
        v = -xx * math.sin(t) + yy * math.cos(t)
        grain = np.zeros_like(xx)
        for _ in range(3):
            wavy = 2.0 * np.sin(2 * math.pi * v * rng.uniform(0.5, 3))
            grain += rng.uniform(0.01, 0.03) * np.sin(2 * math.pi * u * rng.uniform(20, 80) + rng.uniform(0, 6) + wavy)
        field += grain + 0.015 * rng.standard_normal((fh, fw)).astype(np.float32)
    elif kind == "tiles":
        tile = max(6, int(spec["tile"] * short))
        grout_w = max(1, int(short * rng.uniform(0.004, 0.012)))

        def tiles(draw, d):
            off = int(rng.integers(0, tile))
            for x in range(-off, d, tile):
                for y in range(-off, d, tile):
                    draw.rectangle([x, y, x + tile, y + tile], fill=_jitter_rgb(rng, spec["colour"], 0.025))
            for x in range(-off, d, tile):
                draw.line([(x, 0), (x, d)], fill=spec["grout"], width=grout_w)
            for y in range(-off, d, tile):
                draw.line([(0, y), (d, y)], fill=spec["grout"], width=grout_w)

        img = _rotated_pattern(size, spec["angle"], spec["colour"], tiles)
        gx, gy = rng.uniform(0, 1, size=2)
        field += rng.uniform(0.0, 0.2) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / rng.uniform(0.02, 0.15))
        field += 0.008 * rng.standard_normal((fh, fw)).astype(np.float32)
    elif kind == "sheet":
        pattern = spec["pattern"]
        sc = max(3, int(spec["scale"] * short))
        ink = spec["ink"]

        def sheet(draw, d):
            if pattern == "stripes":
                for x in range(0, d, sc):
                    draw.rectangle([x, 0, x + max(1, sc // 4), d], fill=ink[0])
            elif pattern == "checks":
                for x in range(0, d, 2 * sc):
                    draw.rectangle([x, 0, x + sc, d], fill=ink[0])
                for y in range(0, d, 2 * sc):
                    draw.rectangle([0, y, d, y + sc], fill=ink[1])
            elif pattern == "dots":
                r = max(1, sc // 5)
                for i, y in enumerate(range(0, d, sc)):
                    for x in range(0, d, sc):
                        _disc(draw, (x + (sc // 2) * (i % 2), y), r, ink[0])
            elif pattern == "flowers":
                for _ in range(int((d / sc) ** 2 * 0.5)):
                    cx, cy = rng.uniform(0, d, size=2)
                    r = sc * rng.uniform(0.15, 0.3)
                    col = ink[int(rng.integers(0, 2))]
                    for k in range(5):
                        a = 2 * math.pi * k / 5
                        _disc(draw, (cx + r * math.cos(a), cy + r * math.sin(a)), r * 0.6, col)
                    _disc(draw, (cx, cy), r * 0.45, ink[2])

        img = _rotated_pattern(size, rng.uniform(-30, 30), spec["colour"], sheet)
        field += _waves(rng, xx, yy, 5, (0.15, 0.6), (0.015, 0.05))
        field += 0.04 * _smooth_noise(rng, fh, fw, 5)
        field += 0.01 * rng.standard_normal((fh, fw)).astype(np.float32)
    else:  # rug
        style = spec["style"]
        ink = spec["ink"]
        sc = max(4, int(spec["scale"] * short))
        if style == "shaggy":
            img = Image.new("RGB", size, spec["colour"])
            field += 0.1 * _smooth_noise(rng, fh, fw, max(fw, fh) / 2.5)
            field += 0.07 * rng.standard_normal((fh, fw)).astype(np.float32)
            field += 0.04 * _smooth_noise(rng, fh, fw, 4)
        elif style == "plaid":
            bands = [(int(rng.integers(1, max(2, sc // 2))), ink[i % 3]) for i in range(int(rng.integers(2, 5)))]

            def stripes(draw, d):
                x = 0
                while x < d:
                    for bw, col in bands:
                        draw.rectangle([x, 0, x + bw, d], fill=col)
                        x += bw + sc // 2

            a = rng.uniform(-10, 10)
            v = _rotated_pattern(size, a, spec["colour"], stripes)
            hz = _rotated_pattern(size, a + 90, spec["colour"], stripes)
            img = Image.blend(v, hz, 0.5)
            field += 0.05 * rng.standard_normal((fh, fw)).astype(np.float32)
        else:
            def geometric(draw, d):
                for i, y in enumerate(range(0, d, sc)):
                    for j, x in enumerate(range(0, d, sc)):
                        col = ink[(i + j) % 3]
                        if (i + j) % 2:
                            draw.polygon([(x + sc / 2, y), (x + sc, y + sc / 2), (x + sc / 2, y + sc),
                                          (x, y + sc / 2)], fill=col)

            img = _rotated_pattern(size, rng.uniform(-10, 10), spec["colour"], geometric)
            field += 0.05 * rng.standard_normal((fh, fw)).astype(np.float32)
    # light from one side, on the floor too
    a = rng.uniform(0, 2 * math.pi)
    field *= 1 + rng.uniform(0, 0.12) * ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a))
    return img, field


def _draw_object(rng, draw, size):
    """A small second object near a corner (a sock, a tag)."""
    w, h = size
    short = min(w, h)
    r = short * rng.uniform(0.05, 0.09)
    corners = [(r * 1.5, r * 1.5), (w - r * 1.5, r * 1.5), (r * 1.5, h - r * 1.5), (w - r * 1.5, h - r * 1.5)]
    cx, cy = corners[int(rng.integers(0, 4))]
    cx, cy = cx + rng.uniform(-r, r) * 0.5, cy + rng.uniform(-r, r) * 0.5
    col = _print_colour(rng)
    if rng.random() < 0.6:  # sock
        a = rng.uniform(0, 2 * math.pi)
        p0 = (cx - r * math.cos(a), cy - r * math.sin(a))
        p1 = (cx + r * math.cos(a), cy + r * math.sin(a))
        p2 = (p1[0] + 0.7 * r * math.cos(a + 1.6), p1[1] + 0.7 * r * math.sin(a + 1.6))
        draw.line([p0, p1, p2], fill=col, width=max(2, int(r * 0.7)), joint="curve")
    else:  # tag
        draw.rectangle([cx - r * 0.5, cy - r * 0.8, cx + r * 0.5, cy + r * 0.8], fill=col)
        draw.line([(cx, cy - r * 0.8), (cx + r * 0.6, cy - r * 1.6)], fill=(240, 240, 240), width=max(1, int(r * 0.08)))


# --------------------------------------------------------------------------
# Prints, trims and details
# --------------------------------------------------------------------------

TOP_STYLES = ("graphic", "text", "stripes", "checks", "dots", "trims", "panel")
TOP_STYLE_P = (0.27, 0.15, 0.15, 0.07, 0.06, 0.16, 0.14)
BOTTOM_STYLES = ("side", "trims", "graphic", "text", "stripes", "checks", "dots", "panel")
BOTTOM_STYLE_P = (0.2, 0.22, 0.1, 0.1, 0.1, 0.09, 0.09, 0.1)


class _Printer:
    """Paints elements in other colours on the garment, keeping their union
    at or below `cap` of the garment's area (measured on the working mask)."""

    def __init__(self, canvas, gmask, cap):
        self.canvas, self.gmask, self.cap = canvas, gmask, cap
        self.g = np.asarray(gmask) > 127
        self.gsum = max(1, int(np.count_nonzero(self.g)))
        self.acc = np.zeros_like(self.g)

    @property
    def fraction(self):
        return np.count_nonzero(self.acc) / self.gsum

    def add(self, colour, draw_fn):
        e = Image.new("L", self.canvas.size, 0)
        draw_fn(ImageDraw.Draw(e), e)
        new = self.acc | ((np.asarray(e) > 127) & self.g)
        if np.count_nonzero(new) > self.cap * self.gsum:
            return False
        self.canvas.paste(colour, mask=ImageChops.multiply(e, self.gmask))
        self.acc = new
        return True


def _add_text(printer, xf, text, centre, h_units, w_units, colour):
    m = _text_mask(text, xf.scale * h_units, xf.scale * w_units)
    m = m.rotate(-xf.theta, resample=Image.BILINEAR, expand=True)
    (px, py), = xf([centre])
    box = (int(round(px - m.width / 2)), int(round(py - m.height / 2)))
    return printer.add(colour, lambda d, e: e.paste(255, box, m))


def _star(cx, cy, r, n=5):
    t = np.linspace(-math.pi / 2, 1.5 * math.pi, 2 * n, endpoint=False)
    rr = np.where(np.arange(2 * n) % 2 == 0, r, r * 0.45)
    return np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)


def _draw_details(rng, shape, xf, printer, lines_draw, prints):
    """Zips, drawstrings, buttons, rivets and top-stitching."""
    for pl, width in shape.lines:
        if prints and rng.random() < 0.75:
            col = [(170, 172, 176), (30, 30, 32), (235, 235, 232), _print_colour(rng)][int(rng.integers(0, 4))]
            printer.add(col, lambda d, e, pl=pl, width=width: _polyline(d, xf(pl), 255, xf.px(width)))
        else:
            _polyline(lines_draw, xf(pl), 150, xf.px(width))
    if shape.dots:
        r = lambda rad: max(1.0, rad * xf.scale)  # noqa: E731
        if prints and rng.random() < 0.5:
            col = _print_colour(rng) if shape.kind != "jeans" else (176, 120, 60)
            printer.add(col, lambda d, e: [_disc(d, xf([(x, y)])[0], r(rad), 255) for x, y, rad in shape.dots])
        else:
            for x, y, rad in shape.dots:
                _disc(lines_draw, xf([(x, y)])[0], r(rad), 165)
    if shape.stitches:
        width = xf.px(0.0045)
        if prints and rng.random() < 0.7:
            col = [(205, 150, 60), (225, 120, 40), (235, 225, 200)][int(rng.integers(0, 3))]
            printer.add(col, lambda d, e: [_polyline(d, xf(pl), 255, width) for pl in shape.stitches])
        else:
            for pl in shape.stitches:
                _polyline(lines_draw, xf(pl), 228, width)


def _draw_prints(rng, shape, xf, printer, top):
    """One print style in other colours; returns the style's name."""
    styles, p = (TOP_STYLES, TOP_STYLE_P) if top else (BOTTOM_STYLES, BOTTOM_STYLE_P)
    style = str(rng.choice(styles, p=p))
    cx, cy, cw, ch = shape.chest
    if style == "graphic":
        for _ in range(int(rng.integers(1, 4))):
            col = _print_colour(rng)
            item = str(rng.choice(["disc", "rect", "tri", "star", "text", "ring"]))
            sz = rng.uniform(0.3, 0.9) * min(cw, ch)
            px = cx + rng.uniform(-0.5, 0.5) * max(cw - sz, 0)
            py = cy + rng.uniform(-0.5, 0.5) * max(ch - sz, 0)
            if item == "text":
                _add_text(printer, xf, str(rng.choice(_WORDS)), (px, py), sz * 0.5, cw, col)
                continue
            if item in ("disc", "ring"):
                poly = _arc(px, py, sz / 2, sz / 2, 0, 360, 24)
            elif item == "rect":
                poly = _poly([px - sz / 2, py - sz / 3], [px + sz / 2, py - sz / 3], [px + sz / 2, py + sz / 3],
                             [px - sz / 2, py + sz / 3])
            elif item == "tri":
                poly = _poly([px, py - sz / 2], [px + sz / 2, py + sz / 2], [px - sz / 2, py + sz / 2])
            else:
                poly = _star(px, py, sz / 2)
            if item == "ring":
                printer.add(col, lambda d, e, poly=poly: d.line(xf(poly), fill=255, width=xf.px(sz * 0.12)))
            else:
                printer.add(col, lambda d, e, poly=poly: d.polygon(xf(poly), fill=255))
    elif style == "text":
        col = _print_colour(rng)
        n = int(rng.integers(1, 4))
        for i in range(n):
            y = cy - ch / 2 + (i + 0.5) * ch / n
            _add_text(printer, xf, str(rng.choice(_WORDS)), (cx, y), ch / n * rng.uniform(0.6, 0.9), cw, col)
    elif style in ("stripes", "checks"):
        period = rng.uniform(0.04, 0.2)
        duty = rng.uniform(0.08, 0.3) if style == "stripes" else rng.uniform(0.06, 0.15)
        col = _print_colour(rng)
        horizontal = rng.random() < (0.75 if top else 0.4)
        phase = rng.uniform(0, period)
        for direction in ((horizontal,) if style == "stripes" else (True, False)):
            for attempt in range(3):
                polys = []
                for v in np.arange(-2.0 + phase, 2.0, period):
                    a, b = v, v + duty * period
                    if direction:
                        polys.append(_poly([-3, a], [3, a], [3, b], [-3, b]))
                    else:
                        polys.append(_poly([a, -1], [b, -1], [b, 2], [a, 2]))
                if printer.add(col, lambda d, e, polys=polys: [d.polygon(xf(q), fill=255) for q in polys]):
                    break
                duty *= 0.6
    elif style == "dots":
        spacing = rng.uniform(0.05, 0.15)
        rad = spacing * rng.uniform(0.1, 0.28)
        col = _print_colour(rng)
        centres = [(x + (spacing / 2) * (i % 2), y) for i, y in enumerate(np.arange(-0.5, 1.5, spacing))
                   for x in np.arange(-1.5, 1.5, spacing)]
        printer.add(col, lambda d, e: [_disc(d, xf([c])[0], rad * xf.scale, 255) for c in centres])
    elif style == "trims":
        col = _print_colour(rng)
        order = rng.permutation(len(shape.trims))
        for i in order[: int(rng.integers(1, len(order) + 1))]:
            printer.add(col, lambda d, e, q=shape.trims[i]: d.polygon(xf(q), fill=255))
    elif style == "panel":
        col = _print_colour(rng)
        q = shape.panels[int(rng.integers(0, len(shape.panels)))]
        if not printer.add(col, lambda d, e: d.polygon(xf(q), fill=255)):
            printer.add(col, lambda d, e: d.polygon(xf(shape.trims[0]), fill=255))
    elif style == "side":
        col = _print_colour(rng)
        printer.add(col, lambda d, e: [d.polygon(xf(q), fill=255) for q in shape.side])
    return style


def _hanger_colour(rng):
    return [(28, 28, 30), (236, 236, 234), _lch_rgb(0.55, 0.07, 65), (172, 174, 178),
            _random_rgb(rng, L=(0.4, 0.8), sat=(0.3, 0.9))][int(rng.integers(0, 5))]


def _draw_hanger(draw, shape, xf, colour, front):
    """A hanger: a hook above the neck (tops) or a clip bar above the waist."""
    kind = shape.hanger[0]
    x, y = shape.hanger[1], shape.hanger[2]
    r = 0.035
    if kind == "hook" and not front:
        top = y - 0.07
        hook = _poly([x, y + 0.03], [x, top], _arc(x + r, top, r, r, 180, 390, 12))
        _polyline(draw, xf(hook), colour, xf.px(0.012))
        _polyline(draw, xf([[-0.34, 0.1], [x, y + 0.03], [0.34, 0.1]]), colour, xf.px(0.014))
    elif kind == "clip":
        w = shape.hanger[3]
        bar = y - 0.045
        if not front:
            _polyline(draw, xf([[-w * 1.15, bar], [w * 1.15, bar]]), colour, xf.px(0.018))
            top = bar - 0.06
            hook = _poly([x, bar], [x, top], _arc(x + r, top, r, r, 180, 390, 12))
            _polyline(draw, xf(hook), colour, xf.px(0.012))
        else:
            for sign in (1.0, -1.0):
                cx = sign * w * 0.8
                draw.polygon(xf([[cx - 0.02, bar], [cx + 0.02, bar], [cx + 0.02, y + 0.035],
                                 [cx - 0.02, y + 0.035]]), fill=colour)


# --------------------------------------------------------------------------
# One photo
# --------------------------------------------------------------------------


def canvas_size(aspect, image_size):
    """(width, height) of a photo: the long side is image_size."""
    aw, ah = ASPECTS[aspect]
    if aw <= ah:
        return max(8, int(round(image_size * aw / ah))), image_size
    return image_size, max(8, int(round(image_size * ah / aw)))


def _supersampling(image_size):
    return int(max(1, min(3, round(384 / image_size))))


def render_garment(rng, main_rgb, category, image_size, scene=None, prints=True, with_masks=False):
    """Render one garment photo; returns a dict with the JPEG bytes and info.

    Args:
        rng: numpy Generator (all randomness of this photo).
        main_rgb: the main colour as an 8-bit sRGB tuple.
        category: one of TOP_CATEGORIES or BOTTOM_CATEGORIES.
        image_size: the long side in pixels.
        scene: a `sample_scene` dict (shared by the two photos of a pair
            sometimes); drawn from rng when None.
        prints: False renders no prints, trims or details in other colours.
        with_masks: also return `alpha` (garment coverage per final pixel,
            uint8) and `print_alpha` (prints and details in other colours).
    """
    scene = scene if scene is not None else sample_scene(rng)
    W, H = canvas_size(scene["aspect"], image_size)
    ss = _supersampling(image_size)
    Ww, Hw = W * ss, H * ss
    top = category in TOP_CATEGORIES
    shape = _top_shape(rng, category) if top else _bottom_shape(rng, category)
    hanging = scene["hanging"]

    # placement: scale, rotation, position
    pts = np.concatenate(shape.parts)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    bw, bh = hi - lo
    hook = 0.16 if hanging else 0.0
    hf = rng.uniform(0.5, 0.8) if hanging else rng.uniform(0.5, 0.9)
    scale = min(hf * Hw / (bh + hook), rng.uniform(0.85, 1.0) * Ww / bw)
    if rng.random() < 0.1:  # a little cut off by the frame
        scale *= rng.uniform(1.0, 1.12)
    theta = rng.uniform(-3, 3) if hanging else rng.uniform(-12, 12)
    centre = (lo + hi) / 2
    q = np.array(_Xf(scale, theta, centre, (0, 0))(pts))
    qlo, qhi = q.min(axis=0), q.max(axis=0)
    free = np.maximum(np.array([Ww, Hw]) - (qhi - qlo), 0)
    cx = Ww / 2 + rng.uniform(-0.4, 0.4) * free[0]
    if hanging:
        top_px = hook * scale + rng.uniform(0.01, 0.08) * Hw
        cy = top_px + (qhi[1] - qlo[1]) / 2
    else:
        cy = Hw / 2 + rng.uniform(-0.4, 0.4) * free[1]
    xf = _Xf(scale, theta, centre, (cx - (qlo[0] + qhi[0]) / 2, cy - (qlo[1] + qhi[1]) / 2))

    # working canvas: background, objects, hanger, garment, prints
    canvas, bfield = _draw_background(rng, scene, (Ww, Hw), (W, H))
    draw = ImageDraw.Draw(canvas)
    if not hanging and rng.random() < 0.1:
        _draw_object(rng, draw, (Ww, Hw))
    hanger_col = _hanger_colour(rng)
    if hanging:
        _draw_hanger(draw, shape, xf, hanger_col, front=False)
    gmask = Image.new("L", (Ww, Hw), 0)
    gdraw = ImageDraw.Draw(gmask)
    amp = rng.uniform(0.001, 0.006)
    for part in shape.parts:
        gdraw.polygon(xf(_wobble(rng, part, amp)), fill=255)
    canvas.paste(tuple(main_rgb), mask=gmask)
    lines = Image.new("L", (Ww, Hw), 200)  # 200 = unchanged lightness
    ldraw = ImageDraw.Draw(lines)
    for poly, f in shape.shade:
        ldraw.polygon(xf(poly), fill=int(200 * f))
    for pl, width, f in shape.seams:
        _polyline(ldraw, xf(pl), int(200 * f), xf.px(width))
    printer = _Printer(canvas, gmask, MAX_PRINT_FRACTION)
    _draw_details(rng, shape, xf, printer, ldraw, prints)
    style = "none"
    if prints and rng.random() < PRINT_P:
        style = _draw_prints(rng, shape, xf, printer, top)
    if hanging and shape.hanger[0] == "clip":
        _draw_hanger(draw, shape, xf, hanger_col, front=True)
        _draw_hanger(gdraw, shape, xf, 0, front=True)

    # down to the final size (box filter = antialiasing), then light in linear RGB
    if ss > 1:
        canvas, gmask, lines = canvas.reduce(ss), gmask.reduce(ss), lines.reduce(ss)
    alpha = np.asarray(gmask, dtype=np.float32) / 255.0
    xx, yy = _grid(H, W)
    unit = scale / ss / max(H, W)  # one garment unit in normalised coordinates
    G = 1.0 + rng.uniform(0.02, 0.07) * _smooth_noise(rng, H, W, 4)
    G += _waves(rng, xx / unit, yy / unit, int(rng.integers(2, 6)), (0.1, 0.5), (0.015, 0.07))
    edge = gmask.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 2.0) * max(H, W) / 96))
    G *= 1.0 - rng.uniform(0.1, 0.35) * (1.0 - np.asarray(edge, dtype=np.float32) / 255.0)
    G += rng.uniform(0.004, 0.03) * rng.standard_normal((H, W)).astype(np.float32)
    if rng.random() < 0.4 or category == "jeans":  # knit / twill
        period = rng.uniform(2.0, 4.0) / max(H, W)
        direction = rng.uniform(0, math.pi)
        along = xx * math.cos(direction) + yy * math.sin(direction)
        G += rng.uniform(0.01, 0.04) * np.sin(2 * math.pi * along / period)
    G *= np.asarray(lines.filter(ImageFilter.GaussianBlur(0.35 * max(H, W) / 96)), dtype=np.float32) / 200.0
    inside = alpha > 0.99
    if np.count_nonzero(inside) >= 4:
        G /= np.median(G[inside])
    G = np.clip(G, 0.55, 1.25)
    shadow = 1.0
    if rng.random() < 0.55:
        off = rng.normal(0, 0.012, size=2) * max(W, H) + (np.array([0.0, 0.02]) * max(W, H) if hanging else 0.0)
        sh = Image.new("L", (W, H), 0)
        sh.paste(gmask, (int(round(off[0])), int(round(off[1]))))
        sh = sh.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 4.0) * max(H, W) / 96))
        shadow = 1.0 - rng.uniform(0.15, 0.45) * np.asarray(sh, dtype=np.float32) / 255.0

    lin = _to_linear(np.asarray(canvas))
    lin = lin * (alpha * G + (1.0 - alpha) * bfield * shadow)[..., None]
    Y = np.maximum(lin @ _LUM, 1e-3)
    vignette = 1.0 - rng.uniform(0.0, 0.3) * ((xx - 0.5 * W / max(H, W)) ** 2 + (yy - 0.5 * H / max(H, W)) ** 2) / 0.5
    F = rng.uniform(0.88, 1.12) * vignette * np.power(Y / 0.18, rng.uniform(-0.08, 0.08))
    F = alpha * np.clip(F, *GLOBAL_LIGHT_RANGE) + (1.0 - alpha) * F
    wb = 1.0 + rng.uniform(-WHITE_BALANCE_SHIFT, WHITE_BALANCE_SHIFT, size=3).astype(np.float32)
    wb /= float(wb @ _LUM)
    lin = lin * F[..., None] * wb
    lin /= np.maximum(lin.max(axis=-1, keepdims=True), 1.0)  # keep hue where it overflows
    out = _to_srgb(lin)
    out += rng.normal(0, rng.uniform(0.3, 1.8), size=out.shape)
    img = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
    u = rng.random()
    if u < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.25, 0.55) * max(H, W) / 96))
    elif u < 0.4:
        img = img.filter(ImageFilter.UnsharpMask(radius=1, percent=int(rng.integers(30, 90)), threshold=2))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
             subsampling=JPEG_SUBSAMPLING, optimize=False)
    result = {
        "jpeg": buf.getvalue(),
        "size": (W, H),
        "info": {
            "category": category,
            "aspect": scene["aspect"],
            "background": scene["kind"] + (f"/{scene['style']}" if "style" in scene else ""),
            "hanging": hanging,
            "print_style": style,
            "print_fraction": float(printer.fraction),
        },
    }
    if with_masks:
        acc = Image.fromarray(printer.acc.astype(np.uint8) * 255)
        result["alpha"] = np.asarray(gmask, dtype=np.uint8)
        result["print_alpha"] = np.asarray(acc.reduce(ss) if ss > 1 else acc, dtype=np.uint8)
    return result


# --------------------------------------------------------------------------
# One pair
# --------------------------------------------------------------------------


def _pair_rngs(seed, index):
    """Independent generators for the colours, the top, the bottom and the scene."""
    children = np.random.SeedSequence([int(seed), int(index)]).spawn(4)
    return [np.random.default_rng(c) for c in children]


def _choose_categories(rng, bottom_lch):
    top = str(rng.choice(TOP_CATEGORIES, p=TOP_CATEGORY_P))
    low, high, below = harmony.NEUTRAL_ZONES["navy_denim"]
    denim_like = low <= bottom_lch[2] <= high and bottom_lch[1] < below + 0.03
    if rng.random() < (0.45 if denim_like else 0.12):
        return top, "jeans"
    return top, str(rng.choice(["trousers", "shorts", "skirt"], p=[0.45, 0.28, 0.27]))


def render_pair(seed, index, image_size, harmonious_target, hue_margin=5.0, chroma_margin=0.012,
                prints=True, with_masks=False):
    """Everything about pair `index` of a data set with this seed.

    Returns a dict: `top_lch`, `bottom_lch` (main colours, OKLCH), `reason`
    (why the pair has its label), `top_category`, `bottom_category`, and
    `top` / `bottom`: the `render_garment` results.
    """
    rc, rt, rb, rs = _pair_rngs(seed, index)
    top, bottom, reason = sample_pair_colours(rc, harmonious_target, hue_margin, chroma_margin)
    top_cat, bottom_cat = _choose_categories(rc, bottom)
    scene = sample_scene(rs) if rs.random() < 0.3 else None  # both photos in the same place
    return {
        "top_lch": top,
        "bottom_lch": bottom,
        "reason": reason,
        "top_category": top_cat,
        "bottom_category": bottom_cat,
        "top": render_garment(rt, _quantise(top)[0], top_cat, image_size, scene, prints, with_masks),
        "bottom": render_garment(rb, _quantise(bottom)[0], bottom_cat, image_size, scene, prints, with_masks),
    }


def _render_task(args):
    seed, index, image_size, target, hue_margin, chroma_margin, image_dir, width = args
    r = render_pair(seed, index, image_size, target, hue_margin, chroma_margin)
    names = {}
    for part in ("top", "bottom"):
        name = f"{index:0{width}d}_{part}.jpg"
        with open(os.path.join(image_dir, name), "wb") as f:
            f.write(r[part]["jpeg"])
        names[part] = "images/" + name
    return {
        "top": names["top"],
        "bottom": names["bottom"],
        "top_category": r["top_category"],
        "bottom_category": r["bottom_category"],
        "top_lch": r["top_lch"],
        "bottom_lch": r["bottom_lch"],
        "reason": r["reason"],
        "info": (r["top"]["info"], r["bottom"]["info"]),
    }


# --------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------


def split_counts(pairs, split_fractions=(0.7, 0.15, 0.15)):
    """Pairs per split; val and test are even (2 * round(f * N / 2)), train the rest."""
    val = 2 * int(math.floor(split_fractions[1] * pairs / 2 + 0.5))
    test = 2 * int(math.floor(split_fractions[2] * pairs / 2 + 0.5))
    return {"train": pairs - val - test, "val": val, "test": test}


def _validate(pairs, seed, image_size, label_noise, split_fractions, workers, hue_margin, chroma_margin):
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(pairs) or pairs < 20 or pairs % 2:
        raise ValueError(f"pairs must be an even integer >= 20, got {pairs!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not is_int(image_size) or not 32 <= image_size <= 1024:
        raise ValueError(f"image size must be an integer in 32..1024 pixels, got {image_size!r}")
    if not isinstance(label_noise, (int, float)) or not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label noise must be in [0, 0.5), got {label_noise!r}")
    fr = tuple(split_fractions)
    if len(fr) != 3 or any(not isinstance(f, (int, float)) or f <= 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
        raise ValueError(f"split fractions must be 3 positive numbers that sum to 1, got {split_fractions!r}")
    counts = split_counts(pairs, fr)
    if min(counts.values()) < 2:
        raise ValueError(f"{pairs} pairs leave a split with fewer than 2 pairs ({counts})")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if not 0 <= hue_margin <= 10 or not 0 <= chroma_margin <= 0.02:
        raise ValueError(f"margins must be in 0..10 degrees and 0..0.02 chroma, got {hue_margin}, {chroma_margin}")


def _params(pairs, seed, image_size, label_noise, split_fractions, hue_margin, chroma_margin):
    return {
        "pairs": int(pairs),
        "seed": int(seed),
        "image_size": int(image_size),
        "label_noise": float(label_noise),
        "split_fractions": [float(f) for f in split_fractions],
        "hue_margin_deg": float(hue_margin),
        "chroma_margin": float(chroma_margin),
    }


def _plan(pairs, seed, counts):
    """Split and target label of every pair: exact 50/50 in every split."""
    splits, targets = [], []
    for split in SPLITS:
        n = counts[split]
        splits += [split] * n
        targets += [1] * (n // 2) + [0] * (n // 2)
    order = np.random.default_rng([int(seed), 0x5EED5EED, 0x51D7]).permutation(pairs)
    return np.array(splits, dtype=object)[order], np.array(targets, dtype=np.int64)[order]


def _choose_flips(seed, splits, targets, label_noise):
    """Exactly round(p * n / 2) flipped labels per class in each split of n pairs."""
    rng = np.random.default_rng([int(seed), 0x5EED5EED, 0xF11B])
    flipped = np.zeros(len(targets), dtype=np.int64)
    for split in SPLITS:
        n = int(np.count_nonzero(splits == split))
        k = int(math.floor(label_noise * n / 2 + 0.5))
        for cls in (1, 0):
            idx = np.flatnonzero((splits == split) & (targets == cls))
            if k:
                flipped[rng.choice(idx, size=k, replace=False)] = 1
    return flipped


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _reusable(out, params):
    ds = _read_json(out / "dataset.json")
    if not isinstance(ds, dict):
        return False
    if (ds.get("generator"), ds.get("version"), ds.get("rule_version")) != (
        GENERATOR_NAME, GENERATOR_VERSION, harmony.RULE_VERSION
    ) or ds.get("parameters") != json.loads(json.dumps(params)):
        return False
    try:
        with open(out / "pairs.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if len(rows) != params["pairs"]:
        return False
    return all(r.get(k) and os.path.isfile(out / r[k]) for r in rows for k in ("top", "bottom"))


OWN_ENTRIES = {"images", "pairs.csv", "dataset.json"}


def _check_replaceable(out):
    """Refuse unless `out` is absent, empty, or provably a data set this generator wrote.

    Proof: its `dataset.json` names this generator (`generator`, `version`
    present), the folder holds nothing but `images/`, `pairs.csv` and
    `dataset.json`, and every file in `images/` is one `pairs.csv` names.
    A user's own `pairs.csv` + `images/` (no such `dataset.json`) is refused.
    """
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; refusing to replace it")
    entries = set(os.listdir(out))
    if not entries:
        return
    ds = _read_json(out / "dataset.json")
    ours = isinstance(ds, dict) and ds.get("generator") == GENERATOR_NAME and "version" in ds
    why = None
    if not ours:
        why = "it has no dataset.json of this generator"
    elif not entries <= OWN_ENTRIES:
        why = f"it also holds {', '.join(sorted(entries - OWN_ENTRIES)[:3])}"
    else:
        named = set()
        try:
            with open(out / "pairs.csv", newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    named.update(os.path.basename(row.get(k) or "") for k in ("top", "bottom"))
        except (OSError, UnicodeDecodeError, csv.Error):
            named = set()
        images = out / "images"
        extra = sorted(set(os.listdir(images)) - named) if images.is_dir() else []
        if images.exists() and not images.is_dir():
            why = "its images is not a folder"
        elif extra:
            why = f"images/ holds files its pairs.csv does not name ({', '.join(extra[:3])})"
    if why:
        raise ValueError(f"{out}: exists and does not hold only a synthetic data set this generator wrote "
                         f"({why}); refusing to replace it (choose another --out, or remove it yourself)")
    if not os.access(out, os.W_OK) or not os.access(out.absolute().parent, os.W_OK):
        raise ValueError(f"{out}: the folder (or its parent) is not writable")


def _check_writable_parent(out):
    """Create `out`'s parent if needed and check that it takes new entries, before any rendering."""
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{e.filename or parent}: cannot create the output folder ({e.strerror})") from None
    if not parent.is_dir():
        raise ValueError(f"{parent}: is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{parent}: not writable (permission denied)")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent, name):
    """Remove temporary folders left by interrupted runs (their process is gone)."""
    for entry in parent.glob(f".{name}.*-*"):
        kind, _, pid = entry.name[len(name) + 2:].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not _pid_alive(int(pid)) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _counter(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _fraction_bin(f):
    if f <= 0:
        return "0"
    for edge in (0.05, 0.10, 0.15, 0.20, 0.25, 0.30):
        if f <= edge + 1e-9:
            return f"<={int(round(edge * 100))}%"
    return ">30%"


def _summary(params, counts, splits, labels, flipped, results, image_size):
    infos = [i for r in results for i in r["info"]]
    per_split = {}
    for split in SPLITS:
        sel = splits == split
        per_split[split] = {
            "pairs": int(np.count_nonzero(sel)),
            "harmonious": int(np.count_nonzero(sel & (labels == 1))),
            "clashing": int(np.count_nonzero(sel & (labels == 0))),
            "label_noise_flipped": int(np.count_nonzero(sel & (flipped == 1))),
        }
    return {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "rule_version": harmony.RULE_VERSION,
        "parameters": params,
        "counts": per_split,
        "total": {
            "pairs": int(len(labels)),
            "images": 2 * int(len(labels)),
            "harmonious": int(np.count_nonzero(labels == 1)),
            "clashing": int(np.count_nonzero(labels == 0)),
        },
        "label_noise_flipped": int(flipped.sum()),
        "images": {
            "format": "JPEG",
            "jpeg_quality": list(JPEG_QUALITY),
            "chroma_subsampling": "4:2:0",
            "long_side": int(image_size),
            "canvas_sizes": {a: list(canvas_size(a, image_size)) for a in ASPECTS},
            "supersampling": _supersampling(image_size),
        },
        "rendering": {
            "main_colour_lightness": list(L_RANGE),
            "max_print_fraction": MAX_PRINT_FRACTION,
            "global_light_range_on_garment": list(GLOBAL_LIGHT_RANGE),
        },
        "stats": {
            "harmony_reasons": _counter(r["reason"] for r in results),
            "top_categories": _counter(r["top_category"] for r in results),
            "bottom_categories": _counter(r["bottom_category"] for r in results),
            "aspects": _counter(i["aspect"] for i in infos),
            "backgrounds": _counter(i["background"] for i in infos),
            "hanging": int(sum(i["hanging"] for i in infos)),
            "print_styles": _counter(i["print_style"] for i in infos),
            "print_fraction": _counter(_fraction_bin(i["print_fraction"]) for i in infos),
        },
    }


def generate(out_dir, pairs=6000, seed=0, image_size=96, label_noise=0.0,
             split_fractions=(0.7, 0.15, 0.15), workers=None, progress=True,
             hue_margin=5.0, chroma_margin=0.012):
    """Render the synthetic data set into out_dir; returns the path of pairs.csv.

    A folder that already holds a complete data set made with the same
    parameters is reused as it is. Otherwise the data set is rendered into a
    temporary sibling folder and renamed into place when complete, so an
    interrupted run never leaves a `dataset.json` behind. The output does
    not depend on `workers`.
    """
    _validate(pairs, seed, image_size, label_noise, split_fractions, workers, hue_margin, chroma_margin)
    params = _params(pairs, seed, image_size, label_noise, split_fractions, hue_margin, chroma_margin)
    out = Path(out_dir)
    if _reusable(out, params):
        print(f"synth: reusing {out} ({pairs} pairs, same parameters, all files present)")
        return out / "pairs.csv"
    _check_replaceable(out)
    _check_writable_parent(out)
    workers = int(workers or os.cpu_count() or 1)
    counts = split_counts(pairs, tuple(split_fractions))
    splits, targets = _plan(pairs, seed, counts)
    flipped = _choose_flips(seed, splits, targets, label_noise)
    labels = np.where(flipped == 1, 1 - targets, targets)

    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent, out.name)
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    width = max(6, len(str(pairs - 1)))
    started = time.perf_counter()
    try:
        (tmp / "images").mkdir(parents=True)
        tasks = [(seed, i, image_size, int(targets[i]), hue_margin, chroma_margin, str(tmp / "images"), width)
                 for i in range(pairs)]
        results = []
        bar = _progress(pairs, progress)
        try:
            if workers == 1:
                for r in map(_render_task, tasks):
                    results.append(r)
                    bar.update(1)
            else:
                chunk = max(1, min(64, pairs // (workers * 16)))
                with _mp_context().Pool(workers) as pool:
                    for r in pool.imap(_render_task, tasks, chunksize=chunk):
                        results.append(r)
                        bar.update(1)
        finally:
            bar.close()
        with open(tmp / "pairs.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for i, r in enumerate(results):
                writer.writerow([
                    r["top"], r["bottom"], LABELS[labels[i]], splits[i],
                    r["top_category"], *(f"{v:.4f}" for v in r["top_lch"]),
                    r["bottom_category"], *(f"{v:.4f}" for v in r["bottom_lch"]),
                    int(flipped[i]),
                ])
        summary = _summary(params, counts, splits, labels, flipped, results, image_size)
        with open(tmp / "dataset.json", "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, sort_keys=False)
            f.write("\n")
        _check_replaceable(out)  # again: the folder may have changed while rendering
        if out.exists():
            if not os.listdir(out):
                os.rmdir(out)
                os.rename(tmp, out)
            else:
                from neipalette_tf.staging import exchange

                exchange(tmp, out)  # atomic where the kernel can (renameat2), else two renames
                shutil.rmtree(tmp, ignore_errors=True)  # now the old data set, proven ours above
        else:
            os.rename(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{e.filename or tmp}: cannot write the data set ({e.strerror})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - started
    print(f"synth: rendered {pairs} pairs ({2 * pairs} images, long side {image_size} px) in "
          f"{elapsed:.1f} s with {workers} worker(s) -> {out}")
    return out / "pairs.csv"


def _mp_context():
    """fork (fast) unless the caller has loaded a library that runs its own
    threads (forking those is unsafe): then spawn. The output is the same."""
    heavy = any(name in sys.modules for name in ("tensorflow", "torch", "jax"))
    if "fork" in multiprocessing.get_all_start_methods() and not heavy:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, enabled):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _NoBar()
    return tqdm(total=total, desc="synth", unit="pair", smoothing=0.1)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None):
    parser = _Parser(
        prog="python -m neipalette_tf.data.synth",
        description="Render the synthetic NeiPalette pair data set.",
    )
    parser.add_argument("--out", default="data/synth", help="output folder (default data/synth)")
    parser.add_argument("--pairs", type=int, default=6000, help="number of pairs, even, >= 20 (default 6000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=96, help="long side of each photo in px (default 96)")
    parser.add_argument("--label-noise", type=float, default=0.0,
                        help="share of labels flipped per class and split, in [0, 0.5) (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    parser.add_argument("--hue-margin", type=float, default=5.0,
                        help="degrees kept clear of every hue boundary (default 5)")
    parser.add_argument("--chroma-margin", type=float, default=0.012,
                        help="chroma kept clear of every neutral threshold (default 0.012)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        _validate(args.pairs, args.seed, args.image_size, args.label_noise, (0.7, 0.15, 0.15),
                  args.workers, args.hue_margin, args.chroma_margin)
        generate(args.out, pairs=args.pairs, seed=args.seed, image_size=args.image_size,
                 label_noise=args.label_noise, workers=args.workers, progress=not args.no_progress,
                 hue_margin=args.hue_margin, chroma_margin=args.chroma_margin)
    except ValueError as e:
        parser.error(str(e))
    except OSError as e:
        parser.error(f"{e.filename or args.out}: {e.strerror or e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
