"""tf.data input pipeline for pair manifests.

    rows -> load_image (decode, EXIF, letterbox to S x S; parallel) -> cache
         -> shuffle -> [draw a warp per pair] -> batch -> [warp] (train only) -> prefetch

Images are decoded by `neipalette_tf.core.preprocessing.load_image`, the same
function every runtime uses. With `cache=True` (default) all images are
decoded once, in a thread pool, into one uint8 array (`S*S*3` bytes per
image: 6,000 pairs at 48 px take 83 MB); a bad file then stops the run
before training with one line naming it. With `cache=False` images are
decoded on the fly in a parallel `map` (for data that does not fit in memory).

Augmentation keeps the label: each garment independently gets a random
horizontal flip, a random crop of `crop_scale` of its side (scale and
position), and a small rotation, all as one bilinear affine warp with
reflected borders. Nothing changes colour: no hue, saturation, brightness
or contrast jitter.

Example:

>>> import numpy as np
>>> ds = pair_dataset_from_arrays(
...     np.zeros((4, 32, 32, 3), "uint8"), np.zeros((4, 32, 32, 3), "uint8"),
...     np.array([0, 1, 0, 1]), batch_size=2, training=True,
...     augment={"flip": True, "crop_scale": [0.8, 1.0], "rotation_deg": 8.0})
>>> x, y = next(iter(ds))
>>> sorted(x), x["top"].shape, x["top"].dtype.name, y.dtype.name
(['bottom', 'top'], TensorShape([2, 32, 32, 3]), 'float32', 'int32')
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from neipalette_tf.colour import people
from neipalette_tf.colour.harmony import harmonious
from neipalette_tf.colour.space import LINEAR_KNEE, SRGB_KNEE, oklab_to_oklch, oklch_to_oklab
from neipalette_tf.core.preprocessing import load_image

AUTOTUNE = tf.data.AUTOTUNE
# Colour targets are OKLab (L, a, b) times this: a and b span about -1.3..1.3.
COLOUR_TARGET_SCALE = np.array([1.0, 4.0, 4.0])
LABEL_KEY = "logits"  # the pair label's key in dict targets: the training graph's logits output


def load_images(paths, image_size, workers=None, progress=None):
    """Decode `paths` into a uint8 array `[len(paths), S, S, 3]`.

    Raises `ImageLoadError` for the first file that cannot be used.
    """
    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    workers = workers or min(8, (os.cpu_count() or 1) * 2)

    def _one(i):
        out[i] = load_image(paths[i], image_size)

    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(_one, range(len(paths))):
            if progress is not None:
                progress.update(1)
    return out


def augmentation_params(seed, crop_scale=(0.8, 1.0), rotation_deg=8.0, flip=True, n=None):
    """Random warp parameters `[5]` (or `[n, 5]`): crop scale, angle (rad), x / y shift in
    units of the free room, mirror (1.0 or 0.0). Stateless: the same seed, the same draw."""
    shape = [] if n is None else [n]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    scale = tf.random.stateless_uniform(shape, seeds[0], crop_scale[0], crop_scale[1])
    angle = tf.random.stateless_uniform(shape, seeds[1], -1.0, 1.0) * (rotation_deg * math.pi / 180.0)
    shift_x = tf.random.stateless_uniform(shape, seeds[2], -1.0, 1.0)
    shift_y = tf.random.stateless_uniform(shape, seeds[3], -1.0, 1.0)
    mirror = tf.random.stateless_uniform(shape, seeds[4]) < 0.5 if flip else tf.zeros(shape, tf.bool)
    return tf.stack([scale, angle, shift_x, shift_y, tf.cast(mirror, tf.float32)], axis=-1)


def warp_images(images, params):
    """Apply `augmentation_params` `[N, 5]` to a batch `[N, S, S, 3]` float32: one bilinear affine
    warp per image, borders reflected. The output keeps the input's static shape (the model's
    graph, `training.conv_gradients` included, sees the image size)."""
    size = tf.cast(tf.shape(images)[1], tf.float32)
    scale, angle, unit_x, unit_y, mirror = tf.unstack(params, axis=1)
    room = (1.0 - scale) * size / 2.0
    shift_x, shift_y = unit_x * room, unit_y * room
    fx = 1.0 - 2.0 * mirror
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel p maps to input c + shift + scale * R(angle) * F * (p - c).
    a0, a1 = scale * cos * fx, -scale * sin
    b0, b1 = scale * sin * fx, scale * cos
    c = (size - 1.0) / 2.0
    a2 = c + shift_x - (a0 * c + a1 * c)
    b2 = c + shift_y - (b0 * c + b1 * c)
    zeros = tf.zeros_like(scale)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",  # zoomed out (scale > 1): the border's colour, not a mirrored garment
    )
    warped.set_shape(images.shape)
    return warped


def light_params(seed, exposure=(0.55, 1.1), shadow=0.5, shadow_light=(0.35, 0.8)):
    """Random light `[2, 4]` for the two photos of one pair: exposure (shared), shadow light (1.0: no
    shadow), shadow edge angle (rad) and offset (-1..1 of the half side). Stateless: the same seed, the
    same draw.

    The light of the scene (photos at home are dim, lit from one side, with hard shadows): one
    `exposure` for both photos of a pair (one scene, so the two garments' colours keep their
    relation) and, on each photo with probability `shadow`, a hard shadow over part of it at
    `shadow_light` of the light. Applied in linear light (`light_images`), so a shadow darkens a
    fabric without turning its hue; the colour targets stay the fabric's.
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    gain = tf.random.stateless_uniform([], seeds[0], exposure[0], exposure[1])
    has = tf.random.stateless_uniform([2], seeds[1]) < shadow
    level = tf.random.stateless_uniform([2], seeds[2], shadow_light[0], shadow_light[1])
    angle = tf.random.stateless_uniform([2], seeds[3], -math.pi, math.pi)
    offset = tf.random.stateless_uniform([2], seeds[4], -0.6, 0.6)
    return tf.stack([tf.fill([2], gain), tf.where(has, level, tf.ones_like(level)), angle, offset], axis=-1)


def light_images(images, params):
    """Apply `light_params` rows `[N, 4]` to a batch `[N, S, S, 3]` float32 in 0..255 (sRGB): in linear
    light, every pixel times the exposure, and those past the shadow's straight edge times its level."""
    size = tf.shape(images)[1]
    gain, level, angle, offset = [p[:, None, None, None] for p in tf.unstack(params, axis=1)]
    grid = tf.linspace(-1.0, 1.0, size)
    yy, xx = grid[:, None], grid[None, :]
    side = tf.cast(tf.cos(angle) * xx[None, :, :, None] + tf.sin(angle) * yy[None, :, :, None] > offset,
                   tf.float32)
    factor = gain * (1.0 - side * (1.0 - level))
    x = tf.clip_by_value(images / 255.0, 0.0, 1.0)
    linear = tf.where(x <= SRGB_KNEE, x / 12.92, tf.pow((x + 0.055) / 1.055, 2.4))
    linear = tf.clip_by_value(linear * factor, 0.0, 1.0)
    srgb = tf.where(linear <= LINEAR_KNEE, linear * 12.92, 1.055 * tf.pow(tf.maximum(linear, 1e-12), 1 / 2.4) - 0.055)
    out = srgb * 255.0
    out.set_shape(images.shape)
    return out


def augment_images(images, seed, crop_scale=(0.8, 1.0), rotation_deg=8.0, flip=True):
    """Random flip / crop-scale / rotation of a batch `[N, S, S, 3]` float32.

    `seed` is a shape-[2] int tensor (stateless randomness): the same seed
    gives the same warp.
    """
    return warp_images(images, augmentation_params(seed, crop_scale, rotation_deg, flip, n=tf.shape(images)[0]))


def all_pairs_labels(top_colour, bottom_colour, harmony="rule-v1"):
    """Labels of every (top i, bottom j) combination in a batch, row-major `[B * B]`.

    Inputs are colour targets (scaled OKLab, `[B, 3]`). `harmony` is the label source:
    "rule-v1" (`neipalette_tf.colour.harmony.harmonious`) or "people" (the people model's rating
    at least `people.RATING_THRESHOLD`), the one implementation of each.
    """
    top = np.asarray(top_colour, np.float64) / COLOUR_TARGET_SCALE
    bottom = np.asarray(bottom_colour, np.float64) / COLOUR_TARGET_SCALE
    if harmony == "people":
        rating = people.default().rate(top[:, None, :], bottom[None, :, :])
        return (rating >= people.RATING_THRESHOLD).astype(np.int32).reshape(-1)
    top, bottom = oklab_to_oklch(top), oklab_to_oklch(bottom)
    return harmonious(top[:, None, :], bottom[None, :, :]).astype(np.int32).reshape(-1)


def _all_pairs_adder(harmony):
    def add(x, y):
        labels = tf.numpy_function(lambda t, b: all_pairs_labels(t, b, harmony),
                                   [y["top_colour"], y["bottom_colour"]], tf.int32)
        labels.set_shape([None])
        return x, dict(y, all_pairs=labels)
    return add


def _finish(ds, batch_size, training, augment, seed, all_pairs=False):
    """Batch, augment (training), convert to model inputs, prefetch.

    Each pair draws its own warp parameters *before* batching, from a
    seeded stream that follows the shuffled order: a pair's augmentation does
    not depend on which batch, replica or worker it lands in, so training
    on R replicas sees the same augmented pairs as training on one.
    """
    if training and augment:
        aug = {k: v for k, v in augment.items() if k != "light"}
        light = augment.get("light") or None  # None / absent: the light as rendered; else light_params' kwargs
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def _draw(pair, s):
            s_top, s_bottom, s_light = tf.unstack(tf.random.experimental.stateless_split(s, 3))
            warps = (augmentation_params(s_top, **aug), augmentation_params(s_bottom, **aug))
            if light is None:
                return (*pair, *warps)
            lights = light_params(s_light, **light)
            return (*pair, tf.concat([warps[0], lights[0]], 0), tf.concat([warps[1], lights[1]], 0))

        ds = tf.data.Dataset.zip((ds, seeds)).map(_draw, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size)

        def _augment(top, bottom, target, p_top, p_bottom):
            top = warp_images(tf.cast(top, tf.float32), p_top[:, :5])
            bottom = warp_images(tf.cast(bottom, tf.float32), p_bottom[:, :5])
            if light is not None:
                top, bottom = light_images(top, p_top[:, 5:]), light_images(bottom, p_bottom[:, 5:])
            return top, bottom, target

        ds = ds.map(_augment, num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.batch(batch_size)

    def _to_inputs(top, bottom, target):
        return {"top": tf.cast(top, tf.float32), "bottom": tf.cast(bottom, tf.float32)}, target

    ds = ds.map(_to_inputs, num_parallel_calls=AUTOTUNE)
    if all_pairs:  # True: rule v1 (before the label source was a choice); else "people" / "rule-v1"
        ds = ds.map(_all_pairs_adder("rule-v1" if all_pairs is True else all_pairs), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def pair_dataset_from_arrays(top, bottom, targets, batch_size, training=False, augment=None, seed=0,
                             all_pairs=False):
    """A batched pair dataset from decoded uint8 arrays (the cached path).

    `targets`: int labels `[N]`, or a dict of per-pair target arrays.
    """
    if not isinstance(targets, dict):
        targets = np.asarray(targets, dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((top, bottom, targets))
    if training:
        ds = ds.shuffle(len(top), seed=seed, reshuffle_each_iteration=True)
    return _finish(ds, batch_size, training, augment, seed, all_pairs)


def pair_dataset_streaming(top_paths, bottom_paths, targets, image_size, batch_size,
                           training=False, augment=None, seed=0, all_pairs=False):
    """A batched pair dataset that decodes images in a parallel map each epoch."""
    if not isinstance(targets, dict):
        targets = np.asarray(targets, dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((list(top_paths), list(bottom_paths), targets))
    if training:
        ds = ds.shuffle(len(top_paths), seed=seed, reshuffle_each_iteration=True)

    def _decode(path):
        image = tf.numpy_function(lambda p: load_image(p.decode(), image_size), [path], tf.uint8)
        image.set_shape((image_size, image_size, 3))
        return image

    ds = ds.map(lambda t, b, y: (_decode(t), _decode(b), y), num_parallel_calls=AUTOTUNE)
    return _finish(ds, batch_size, training, augment, seed, all_pairs)


class PairData:
    """Decoded images of one manifest split, ready to become datasets.

    When every row carries its garments' main colours (the synthetic set's
    `top_L, top_C, top_h, bottom_L, ...` columns), `colour_targets` holds
    them as OKLab for auxiliary supervision; otherwise it is None.
    """

    def __init__(self, manifest, image_size, cache=True, progress=None):
        self.manifest = manifest
        self.image_size = image_size
        self.labels = manifest.labels
        self.cache = cache
        self.colour_targets = _colour_targets(manifest)
        if cache:
            self.top = load_images(manifest.column("top"), image_size, progress=progress)
            self.bottom = load_images(manifest.column("bottom"), image_size, progress=progress)

    def __len__(self):
        return len(self.labels)

    def rating_targets(self):
        """People's rating of each pair's recorded main colours `[N]` (None without colours)."""
        if self.colour_targets is None:
            return None
        top, bottom = (self.colour_targets[k].astype(np.float64) / COLOUR_TARGET_SCALE
                       for k in ("top_colour", "bottom_colour"))
        return people.default().rate(top, bottom).astype(np.float32)

    def dataset(self, batch_size, training=False, augment=None, seed=0, colour_targets=False,
                all_pairs=False, rating=False):
        """Batches of `({"top", "bottom"}, label)`.

        With `colour_targets=True` the target is a dict: `logits` (the
        label, for the training graph's logits output; `LABEL_KEY`), `top_colour` and `bottom_colour` (OKLab main colours
        times `COLOUR_TARGET_SCALE`); `all_pairs` ("people", "rule-v1"; True: rule v1) adds
        `all_pairs`, that label source's label for every top-bottom combination in the batch;
        `rating=True` adds `rating`, people's rating of the recorded colours.
        """
        targets = self.labels
        if colour_targets or all_pairs or rating:
            targets = {LABEL_KEY: self.labels, **self.colour_targets}
            if rating:
                targets["rating"] = self.rating_targets()
        args = (batch_size, training, augment, seed, all_pairs)
        if self.cache:
            ds = pair_dataset_from_arrays(self.top, self.bottom, targets, *args)
        else:
            ds = pair_dataset_streaming(
                self.manifest.column("top"), self.manifest.column("bottom"), targets, self.image_size, *args)
        if (all_pairs or rating) and not colour_targets:
            keep = (LABEL_KEY,) + (("all_pairs",) if all_pairs else ()) + (("rating",) if rating else ())
            ds = ds.map(lambda x, y: (x, {k: y[k] for k in keep}))
        return ds


def _colour_targets(manifest):
    out = {}
    for garment in ("top", "bottom"):
        keys = [f"{garment}_{c}" for c in "LCh"]
        try:
            lch = np.array([[float(r[k]) for k in keys] for r in manifest.rows], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        out[f"{garment}_colour"] = (oklch_to_oklab(lch) * COLOUR_TARGET_SCALE).astype(np.float32)
    return out
