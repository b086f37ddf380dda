"""A garment's palette: up to K colours and their area shares, from its attended pixels.

The colour attention (`neipalette_tf.models.colour_pooling`) says *where* the garment is:
weights `a_p` over the pooled pixels, summing to 1. Its main colour is the weighted *mean*
`sum_p a_p x_p` in OKLab — for a white-and-navy striped shirt a grey-blue nobody wears. The
palette clusters the same pixels instead: a soft k-means with K = 3 centres and a fixed number of
iterations, in OKLab, over the attention's *support* (`support`: every pixel the attention looks
at counts about once, however peaked the map). A centre's share is the support it holds: the
garment's area. No trainable weights: every trained model
has it, and the same few array operations run in NumPy (here), in Keras and in every exported
graph (`neipalette_tf.models.palette`): `soft_kmeans(..., xp=np)` and `xp=keras.ops` are one
function.

Deterministic start, no random seeds: the weighted mean +/- one standard deviation along the
pixels' principal axis, and the mean + one along the second axis (power iteration on the
normalised 3 x 3 covariance, then on it less the first axis: 8th powers by three squarings, times
a fixed vector). Two colours split along the first axis from the first step; a third that shares
a side of it with another (red and navy against white) starts on the second.

The graph's K raw entries are then *read* (`read_palette`, NumPy, every runtime the same): entries
closer than `MERGE_DELTA_E` merge (a plain garment's light and shadow sides are one colour); of
three, one on the segment between the other two is the blend of the pixels on their edges and its
share goes to them (`BLEND_DELTA_E`; a true third colour there, e.g. pink between red and white
stripes, is read as that blend too); entries below `MIN_SHARE` go (a stray background pixel); the
rest are renormalised and sorted largest share first. The first entry is the garment's
**dominant colour**.

Limits (docs/palette.md): motifs under ~1 pooled pixel (pinstripes, ditsy prints at 48 px) are
one blended colour for any reader; and the attention of a model trained to read *one* main
colour looks away from a print's other colours (their attention is ~1e-6 of the main colour's),
so where it looks away entirely the palette misses that colour.

Example:

>>> import numpy as np
>>> from neipalette_tf.colour.space import srgb_to_oklab
>>> navy, white = srgb_to_oklab(np.array([[31, 45, 84], [245, 245, 240]]))
>>> pixels = np.concatenate([np.repeat(navy[None], 30, 0), np.repeat(white[None], 70, 0)])[None]
>>> raw = soft_kmeans(pixels, np.full((1, 100), 0.01))
>>> [(hex_colour(lab), round(share, 2)) for lab, share in read_palette(raw[0])]
[('#f5f5f0', 0.7), ('#1f2d54', 0.3)]
"""

import numpy as np

from neipalette_tf.colour.space import oklab_to_srgb

K = 3  # palette entries per garment
ITERATIONS = 8  # k-means steps (fixed: one graph for every runtime)
TEMPERATURE = 0.025**2  # of the squared OKLab distances in the soft assignment (~hard beyond dE 0.05)
MERGE_DELTA_E = 0.07  # entries closer than this are one colour (shading spreads one colour's L by ~0.05)
MIN_SHARE = 0.06  # entries holding less of the garment are dropped
BLEND_DELTA_E = 0.03  # an entry this close to the segment between two others is their edges' blend
_EPS = 1e-6
LIGHTNESS_WEIGHT = 1.0  # the clustering's (and merging's) weight of ΔL against Δa, Δb
# A pixel is garment when its attention is over this fraction of a uniform map's (1 / P): the
# attention is peaked on what its training read (the main colour) and ~1e-6 of that on a print's
# other colour, yet 1e-9 and less on the background; shares are areas of the support, not of the
# attention (on the synthetic test split, median |Δshare| 0.22 by attention mass).
SUPPORT_THRESHOLD = 0.006
_START = np.array([0.8, 0.5, 0.33])  # the power iteration's start: any vector off the principal axes


def _const(value, xp, like):
    value = np.asarray(value, np.float32)
    return value if xp is np else xp.convert_to_tensor(value, dtype=like.dtype)


def _expand(x, axis, xp):
    """`expand_dims`; in graphs a RESHAPE to the static shape (-1 for the batch): TFLite's
    EXPAND_DIMS is outside XNNPACK and splits the graph."""
    if xp is np:
        return np.expand_dims(x, axis)
    shape = [-1 if d is None else int(d) for d in x.shape]
    if shape.count(-1) > 1:
        return xp.expand_dims(x, axis)
    shape.insert(axis % (len(shape) + 1), 1)
    return xp.reshape(x, shape)


def _principal(cov, xp):
    """The principal axis `[N, 3]` (unit) and its deviation `[N, 1]` of covariances `[N, 3, 3]`:
    (C / tr C) ** 8 by three squarings, times a fixed start vector (no compare-and-select, which is
    outside XNNPACK; off the axis only where that vector is orthogonal to it to within
    (lambda2 / lambda1) ** 8)."""
    trace = xp.sum(xp.sum(cov * _const(np.eye(3), xp, cov), axis=-1), axis=-1)  # [N]
    power = cov / _expand(_expand(xp.abs(trace) + 1e-12, -1, xp), -1, xp)
    for _ in range(3):
        power = xp.matmul(power, power)
    axis = xp.sum(power * _const(_START[None, None, :], xp, cov), axis=-1)  # [N, 3]
    axis = axis / xp.sqrt(xp.sum(axis * axis, axis=-1, keepdims=True) + 1e-20)
    variance = xp.sum(axis * xp.sum(cov * _expand(axis, 1, xp), axis=-1), axis=-1, keepdims=True)
    return axis, xp.sqrt(xp.maximum(variance, 0.0) + 1e-12)


def soft_kmeans(pixels, weights, xp=np, k=K, iterations=ITERATIONS, temperature=TEMPERATURE,
                lightness_weight=None):
    """Raw palette `[N, k, 4]` (OKLab L, a, b and share) of weighted pixels.

    Args:
        pixels: OKLab `[N, P, 3]` (plain OKLab, not the model's scaled one).
        weights: `[N, P]`, each row summing to 1 (the colour attention's weights).
        xp: `numpy` or `keras.ops` (the same arithmetic for both).
    Returns:
        `[N, k, 4]`: each centre's OKLab and its share of the weight (rows sum to 1). Entries are
        in start order (the two ends of the principal axis, then the second axis), not sorted; `read_palette`
        merges, drops and sorts them.
    """
    if k != 3:
        raise ValueError("the deterministic start places exactly 3 centres")
    lightness_weight = LIGHTNESS_WEIGHT if lightness_weight is None else lightness_weight
    metric = _const(np.array([lightness_weight, 1.0, 1.0]), xp, pixels)
    pixels = pixels * metric  # cluster where light and shadow are closer than two hues
    a = _expand(weights, -1, xp)  # [N, P, 1]
    mean = xp.sum(a * pixels, axis=1)  # [N, 3]
    d = pixels - _expand(mean, 1, xp)  # [N, P, 3]
    cov = xp.sum(_expand(a, -1, xp) * _expand(d, -1, xp) * _expand(d, -2, xp), axis=1)  # [N, 3, 3]
    first, spread1 = _principal(cov, xp)
    second, spread2 = _principal(cov - _expand(spread1 * spread1, -1, xp) * _expand(first, -1, xp)
                                 * _expand(first, -2, xp), xp)
    # mean + / - one deviation along the first axis, mean + one along the second: three colours
    # two of which share a side of the first axis (red and navy against white) start apart too.
    centres = xp.concatenate([_expand(c, 1, xp) for c in (
        mean + spread1 * first, mean - spread1 * first, mean + spread2 * second)], axis=1)  # [N, k, 3]
    x = _expand(pixels, 2, xp)  # [N, P, 1, 3]
    for _ in range(iterations):
        distance = xp.sum(xp.square(x - _expand(centres, 1, xp)), axis=-1)  # [N, P, k]
        logits = -distance / temperature
        r = xp.exp(logits - xp.max(logits, axis=-1, keepdims=True))
        mass = a * r / xp.sum(r, axis=-1, keepdims=True)  # [N, P, k]
        shares = xp.sum(mass, axis=1)  # [N, k]
        # An empty centre stays where it is (the eps-weighted old centre), not at black.
        centres = (xp.sum(_expand(mass, -1, xp) * x, axis=1) + _EPS * centres) / _expand(shares + _EPS, -1, xp)
    return xp.concatenate([centres / metric, _expand(shares, -1, xp)], axis=-1)


def support(attention, xp=np):
    """The garment's support `[N, P]` from attention weights `[N, P]`: `a^2 / (a^2 + t^2)`, t =
    SUPPORT_THRESHOLD / P, normalised to sum 1 (each attended pixel counts about once)."""
    pixels = attention.shape[-1]
    threshold = SUPPORT_THRESHOLD / float(pixels)
    ratio = threshold / xp.maximum(attention, 1e-20)  # <= 1e15: its square stays finite in float32
    s = 1.0 / (1.0 + ratio * ratio)
    return s / (xp.sum(s, axis=-1, keepdims=True) + 1e-12)


def _split_blend(entries, blend_delta_e):
    """Three entries where one lies on the segment between the other two (within `blend_delta_e`,
    away from both ends): the pixels on the edges between two colours, each a mix of both. Its
    share goes to the two by where it lies on the segment."""
    for i in range(3):
        j, k = [n for n in range(3) if n != i]
        a, b, c = entries[j][0], entries[k][0], entries[i][0]
        ab = b - a
        t = float(np.dot(c - a, ab) / max(np.dot(ab, ab), 1e-12))
        if 0.15 < t < 0.85 and np.linalg.norm(a + t * ab - c) < blend_delta_e:
            s = entries[i][1]
            out = [[a, entries[j][1] + (1 - t) * s], [b, entries[k][1] + t * s]]
            return sorted(out, key=lambda e: -e[1])
    return entries


def read_palette(raw, merge_delta_e=None, min_share=None, lightness_weight=None, blend_delta_e=None):
    """One garment's raw palette `[k, 4]` -> `[(OKLab [3], share)]`, largest share first.

    Entries closer than `merge_delta_e` merge (share-weighted mean colour, summed share), from the
    closest pair up; entries under `min_share` go; the shares are renormalised to sum 1. Never
    empty: the largest entry stays.
    """
    merge_delta_e = MERGE_DELTA_E if merge_delta_e is None else merge_delta_e
    blend_delta_e = BLEND_DELTA_E if blend_delta_e is None else blend_delta_e
    min_share = MIN_SHARE if min_share is None else min_share
    metric = np.array([LIGHTNESS_WEIGHT if lightness_weight is None else lightness_weight, 1.0, 1.0])
    raw = np.asarray(raw, np.float64)
    entries = [[raw[i, :3].copy(), max(float(raw[i, 3]), 0.0)] for i in range(len(raw))]
    while len(entries) > 1:
        pairs = [(np.linalg.norm((entries[i][0] - entries[j][0]) * metric), i, j)
                 for i in range(len(entries)) for j in range(i + 1, len(entries))]
        dist, i, j = min(pairs)
        if dist >= merge_delta_e:
            break
        (ci, si), (cj, sj) = entries[i], entries[j]
        total = si + sj
        merged = (ci * si + cj * sj) / total if total > 0 else (ci + cj) / 2
        entries = [e for n, e in enumerate(entries) if n not in (i, j)] + [[merged, total]]
    entries.sort(key=lambda e: -e[1])
    if len(entries) == 3 and blend_delta_e > 0:
        entries = _split_blend(entries, blend_delta_e)
    kept = [e for e in entries if e[1] >= min_share] or entries[:1]
    total = sum(s for _, s in kept) or 1.0
    return [(c, s / total) for c, s in kept]


def dominant(raw):
    """The dominant colour (OKLab `[3]`) of one garment's raw palette `[k, 4]`."""
    return read_palette(raw)[0][0]


def hex_colour(lab):
    """OKLab `[3]` -> "#rrggbb" (clipped to sRGB)."""
    r, g, b = (int(v) for v in np.round(oklab_to_srgb(np.asarray(lab, np.float64))))
    return f"#{r:02x}{g:02x}{b:02x}"


def as_json(raw):
    """`[{"hex": "#rrggbb", "share": 0.62}, ...]` of one garment's raw palette, largest share first."""
    return [{"hex": hex_colour(lab), "share": round(float(s), 3)} for lab, s in read_palette(raw)]


# --- the pooled pixels, in NumPy (runtimes whose attention graph predates the palette output) ---

def pooled_oklab(images, stride=2):
    """uint8 / float RGB 0..255 `[N, S, S, 3]` -> OKLab `[N, (S/stride)^2, 3]`, as the model pools them.

    The colour attention pools the cube roots of the LMS responses (`stride` x `stride` means) and
    applies OKLab's last matrix after; the same order here, so the pixels are the model's.
    """
    from neipalette_tf.colour.space import _LMS_TO_OKLAB, _RGB_TO_LMS, srgb_to_linear

    x = np.asarray(images, np.float64)
    lms = np.cbrt(np.maximum(srgb_to_linear(x / 255.0) @ _RGB_TO_LMS.T, 1e-9))
    n, h, w, _ = lms.shape
    h2, w2 = h // stride, w // stride
    pooled = lms[:, :h2 * stride, :w2 * stride].reshape(n, h2, stride, w2, stride, 3).mean(axis=(2, 4))
    return (pooled @ _LMS_TO_OKLAB.T).reshape(n, h2 * w2, 3)


def palettes_from_attention(images, attention, stride=2):
    """Raw palettes `[N, K, 4]` of images `[N, S, S, 3]` from their attention maps `[N, P]` (NumPy)."""
    return soft_kmeans(pooled_oklab(images, stride).astype(np.float32), support(np.asarray(attention, np.float32)))
