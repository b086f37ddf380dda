"""Why p moves between renders and photos: the library behind `python -m neipalette_tf.photo_shift`.

A model trained on rendered pairs meets photos that differ from the renders
in several ways at once. This module takes them one at a time: each
*condition* changes the synthetic test pairs' image files the way photos
differ (a portrait frame that the letterbox pads, a large image that the
loader scales down, JPEG at a phone's quality, camera noise, dim or
coloured light, a hard shadow, a garment small in the frame), scores the
changed pairs with the model, and reports how far the verdicts move:
accuracy at the product's threshold, ROC-AUC, ECE, the mean logit of each
class and the share of harmonious pairs called clashing. The same figures
on real photos (`../shared/real-pairs-dev`) sit beside them, so a condition
that moves the renders the way photos are moved is visible.

Light and noise conditions act on the top's and the bottom's photo alike
(one scene, one camera); they change colours a little, so a label may
honestly change under them: read them as sensitivity, not as error.

Every condition is a function of the encoded file (bytes -> bytes) applied
before `core.preprocessing.load_image`, the one preprocessing function, so
what is measured is what a user's photo goes through.
"""

import io
import math

import numpy as np
from PIL import Image, ImageFilter

from neipalette_tf.colour.space import linear_to_srgb, srgb_to_linear
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.evaluation.calibration import expected_calibration_error
from neipalette_tf.evaluation.metrics import classification_metrics

THRESHOLD = 0.5


def _open(data):
    return Image.open(io.BytesIO(data)).convert("RGB")


def _jpeg(image, quality=92):
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _portrait(data, rng):
    """A 3:4 portrait frame (photos are 400 x 533): the render's sides cropped, so the letterbox pads them."""
    im = _open(data)
    w, h = im.size
    keep = int(round(h * 0.75))
    left = (w - keep) // 2
    return _jpeg(im.crop((left, 0, left + keep, h)))


def _large(data, rng):
    """The render as a 400 x 400 photo: scaled up (bicubic), so the loader scales it down as it does photos."""
    return _jpeg(_open(data).resize((400, 400), Image.BICUBIC))


def _phone_jpeg(data, rng):
    """JPEG at quality 60, chroma subsampled (a messaging app's re-encode)."""
    return _jpeg(_open(data), quality=60)


def _noise(data, rng):
    """Camera noise: Gaussian, sigma 6 of 255, per pixel and channel."""
    x = np.asarray(_open(data), np.float32)
    x = x + rng.normal(0.0, 6.0, x.shape)
    return _jpeg(Image.fromarray(np.clip(np.round(x), 0, 255).astype(np.uint8)))


def _blur(data, rng):
    """Out of focus: a Gaussian blur of 1 % of the image side."""
    im = _open(data)
    return _jpeg(im.filter(ImageFilter.GaussianBlur(radius=max(im.size) * 0.01)))


def _relight(data, factor):
    """The photo with its linear light times `factor` (broadcast over `[H, W, 3]`)."""
    linear = np.clip(srgb_to_linear(np.asarray(_open(data)) / 255.0) * factor, 0.0, 1.0)
    return _jpeg(Image.fromarray(np.round(linear_to_srgb(linear) * 255).astype(np.uint8)))


def _dim(data, rng):
    """Dim light: 60 % of the light (linear RGB), the whole scene."""
    return _relight(data, np.array([0.6, 0.6, 0.6]))


def _warm(data, rng):
    """Warm indoor light: linear gains R 1.0, G 0.9, B 0.7 (about 3500 K against daylight)."""
    return _relight(data, np.array([1.0, 0.9, 0.7]))


def _shadow(data, rng):
    """A hard shadow: the left 40 % of the image at 45 % of the light."""
    width = _open(data).size[0]
    factor = np.ones((1, width, 1))
    factor[:, :int(round(width * 0.4))] = 0.45
    return _relight(data, factor)


def _small(data, rng):
    """The garment small and off-centre: the render at half size on its own border colour, in a corner."""
    im = _open(data)
    w, h = im.size
    x = np.asarray(im)
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]]).mean(axis=0)
    canvas = Image.new("RGB", (w, h), tuple(int(round(v)) for v in border))
    small = im.resize((w // 2, h // 2), Image.BILINEAR)
    canvas.paste(small, (int(w * 0.45), int(h * 0.05)))
    return _jpeg(canvas)


# name -> (what it imitates, bytes -> bytes); "rendered" is the synthetic test split as it is.
CONDITIONS = {
    "rendered": ("the synthetic test split as rendered", None),
    "portrait": ("3:4 portrait frame, padded by the letterbox", _portrait),
    "large": ("a 400 px photo scaled down by the loader", _large),
    "jpeg60": ("JPEG quality 60", _phone_jpeg),
    "noise": ("camera noise, sigma 6/255", _noise),
    "blur": ("out of focus, blur 1 % of the side", _blur),
    "dim": ("60 % light, top and bottom alike", _dim),
    "warm": ("warm indoor light, top and bottom alike", _warm),
    "shadow": ("hard shadow over 40 % of each photo", _shadow),
    "small": ("garment at half size, off-centre", _small),
}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def load_pairs(manifest, size, condition=None, seed=0):
    """The manifest's pairs as uint8 arrays `[N, S, S, 3]` twice, each file changed by `condition` first."""
    rng = np.random.default_rng(seed)
    change = CONDITIONS[condition][1] if condition else None
    tops, bottoms = [], []
    for row in manifest.rows:
        for path, out in ((row["top"], tops), (row["bottom"], bottoms)):
            data = _read(path)
            out.append(load_image(change(data, rng) if change else data, size))
    return np.stack(tops), np.stack(bottoms)


# What calibration after training sees when it calibrates "on what resembles photos": each validation
# pair under one of these, in a seeded rotation (renders as they are among them).
PHOTO_MIX = tuple(CONDITIONS)


class PhotoLike:
    """A split's pairs as photos: each pair under one `PHOTO_MIX` condition (seeded), decoded once.

    Quacks like `data.pipeline.PairData` for `evaluation.calibration.calibrate`:
    `labels`, `conditions` (each pair's) and `dataset(batch_size)`.
    """

    def __init__(self, manifest, image_size, seed=0, mix=PHOTO_MIX):
        rng = np.random.default_rng(seed)
        self.manifest, self.image_size, self.labels = manifest, image_size, manifest.labels
        order = rng.permutation(len(manifest))
        self.conditions = [mix[int(i) % len(mix)] for i in np.argsort(order)]
        tops, bottoms = [], []
        for row, condition in zip(manifest.rows, self.conditions):
            change = CONDITIONS[condition][1]
            for path, out in ((row["top"], tops), (row["bottom"], bottoms)):
                data = _read(path)
                out.append(load_image(change(data, rng) if change else data, image_size))
        self.top, self.bottom = np.stack(tops), np.stack(bottoms)

    def __len__(self):
        return len(self.labels)

    def dataset(self, batch_size, **_):
        from neipalette_tf.data.pipeline import pair_dataset_from_arrays  # TensorFlow: only when a model runs

        return pair_dataset_from_arrays(self.top, self.bottom, self.labels, batch_size)


def figures(labels, p, threshold=THRESHOLD):
    """Accuracy at `threshold`, ROC-AUC, ECE, mean logit per class and the share of harmonious pairs called clashing."""
    labels, p = np.asarray(labels, np.int32), np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    m = classification_metrics(labels, p, threshold=threshold, n_bootstrap=0)
    logit = np.log(p / (1 - p))
    harmonious = labels == 1
    return {
        "n": int(len(labels)), "accuracy": float(m["accuracy"]), "roc_auc": m["roc_auc"],
        "ece": expected_calibration_error(np.stack([1 - p, p], axis=-1), labels),
        "logit_harmonious": float(logit[harmonious].mean()) if harmonious.any() else None,
        "logit_clashing": float(logit[~harmonious].mean()) if (~harmonious).any() else None,
        "harmonious_called_clashing": float((p[harmonious] < threshold).mean()) if harmonious.any() else None,
    }


def measure(predictor, synthetic, real=None, conditions=None, limit=None, log=print):
    """The figures of every condition on `synthetic` (a Manifest, e.g. the test split) and of `real` (a Manifest).

    `limit`: the first `limit` synthetic pairs only (a quicker look). Returns
    `{"conditions": {name: figures}, "real": figures or None}`.
    """
    names = list(conditions or CONDITIONS)
    if limit:
        synthetic = type(synthetic)(synthetic.path, synthetic.rows[:limit], synthetic.has_split)
    out = {"conditions": {}, "real": None}
    for name in names:
        tops, bottoms = load_pairs(synthetic, predictor.image_size, None if name == "rendered" else name)
        p = predictor.predict_batch(tops, bottoms)
        out["conditions"][name] = figures(synthetic.labels, p)
        log(f"{name:10s} {_row(out['conditions'][name])}")
    if real is not None:
        tops, bottoms = load_pairs(real, predictor.image_size)
        p = predictor.predict_batch(tops, bottoms)
        out["real"] = figures(real.labels, p)
        out["real_p"] = [float(v) for v in p]
        log(f"{'real':10s} {_row(out['real'])}")
    return out


def _fmt(v, spec=".3f"):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _row(f):
    return (f"n {f['n']:4d}  acc {_fmt(f['accuracy'])}  AUC {_fmt(f['roc_auc'])}  ECE {_fmt(f['ece'])}  "
            f"logit+ {_fmt(f['logit_harmonious'], '+.2f')}  logit- {_fmt(f['logit_clashing'], '+.2f')}  "
            f"harmonious->clashing {_fmt(f['harmonious_called_clashing'])}")


def markdown(result, cpu=""):
    """The figures as a markdown table (the conditions, then the real photos)."""
    lines = ["| pairs | imitates | n | accuracy | ROC-AUC | ECE | mean logit, harmonious | mean logit, clashing "
             "| harmonious called clashing |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [(name, CONDITIONS[name][0], f) for name, f in result["conditions"].items()]
    if result.get("real"):
        rows.append(("real photos", "`../shared/real-pairs-dev`", result["real"]))
    for name, what, f in rows:
        lines.append(f"| {name} | {what} | {f['n']} | {_fmt(f['accuracy'])} | {_fmt(f['roc_auc'])} | "
                     f"{_fmt(f['ece'])} | {_fmt(f['logit_harmonious'], '+.2f')} | "
                     f"{_fmt(f['logit_clashing'], '+.2f')} | {_fmt(f['harmonious_called_clashing'])} |")
    if cpu:
        lines += ["", cpu]
    return "\n".join(lines)
