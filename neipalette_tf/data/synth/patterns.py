"""Multi-colour garments: stripes, checks, colour-blocking, florals and small prints.

A pattern is a label image over the working canvas (0 = the garment's main colour, 1..n = its
other colours), painted inside the garment's mask; the renderer records each colour and its exact
area share of the garment in the final photo (`shares`: the box-filtered masks, as the photo's
pixels are). Shapes are sized so each colour region spans at least a few of the model's pooled
pixels (a 1-pixel pinstripe at 48 px is a blend, not a palette, for any reader): stripes of
>= ~0.07 of the garment's size, motifs of radius >= 0.05 (~1 pooled pixel at the default 48 px).

`sample_pattern(rng, main_lch, harmony)` picks a pattern and its other colours;
`MULTICOLOUR_P` of garments get one when the data set asks for them (`synth --multicolour`).
"""

import numpy as np
from PIL import Image

from neipalette_tf.colour.space import oklch_to_oklab
from neipalette_tf.data.synth.colours import quantise

PATTERNS = ("stripes", "checks", "blocks", "floral", "small_print")
PATTERN_P = (0.28, 0.18, 0.22, 0.18, 0.14)
MIN_COLOUR_DISTANCE = 0.15  # ΔE_OK between any two colours of one pattern
RULE_MIN_DOMINANT = 0.70  # rule v1 judges one colour per garment: it must hold this share


def _other_colour(rng, taken):
    """An OKLCH colour at least MIN_COLOUR_DISTANCE from every colour in `taken` (OKLCH)."""
    for _ in range(200):
        u = rng.random()
        if u < 0.25:
            lch = (rng.uniform(0.9, 0.97), rng.uniform(0.0, 0.02), rng.uniform(0, 360))  # white / cream
        elif u < 0.4:
            lch = (rng.uniform(0.2, 0.32), rng.uniform(0.0, 0.04), rng.uniform(0, 360))  # black / navy-ish
        else:
            lch = (rng.uniform(0.35, 0.9), rng.uniform(0.05, 0.2), rng.uniform(0, 360))
        _, lch = quantise(lch)
        lab = oklch_to_oklab(np.array(lch))
        if all(np.linalg.norm(lab - oklch_to_oklab(np.array(t))) >= MIN_COLOUR_DISTANCE for t in taken):
            return lch
    return None


def sample_pattern(rng, main_lch, harmony="people"):
    """A pattern for a garment of main colour `main_lch` (OKLCH): `{"kind", "colours", "params"}`.

    `colours`: the other colours (OKLCH, quantised to 8-bit paint). For rule-v1 data sets the main
    colour keeps >= RULE_MIN_DOMINANT of the garment (`params["max_other"]`), so the rule's one
    colour is the garment's dominant one. None when no distinct colours were found.
    """
    kind = str(rng.choice(PATTERNS, p=PATTERN_P))
    n_other = 1 if rng.random() < 0.6 or kind == "small_print" else 2
    colours = []
    for _ in range(n_other):
        c = _other_colour(rng, [main_lch] + colours)
        if c is None:
            return None
        colours.append(c)
    max_other = 1.0 - RULE_MIN_DOMINANT if harmony == "rule-v1" else 0.62
    return {"kind": kind, "colours": colours, "params": {"max_other": max_other, "seed": int(rng.integers(1 << 31))}}


def _frac(x):
    return x - np.floor(x)


def label_image(pattern, size, box, inside=None):
    """The pattern's label image `[H, W]` uint8 over a canvas of `size` (W, H) for a garment whose
    mask has bounding box `box` (x0, y0, x1, y1) (and is `inside`, `[H, W]` bool: florals and
    small prints add motifs until they cover their share of it). 0 = main colour, k = `colours[k - 1]`."""
    rng = np.random.default_rng(pattern["params"]["seed"])
    W, H = size
    x0, y0, x1, y1 = box
    scale = max(y1 - y0, x1 - x0, 1)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    u, v = (xx - x0) / scale, (yy - y0) / scale
    n = len(pattern["colours"])
    max_other = pattern["params"]["max_other"]
    label = np.zeros((H, W), np.uint8)
    kind = pattern["kind"]
    if kind == "stripes":
        along = v if rng.random() < 0.7 else u
        period = 1.0 / rng.uniform(2.5, 4.0)
        width = rng.uniform(min(0.35, max_other - 0.1), min(0.6, max_other)) * period
        phase = _frac((along + rng.uniform(0, 1) * period) / period) * period
        label[phase < width] = 1
        if n == 2:  # a thinner second stripe in the middle of the main colour's band
            w2 = min(width, 0.5 * (period - width), max(0.0, max_other * period - width))
            mid = width + 0.5 * (period - width)
            label[np.abs(phase - mid) < w2 / 2] = 2
    elif kind == "checks":
        cells = rng.uniform(3.0, 5.0)
        i, j = np.floor(u * cells + rng.uniform(0, 1)), np.floor(v * cells + rng.uniform(0, 1))
        if max_other < 0.5:  # rule v1: a windowpane check (thin bands of the other colour)
            band = rng.uniform(0.12, 0.16)
            on = (_frac(u * cells) < band) | (_frac(v * cells) < band)
            label[on] = 1
        elif n == 2:  # gingham: bands one colour, crossings the other
            a, b = (i % 2 == 1), (j % 2 == 1)
            label[a ^ b] = 1
            label[a & b] = 2
        else:
            label[(i + j) % 2 == 1] = 1
    elif kind == "blocks":
        t = (yy - y0) / max(y1 - y0, 1) if rng.random() < 0.6 else (xx - x0) / max(x1 - x0, 1)
        other = rng.uniform(0.25, max_other)
        label[t >= 1 - other] = 1
        if n == 2 and max_other - other > 0.1:
            label[t < min(0.35, max_other - other)] = 2
    else:  # floral, small_print: discs (petals, dots) on the main colour
        target = rng.uniform(0.15, max_other) if kind == "floral" else rng.uniform(0.12, min(0.3, max_other))
        radius = rng.uniform(0.08, 0.12) if kind == "floral" else rng.uniform(0.05, 0.07)
        inside = np.ones((H, W), bool) if inside is None else inside
        total = max(int(np.count_nonzero(inside)), 1)
        for _ in range(400):
            if np.count_nonzero((label > 0) & inside) >= target * total:
                break
            cu, cv = rng.uniform(0, (x1 - x0) / scale), rng.uniform(0, (y1 - y0) / scale)
            if kind == "floral":
                for a in np.linspace(0, 2 * np.pi, 5, endpoint=False) + rng.uniform(0, 1):
                    pu, pv = cu + 0.9 * radius * np.cos(a), cv + 0.9 * radius * np.sin(a)
                    label[(u - pu) ** 2 + (v - pv) ** 2 < radius**2] = 1
                if n == 2:
                    label[(u - cu) ** 2 + (v - cv) ** 2 < (0.9 * radius) ** 2] = 2
            else:
                label[(u - cu) ** 2 + (v - cv) ** 2 < radius**2] = 1 if n == 1 or rng.random() < 0.5 else 2
    return label


def fit_to_cap(label, inside, max_other):
    """Drop the other colours (highest label first) until they hold at most `max_other` of `inside`."""
    total = max(int(np.count_nonzero(inside)), 1)
    for k in range(int(label.max()), 0, -1):
        if np.count_nonzero((label > 0) & inside) <= max_other * total:
            break
        label[label == k] = 0
    return label


def paint(canvas, gmask, pattern, ss):
    """Paint `pattern` on the garment (inside `gmask`) of the working `canvas`; returns the label image."""
    g = np.asarray(gmask) > 127
    ys, xs = np.nonzero(g)
    if len(xs) == 0:
        return np.zeros(g.shape, np.uint8)
    label = label_image(pattern, canvas.size, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), g)
    label = fit_to_cap(label, g, pattern["params"]["max_other"])
    for k, lch in enumerate(pattern["colours"], start=1):
        region = Image.fromarray(((label == k) * 255).astype(np.uint8))
        canvas.paste(quantise(lch)[0], mask=Image.fromarray(np.minimum(np.asarray(region), np.asarray(gmask))))
    return label


def shares(label, gmask, ss, n_colours):
    """Each colour's exact share of the garment in the final photo: `[1 + n]` (main first).

    The masks are box-filtered to the final size as the photo is (`Image.reduce`), so a pixel on a
    stripe's edge counts for both colours by its coverage.
    """
    g = np.asarray(gmask, np.float64) / 255.0
    cover = []
    for k in range(n_colours + 1):
        m = Image.fromarray(np.round((label == k) * g * 255).astype(np.uint8))
        cover.append(float(np.asarray(m.reduce(ss) if ss > 1 else m, np.float64).sum()))
    total = sum(cover) or 1.0
    return [c / total for c in cover]
