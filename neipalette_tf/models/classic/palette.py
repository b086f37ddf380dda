"""The palette baseline: k-means garment colours + colour-theory pair features.

The classic approach of the study's related work, as a model that trains,
saves, loads, evaluates and predicts like the CNNs (`--backbone palette`):

1. **Image**: `neipalette_tf.core.preprocessing.load_image` at the configured
   image size (the project's one preprocessing function).
2. **Garment region** (a simple foreground estimate): the background colour
   is the median of the border pixels; pixels within `BACKGROUND_DELTA` of
   it in OKLab are dropped, the rest are weighted by a centred Gaussian
   (garments are photographed centred). When almost nothing stands out from
   the background, the Gaussian alone weights every pixel.
3. **Palette**: weighted k-means (scikit-learn `KMeans`) in OKLab gives the
   garment's `colours` dominant colours and their shares; the largest is
   the main colour.
4. **Pair features** (`FEATURE_NAMES`): each garment's main colour (L, C,
   hue as a chroma-scaled unit vector), its share and neutral flag and the
   palette's mean chroma; then the hue distance of the main colours, |cos|
   of it, analogous / complementary flags, lightness, chroma and OKLab
   contrast, neutral flags, and harmony rule v1 on the main colours — all
   from `neipalette_tf.harmony`.
5. **Classifier**: standardised logistic regression (`classic.linear`).

Saved as one JSON file (`model.palette.json`: image size, palette size,
feature names, classifier numbers); nothing is pickled.

Example:

>>> import numpy as np
>>> img = np.full((48, 48, 3), 240, dtype=np.uint8)    # light background
>>> img[10:38, 12:36] = (200, 30, 40)                   # a red garment
>>> lch, share = garment_palette(img, colours=2)
>>> [round(float(v), 2) for v in lch[0]], share.tolist()  # one colour: the 2nd repeats it, share 0
([0.54, 0.2, 25.3], [1.0, 0.0])
"""

import os
import warnings

import numpy as np
from sklearn.cluster import KMeans

from neipalette_tf.colour import harmony, space
from neipalette_tf.core.cli import UserError
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import BACKGROUND_DELTA
from neipalette_tf.core.vocabulary import CLASSIC_FORMAT as FORMAT
from neipalette_tf.models.classic.linear import fit_logistic, predict_logistic
from neipalette_tf.predictors.base import Predictor

VERSION = 1
CENTRE_SIGMA = 0.5        # Gaussian centre weight, in half-image units
MIN_FOREGROUND = 0.05     # below this weighted share the whole (centre-weighted) image is used
MAX_PIXELS = 4096         # k-means on at most this many pixels (evenly subsampled)

_GARMENT_FEATURES = ("L", "C", "hue_x", "hue_y", "share", "neutral", "mean_chroma")
FEATURE_NAMES = tuple(f"{g}_{f}" for g in ("top", "bottom") for f in _GARMENT_FEATURES) + (
    "hue_distance", "abs_cos_hue_distance", "analogous", "complementary",
    "lightness_contrast", "chroma_contrast", "oklab_distance",
    "either_neutral", "both_neutral", "rule_v1",
)


_CONTROLLER = []


def _thread_controller():
    """A cached threadpoolctl controller (creating one scans the loaded libraries)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def garment_weights(lab):
    """Per-pixel weights `[H, W]` of the garment region of an OKLab image."""
    h, w = lab.shape[:2]
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]], axis=0)
    background = np.median(border, axis=0)
    foreground = np.linalg.norm(lab - background, axis=-1) > BACKGROUND_DELTA
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    centre = np.exp(-(xx**2 + yy**2) / (2 * CENTRE_SIGMA**2))
    weights = centre * foreground
    if weights.sum() < MIN_FOREGROUND * centre.sum():
        return centre
    return weights


def garment_palette(rgb_uint8, colours=3, seed=0):
    """Dominant colours of a garment photo.

    Args:
        rgb_uint8: `[H, W, 3]` uint8 RGB (from `load_image`).
        colours: k of the k-means.

    Returns:
        (lch `[colours, 3]` OKLCH sorted by share, largest first; share
        `[colours]` summing to 1). When the garment has fewer distinct
        colours than `colours`, the missing entries repeat the main colour
        with share 0.
    """

    lab = space.srgb_to_oklab(np.asarray(rgb_uint8))
    weights = garment_weights(lab).reshape(-1)
    pixels = lab.reshape(-1, 3)
    keep = weights > 1e-6
    pixels, weights = pixels[keep], weights[keep]
    if len(pixels) > MAX_PIXELS:
        idx = np.linspace(0, len(pixels) - 1, MAX_PIXELS).astype(int)
        pixels, weights = pixels[idx], weights[idx]
    k = min(colours, len(np.unique(np.round(pixels, 4), axis=0)))
    # One thread: on a few thousand pixels, OpenMP start-up costs ~40x the work.
    with warnings.catch_warnings(), _thread_controller().limit(limits=1):
        warnings.simplefilter("ignore")  # ConvergenceWarning on near-flat images
        km = KMeans(n_clusters=k, n_init=2, max_iter=100, random_state=seed).fit(pixels, sample_weight=weights)
    share = np.bincount(km.labels_, weights=weights, minlength=k)
    share = share / share.sum()
    order = np.argsort(-share, kind="stable")
    centres, share = km.cluster_centers_[order], share[order]
    if k < colours:
        centres = np.concatenate([centres, np.repeat(centres[:1], colours - k, axis=0)])
        share = np.concatenate([share, np.zeros(colours - k)])
    return space.oklab_to_oklch(centres), share


def garment_features(lch, share):
    """The per-garment features (`_GARMENT_FEATURES`) of one palette."""
    L, C, h = lch[0]
    chroma_weight = min(C / 0.05, 1.0)  # a grey's hue is noise
    neutral = float(harmony.is_neutral(L, C, h))
    return np.array([L, C, chroma_weight * np.cos(np.radians(h)), chroma_weight * np.sin(np.radians(h)),
                     share[0], neutral, float(np.sum(share * lch[:, 1]))])


def pair_features(top, bottom):
    """Feature rows `[N, len(FEATURE_NAMES)]` from per-garment palettes.

    `top` and `bottom` are lists of `(lch, share)` from `garment_palette`.
    """
    rows = []
    for (t_lch, t_share), (b_lch, b_share) in zip(top, bottom):
        t, b = t_lch[0], b_lch[0]
        d = float(harmony.hue_distance(t[2], b[2]))
        t_neutral, b_neutral = bool(harmony.is_neutral(*t)), bool(harmony.is_neutral(*b))
        pair = [
            d / 180.0, abs(np.cos(np.radians(d))),
            float(d <= harmony.ANALOGOUS_MAX_DEG), float(d >= harmony.COMPLEMENTARY_MIN_DEG),
            abs(t[0] - b[0]), abs(t[1] - b[1]),
            float(np.linalg.norm(space.oklch_to_oklab(t) - space.oklch_to_oklab(b))),
            float(t_neutral or b_neutral), float(t_neutral and b_neutral),
            float(harmony.harmonious(t, b)),
        ]
        rows.append(np.concatenate([garment_features(t_lch, t_share), garment_features(b_lch, b_share), pair]))
    return np.array(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))


class PaletteModel(Predictor):
    siamese = False  # one pair-feature classifier: no encoder / head to split
    """k-means palettes + pair features + logistic regression.

    Same scoring interface as the other models: `image_size`,
    `predict_batch(tops, bottoms)` on `load_image` arrays, and
    `predict_paths(top_paths, bottom_paths)`. Palettes of image files are
    memoised per path and size within the process.
    """

    kind = "palette"
    backbone_name = "palette"
    pairing = "pair-features"
    weights = "none (colour features)"

    def __init__(self, image_size=64, colours=3, C=1.0, seed=0, classifier=None, training=None):
        self.image_size = int(image_size)
        self.colours = int(colours)
        self.C = float(C)
        self.seed = int(seed)
        self.classifier = classifier
        self.training = training or {}
        self._palettes = {}

    # --- features ---
    def palette_of_image(self, rgb_uint8):
        return garment_palette(rgb_uint8, self.colours, self.seed)

    def palette_of_path(self, path):
        key = (os.path.abspath(path), self.image_size)
        if key not in self._palettes:
            self._palettes[key] = self.palette_of_image(load_image(path, self.image_size))
        return self._palettes[key]

    def features_of_paths(self, top_paths, bottom_paths):
        return pair_features([self.palette_of_path(p) for p in top_paths],
                             [self.palette_of_path(p) for p in bottom_paths])

    # --- training and scoring ---
    def fit(self, manifest):
        """Train the classifier on every pair of `manifest`; returns self."""
        x = self.features_of_paths(manifest.column("top"), manifest.column("bottom"))
        self.classifier = fit_logistic(x, manifest.labels, C=self.C, seed=self.seed)
        self.training = {"data": manifest.path, "pairs": len(manifest)}
        return self

    def _require_trained(self):
        if self.classifier is None:
            raise ValueError("the palette model is not trained yet (call fit)")

    def predict_paths(self, top_paths, bottom_paths):
        self._require_trained()
        return predict_logistic(self.classifier, self.features_of_paths(top_paths, bottom_paths))

    def predict_batch(self, tops, bottoms):
        """p_harmonious of `[N, S, S, 3]` uint8 images from `load_image` at `image_size`."""
        self._require_trained()
        x = pair_features([self.palette_of_image(t) for t in np.asarray(tops).astype(np.uint8)],
                          [self.palette_of_image(b) for b in np.asarray(bottoms).astype(np.uint8)])
        return predict_logistic(self.classifier, x)

    # --- saving ---
    def to_json(self):
        self._require_trained()
        return {"format": FORMAT, "kind": self.kind, "version": VERSION, "image_size": self.image_size,
                "colours": self.colours, "C": self.C, "seed": self.seed,
                "feature_names": list(FEATURE_NAMES), "classifier": self.classifier,
                "training": self.training}

    def save(self, path):
        """Write the model as one JSON file (atomic); returns the path."""
        write_json(path, self.to_json())
        return path

    @classmethod
    def from_json(cls, data, path="<model>"):
        if list(data.get("feature_names", [])) != list(FEATURE_NAMES):
            raise UserError(f"{path}: palette features differ from this version's; retrain the model")
        return cls(data["image_size"], data["colours"], data.get("C", 1.0), data.get("seed", 0),
                   classifier=data["classifier"], training=data.get("training"))
