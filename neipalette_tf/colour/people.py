"""The people model: how people rate a colour combination, 1 (dislike) .. 5 (like).

Fitted on people's ratings of 7,520 five-colour themes (O'Donovan, Agarwala &
Hertzmann, "Color Compatibility From Large Datasets", SIGGRAPH 2011, MTurk
data; licence CC BY-NC-SA 2.5 CA). The fitted parameters ship as
`people_model.json` beside this file, and carry that licence: a model
trained on labels from them is for non-commercial use (rule v1,
`neipalette_tf.colour.harmony`, is the permissive alternative).

What is learnt is a *pair* function: the rating people would give two
colours `a`, `b` together,

    f(a, b) = bias + (like(a) + like(b)) / 2 + together(a, b)

- `like(c)`: how much people like colour `c` on its own (lightness,
  chroma and hue terms in OKLab / OKLCH, plus smooth bumps over OKLab);
- `together(a, b)`: how well the two go together (lightness contrast,
  saturation, hue relation, colour distance): named terms only, so an
  explanation can say which one moved a pair's rating (smooth bumps over
  (ΔL, min C, max C, cos Δh) added 0.003 to the cross-validated Spearman
  and no nameable reason, and were left out).

Both parts are linear in fixed features, so each term's share of a rating
is visible (`contributions`), and `f(a, b) == f(b, a)` by construction. A
palette's rating is the weighted mean of `f` over its colour pairs
(`palette_rating`); a theme of five colours is the plain mean over its 10
pairs, which is how the model was fitted (`fit`: ridge regression on the
themes' mean features, `neipalette fit-harmony`).

The features are written once, for any array namespace with NumPy's names
(`numpy` here; `keras.ops` in `neipalette_tf.models.people_rating`, the
model's in-graph `rating` output).

Example:

>>> import numpy as np
>>> model = load()
>>> navy, white, red, green = [np.array(c, "float64") for c in
...     ([31, 45, 84], [245, 245, 240], [220, 30, 40], [40, 200, 60])]
>>> round(model.rate_rgb(navy, white) - model.rate_rgb(red, green), 1) > 0  # people prefer navy + white
True
>>> bool(np.isclose(model.rate_rgb(red, white), model.rate_rgb(white, red)))  # symmetric
True
"""

import itertools
import json
import os

import numpy as np

from neipalette_tf.colour.space import srgb_to_oklab

MODEL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "people_model.json")
FEATURES_VERSION = "people-features-v2"

# The decision threshold on the 1..5 scale: a pair people would rate at least this is harmonious.
# The themes' median rating is ~2.9; 3 is the scale's midpoint ("neither like nor dislike").
RATING_THRESHOLD = 3.0
RATING_RANGE = (1.0, 5.0)

ATTRIBUTION = ('P. O\'Donovan, A. Agarwala, A. Hertzmann, "Color Compatibility From Large Datasets", '
               "ACM Transactions on Graphics 30(4), Proc. SIGGRAPH 2011 (MTurk data set)")
LICENCE = "CC BY-NC-SA 2.5 CA (attribution, non-commercial, share-alike)"

_HUE_SOFT = 0.02  # chroma below which a hue fades out (greys have none)
_EPS = 1e-6

# Smooth bumps: a grid of Gaussian centres and their widths.
_COLOUR_GRID = (np.linspace(0.2, 1.0, 5), np.linspace(-0.25, 0.25, 5), np.linspace(-0.25, 0.25, 5))


def _grid(axes):
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    widths = np.array([a[1] - a[0] for a in axes])
    return centres, widths


COLOUR_CENTRES, COLOUR_WIDTHS = _grid(_COLOUR_GRID)

# Named feature groups, in column order: (group, number of columns). The groups are the
# terms explanations speak of.
COLOUR_GROUPS = (("lightness", 4), ("chroma", 6), ("hue", 10), ("colour_bumps", len(COLOUR_CENTRES)))
PAIR_GROUPS = (("lightness_contrast", 5), ("saturation", 6), ("hue_relation", 4), ("distance", 5))
COLOUR_DIM = sum(n for _, n in COLOUR_GROUPS)
PAIR_DIM = sum(n for _, n in PAIR_GROUPS)


def _chroma_hue(lab, xp):
    a, b = lab[..., 1], lab[..., 2]
    chroma = xp.sqrt(a * a + b * b + _EPS)
    soft = xp.sqrt(chroma * chroma + _HUE_SOFT**2)
    return chroma, a / soft, b / soft


def _bumps(z, axes, xp):
    """Gaussian bumps on the grid `axes` (one centre per grid point, row-major as `_grid`), `[..., prod(len)]`.

    A bump is the product of one Gaussian per axis, so each axis is computed once per value and
    the grid is their outer product: 15 exponentials per colour instead of 125 three-dimensional
    distances (the same values; what keeps explanations' candidate search fast).
    """
    a, b, c = _bump_axes(z, axes, xp)
    lead = tuple(a.shape[:-1])
    out = a[..., :, None, None] * b[..., None, :, None] * c[..., None, None, :]
    n = len(axes[0]) * len(axes[1]) * len(axes[2])
    shape = (n,) if not lead else (-1 if lead[0] is None else lead[0], *lead[1:], n)
    return xp.reshape(out, shape)


def _bump_axes(z, axes, xp):
    """Each axis's Gaussians of `z` `[..., len(axes)]`: one `[..., len(centres)]` array per axis."""
    per_axis = []
    for k, centres in enumerate(axes):
        width = float(centres[1] - centres[0])
        d = (z[..., k:k + 1] - np.asarray(centres, "float32")) / width
        per_axis.append(xp.exp(-0.5 * d * d))
    return per_axis


def _colour_terms(lab, xp):
    """The plain (not bump) columns of `colour_features`, in order: a list of `[...]` arrays."""
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    C, ca, sb = _chroma_hue(lab, xp)
    cos2, sin2 = ca * ca - sb * sb, 2.0 * ca * sb
    lightness = [L, L * L, L * L * L, xp.abs(L - 0.5)]
    chroma = [C, C * C, C * C * C, L * C, L * L * C, L * C * C]
    hue = [a, b, L * a, L * b, C * a, C * b, C * cos2, C * sin2, L * C * cos2, L * C * sin2]
    return lightness + chroma + hue


def colour_features(lab, xp=np):
    """Features of how much people like one colour: OKLab `[..., 3]` -> `[..., COLOUR_DIM]`."""
    plain = xp.stack(_colour_terms(lab, xp), axis=-1)
    return xp.concatenate([plain, _bumps(lab, _COLOUR_GRID, xp)], axis=-1)


def colour_scores(lab, weights):
    """`colour_features(lab) @ weights` for NumPy colours `[N, 3]`, without building the features.

    The same terms, summed as they are made, and the bumps' weights contracted one axis at a
    time (the bump grid is the outer product of its axes): about 5x faster on the thousands of
    candidate colours of an explanation (float32: 1e-6 from the product).
    """
    plain = _colour_terms(lab, np)
    out = np.zeros_like(plain[0])
    for w, term in zip(weights[:len(plain)], plain):
        out += w * term
    a, b, c = _bump_axes(lab, _COLOUR_GRID, np)
    grid = weights[len(plain):].reshape(a.shape[-1], b.shape[-1], c.shape[-1])
    over_c = (c @ grid.reshape(-1, c.shape[-1]).T).reshape(-1, a.shape[-1], b.shape[-1])  # sum_k c_k w_ijk
    over_b = np.einsum("nij,nj->ni", over_c, b)
    return out + np.einsum("ni,ni->n", over_b, a)


def pair_features(lab_a, lab_b, xp=np):
    """Features of how well two colours go together: OKLab `[..., 3]` twice -> `[..., PAIR_DIM]`.

    Symmetric in the two colours: every feature is.
    """
    La, Lb = lab_a[..., 0], lab_b[..., 0]
    Ca, ua, va = _chroma_hue(lab_a, xp)
    Cb, ub, vb = _chroma_hue(lab_b, xp)
    dL = xp.abs(La - Lb)
    dC = xp.abs(Ca - Cb)
    diff = lab_a - lab_b
    dE = xp.sqrt(xp.sum(diff * diff, axis=-1) + 1e-8)
    cos_dh = ua * ub + va * vb  # cos of the hue difference, fading to 0 for greys
    dot = lab_a[..., 1] * lab_b[..., 1] + lab_a[..., 2] * lab_b[..., 2]
    c_min, c_max = xp.minimum(Ca, Cb), xp.maximum(Ca, Cb)
    contrast = [dL, dL * dL, xp.minimum(La, Lb), xp.maximum(La, Lb), La * Lb]
    saturation = [Ca * Cb, c_min, c_max, dC, dC * dC, dL * (Ca + Cb)]
    hue = [dot, cos_dh * c_min, (2.0 * cos_dh * cos_dh - 1.0) * c_min, cos_dh * xp.sqrt(Ca * Cb)]
    distance = [dE, dE * dE, xp.sqrt(dE), xp.exp(-dE / 0.05), xp.exp(-dE / 0.15)]
    return xp.stack(contrast + saturation + hue + distance, axis=-1)


def _hex_to_rgb(text):
    text = text.strip().lstrip("#")
    if len(text) != 6:
        raise ValueError(f"not a #rrggbb colour: {text!r}")
    return [int(text[i:i + 2], 16) for i in (0, 2, 4)]


THEME_PAIRS = tuple(itertools.combinations(range(5), 2))


def theme_features(lab):
    """Themes `[T, K, 3]` (OKLab) -> the mean features over their colours and pairs `[T, COLOUR_DIM + PAIR_DIM]`.

    The mean of `f` over a theme's K(K-1)/2 pairs is a linear function of these (each colour is in
    K - 1 pairs, so the pairs' mean of (like(a) + like(b)) / 2 is the colours' mean of like).
    """
    lab = np.asarray(lab, dtype=np.float64)
    k = lab.shape[1]
    pairs = list(itertools.combinations(range(k), 2))
    colour = colour_features(lab).mean(axis=1)
    pair = np.mean([pair_features(lab[:, i], lab[:, j]) for i, j in pairs], axis=0)
    return np.concatenate([colour, pair], axis=1)


class PeopleModel:
    """The fitted pair function (weights of the standardised features, folded back to raw features).

    Args:
        colour_weights: `[COLOUR_DIM]` weights of `colour_features` (applied to each colour, halved).
        pair_weights: `[PAIR_DIM]` weights of `pair_features`.
        bias: the constant.
        feature_means: `[COLOUR_DIM + PAIR_DIM]` means of the theme features in the fitting data:
            the reference point of `contributions`.
        meta: what the JSON file says besides (source, licence, fit figures).
    """

    def __init__(self, colour_weights, pair_weights, bias, feature_means, meta=None):
        self.colour_weights = np.asarray(colour_weights, dtype=np.float64)
        self.pair_weights = np.asarray(pair_weights, dtype=np.float64)
        self.bias = float(bias)
        self.feature_means = np.asarray(feature_means, dtype=np.float64)
        self.meta = dict(meta or {})
        if self.colour_weights.shape != (COLOUR_DIM,) or self.pair_weights.shape != (PAIR_DIM,) \
                or self.feature_means.shape != (COLOUR_DIM + PAIR_DIM,):
            raise ValueError(f"people model weights of the wrong size for {FEATURES_VERSION}")

    # --- ratings -----------------------------------------------------------------------------

    def like(self, lab):
        """How much people like each colour on its own: OKLab `[..., 3]` -> `[...]` (its part of f)."""
        return colour_features(np.asarray(lab, dtype=np.float64)) @ self.colour_weights

    def together(self, lab_a, lab_b):
        """How well two colours go together: OKLab `[..., 3]` twice -> `[...]` (its part of f)."""
        return pair_features(np.asarray(lab_a, dtype=np.float64), np.asarray(lab_b, dtype=np.float64)) \
            @ self.pair_weights

    def rate(self, lab_a, lab_b, clip=True):
        """f(a, b): people's rating of two OKLab colours `[..., 3]`, 1..5 (clipped unless `clip=False`)."""
        r = self.bias + 0.5 * (self.like(lab_a) + self.like(lab_b)) + self.together(lab_a, lab_b)
        return np.clip(r, *RATING_RANGE) if clip else r

    def rate_against(self, labs, other):
        """f(c, other) for many colours `labs` `[N, 3]` and one `other` `[3]` (its own part computed once).

        Computed in float32 (a candidate search's thousands of colours; 1e-5 from `rate`).
        """
        labs = np.asarray(labs, dtype=np.float32)
        other = np.asarray(other, dtype=np.float32)
        own = colour_scores(labs, self.colour_weights.astype(np.float32))
        pair = pair_features(labs, np.broadcast_to(other, labs.shape)) @ self.pair_weights.astype(np.float32)
        r = self.bias + 0.5 * (own + float(self.like(other))) + pair
        return np.clip(r, *RATING_RANGE)

    def rate_rgb(self, rgb_a, rgb_b):
        """f(a, b) of two sRGB 0..255 colours (a float for single colours)."""
        r = self.rate(srgb_to_oklab(rgb_a), srgb_to_oklab(rgb_b))
        return float(r) if np.ndim(r) == 0 else r

    def palette_rating(self, labs, weights=None):
        """A palette's rating: the weighted mean of f over its colour pairs `i < j`.

        `labs` `[K, 3]` OKLab (K >= 2); `weights` `[K]` (e.g. area shares; default equal). A pair
        weighs `w_i * w_j`, so a theme of five equal colours is the plain mean over its 10 pairs.
        """
        labs = np.asarray(labs, dtype=np.float64)
        w = np.ones(len(labs)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(labs) < 2 or w.shape != (len(labs),):
            raise ValueError("a palette needs >= 2 colours and one weight per colour")
        i, j = np.triu_indices(len(labs), k=1)
        pw = w[i] * w[j]
        if not pw.sum() > 0:
            raise ValueError("palette weights must have at least two positive entries")
        mean = np.sum(pw * self.rate(labs[i], labs[j], clip=False)) / pw.sum()
        return float(np.clip(mean, *RATING_RANGE))

    def rate_themes(self, lab):
        """Themes `[T, K, 3]` OKLab -> the mean of f over each theme's pairs `[T]` (not clipped)."""
        return self.bias + theme_features(lab) @ np.concatenate([self.colour_weights, self.pair_weights])

    # --- terms -------------------------------------------------------------------------------

    def contributions(self, lab_a, lab_b):
        """Each term's part of f(a, b), relative to an average theme: `{term: value}` on the 1..5 scale.

        Terms: `like_a`, `like_b` (the colours on their own, each against the average colour) and
        the pair groups (`lightness_contrast`, `saturation`, `hue_relation`, `distance`), each
        against its average over the fitting themes. They sum to
        `rate(a, b, clip=False) - average`, `average` being the rating of an average theme
        (returned as `"average"`).
        """
        lab_a, lab_b = np.asarray(lab_a, dtype=np.float64), np.asarray(lab_b, dtype=np.float64)
        colour_mean, pair_mean = self.feature_means[:COLOUR_DIM], self.feature_means[COLOUR_DIM:]
        out = {"average": self.bias + float(colour_mean @ self.colour_weights + pair_mean @ self.pair_weights)}
        for name, lab in (("like_a", lab_a), ("like_b", lab_b)):
            out[name] = 0.5 * float((colour_features(lab) - colour_mean) @ self.colour_weights)
        delta = (pair_features(lab_a, lab_b) - pair_mean) * self.pair_weights
        start = 0
        for group, n in PAIR_GROUPS:
            out[group] = float(delta[..., start:start + n].sum())
            start += n
        return out

    # --- files -------------------------------------------------------------------------------

    def to_json(self):
        return {
            "features": FEATURES_VERSION,
            "source": ATTRIBUTION,
            "licence": LICENCE,
            "rating_threshold": RATING_THRESHOLD,
            **self.meta,
            "bias": self.bias,
            "colour_weights": [float(v) for v in self.colour_weights],
            "pair_weights": [float(v) for v in self.pair_weights],
            "feature_means": [float(v) for v in self.feature_means],
        }


def load(path=MODEL_FILE):
    """The people model stored at `path` (default: the one the package ships)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("features") != FEATURES_VERSION:
        raise ValueError(f"{path}: people model of features {data.get('features')!r}, "
                         f"this code reads {FEATURES_VERSION!r}")
    meta = {k: v for k, v in data.items()
            if k not in ("bias", "colour_weights", "pair_weights", "feature_means", "features")}
    return PeopleModel(data["colour_weights"], data["pair_weights"], data["bias"], data["feature_means"], meta)


_DEFAULT = None


def identity(path=MODEL_FILE):
    """A short content hash of a people model file (what a data set labelled by it records)."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def default():
    """The packaged people model, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load()
    return _DEFAULT
