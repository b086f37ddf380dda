"""Pair manifests as sharded TFRecord files, for data that does not fit in memory.

Write with `python -m neipalette_tf.data.to_tfrecord pairs.csv --out DIR --shards N`;
train with `python -m neipalette_tf.train --data DIR`.

A TFRecord folder holds, per split (`train`, `val`, `test`; the manifest's
split column, or the trainer's stratified 70/15/15 split from `--seed`):

- `SPLIT-00000-of-0000N.tfrecord` ... : one `tf.train.Example` per pair with
  `top/image` and `bottom/image` (bytes), `label` (0 clashing, 1 harmonious)
  and, when the manifest records them, the main colours `colour` =
  `[top_L, top_C, top_h, bottom_L, bottom_C, bottom_h]`;
- `SPLIT.csv`: the same pairs as a manifest (image paths as written,
  label, colours), in record order: labels, reports and predictions.csv
  come from it, nothing re-reads the images for them;
- `tfrecords.json`: what the folder holds (encoding, image size, splits,
  pairs and files per split, the source manifest).

Images are stored one of two ways (`encoding` in tfrecords.json):

- `bytes` (default): the image file's bytes as they are. Reading decodes
  them with `neipalette_tf.core.preprocessing.load_image` (through
  `tf.numpy_function`), the one preprocessing function, at the model's
  image size: the same pixels as training from the files.
- `pixels` (`--image-size S`): `load_image(file, S)`'s output, uint8
  `S x S x 3`, stored raw. Reading is a cheap `decode_raw` with no Python
  in the loop, but only a model of image size S can read the folder.

The train split's pairs are shuffled (with the seed) before they are cut
into contiguous shards; training reads the shards interleaved, in a
shuffled order, through a shuffle buffer. Evaluation reads them in order,
so predictions line up with `SPLIT.csv`.

Example:

>>> import tempfile, pathlib, numpy as np
>>> from PIL import Image
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rows = ["top,bottom,label,split"]
>>> for i, split in enumerate(["train"] * 4 + ["val"] * 2 + ["test"] * 2):
...     for kind, colour in (("t", (200, 30, 30)), ("b", (20, 20, 20 + 10 * i))):
...         Image.new("RGB", (20, 30), colour).save(d / f"{kind}{i}.png")
...     rows.append(f"t{i}.png,b{i}.png,{i % 2},{split}")
>>> _ = (d / "pairs.csv").write_text("\\n".join(rows) + "\\n")
>>> info = write_tfrecords(d / "pairs.csv", d / "shards", shards=2)
>>> info["splits"]["train"]["pairs"], len(info["splits"]["train"]["files"])
(4, 2)
>>> data = TFRecordPairData(d / "shards", "test", image_size=16)
>>> x, y = next(iter(data.dataset(batch_size=2)))
>>> x["top"].shape.as_list(), y.numpy().tolist()
([2, 16, 16, 3], [0, 1])
"""

import csv
import io
import json
import os
import re

import numpy as np
import tensorflow as tf

from neipalette_tf.core import staging
from neipalette_tf.core.io_utils import write_json, write_text
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import COLOUR_COLUMNS, SPLIT_FRACTIONS
from neipalette_tf.data.manifest import (
    SPLITS,
    Manifest,
    ManifestError,
    read_manifest,
    stratified_split,
)
from neipalette_tf.data.pipeline import (
    AUTOTUNE,
    COLOUR_TARGET_SCALE,
    LABEL_KEY,
    _colour_targets,
    _finish,
)

INFO_NAME = "tfrecords.json"
FORMAT = "neipalette-pairs-tfrecord"
VERSION = 1
ENCODINGS = ("bytes", "pixels")
SHUFFLE_BUFFER = 2048


_SHARD = re.compile(r"^(train|val|test)-\d{5}-of-\d{5}\.tfrecord$")


def tfrecord_owned(folder):
    """None when `folder` is provably a conversion of `write_tfrecords` (its `tfrecords.json`,
    shards and split indexes only), else why not (`core.staging`'s `owned` check)."""
    names = {INFO_NAME, *(f"{s}.csv" for s in SPLITS)}
    foreign = sorted(e for e in os.listdir(folder) if e not in names and not _SHARD.match(e))
    if foreign:
        return ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    try:
        with open(os.path.join(folder, INFO_NAME), encoding="utf-8") as f:
            if json.load(f).get("format") == FORMAT:
                return None
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        pass
    return f"no {INFO_NAME} of an earlier conversion"


def is_tfrecord_folder(path):
    """Whether `path` is a folder written by `write_tfrecords`."""
    return os.path.isfile(os.path.join(os.fspath(path), INFO_NAME))


def read_info(folder):
    """The folder's `tfrecords.json`; ManifestError naming the file when it is unusable."""
    path = os.path.join(os.fspath(folder), INFO_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{path}: not found (write the folder with python -m neipalette_tf.data.to_tfrecord)") from None
    except ValueError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise ManifestError(f"{path}: not a {FORMAT} version {VERSION} description")
    return info


def _has_colours(manifest):
    try:
        for row in manifest.rows:
            [float(row[c]) for c in COLOUR_COLUMNS]
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _example(row, encoding, image_size, colours):


    def image_bytes(path):
        if encoding == "pixels":
            return load_image(path, image_size).tobytes()
        load_image(path, 8)  # a file training could not decode stops the conversion, naming it
        with open(path, "rb") as f:
            return f.read()

    feature = {
        "top/image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes(row["top"])])),
        "bottom/image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes(row["bottom"])])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row["label"])])),
    }
    if colours:
        feature["colour"] = tf.train.Feature(float_list=tf.train.FloatList(
            value=[float(row[c]) for c in COLOUR_COLUMNS]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_index(path, rows, colours):


    columns = ["top", "bottom", "label", "split", *(COLOUR_COLUMNS if colours else ())]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    write_text(path, buf.getvalue())


def write_tfrecords(manifest_path, out, shards=8, image_size=None, seed=0, split_fractions=SPLIT_FRACTIONS,
                    log=None):
    """Write a manifest's pairs as TFRecord shards into `out`; returns the folder's info dict.

    Args:
        manifest_path: a pairs.csv (or a folder holding one).
        out: the output folder: written in a staging folder and swapped in complete
            (`core.staging`); an earlier conversion there is replaced, a folder holding
            anything else is refused (`UserError`) before any work.
        shards: files per split (fewer when a split has fewer pairs).
        image_size: None stores the files' bytes; S stores `load_image(file, S)` pixels.
        seed: shuffles the train split, and splits a manifest without a split column.
    """

    if shards < 1:
        raise ValueError(f"--shards must be >= 1, got {shards}")
    staging.check_output_folder(out)  # before any work
    manifest = read_manifest(manifest_path)
    if not manifest.has_split:
        manifest = manifest.with_splits(stratified_split(manifest.labels, split_fractions, seed))
    encoding = "bytes" if image_size is None else "pixels"
    colours = _has_colours(manifest)
    info = {"format": FORMAT, "version": VERSION, "source": manifest.path, "encoding": encoding,
            "image_size": image_size, "colours": colours, "seed": seed, "splits": {}}
    # Staged: `out` holds the complete earlier conversion or the complete new one, never a mix,
    # and a folder holding anything a conversion did not write is refused before any work.
    with staging.staged_folder(out, tfrecord_owned, "conversion") as st:
        _write_splits(manifest, st.path, shards, encoding, image_size, colours, seed, info, log)
        write_json(os.path.join(st.path, INFO_NAME), info)
    return info


def _write_splits(manifest, out, shards, encoding, image_size, colours, seed, info, log):
    for split in SPLITS:
        rows = [dict(r, split=split) for r in manifest.subset(split).rows]
        if not rows:
            continue
        if split == "train":
            rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
        n = min(shards, len(rows))
        bounds = np.linspace(0, len(rows), n + 1).round().astype(int)
        files = []
        for i in range(n):
            name = f"{split}-{i:05d}-of-{n:05d}.tfrecord"
            with tf.io.TFRecordWriter(os.path.join(out, name)) as writer:
                for row in rows[bounds[i]:bounds[i + 1]]:
                    writer.write(_example(row, encoding, image_size, colours))
            files.append(name)
        _write_index(os.path.join(out, f"{split}.csv"), rows, colours)
        info["splits"][split] = {"pairs": len(rows), "files": files, "index": f"{split}.csv",
                                 "labels": {"harmonious": sum(r["label"] for r in rows),
                                            "clashing": sum(1 - r["label"] for r in rows)}}
        if log:
            log(f"{split}: {len(rows)} pairs in {n} shard(s)")


def read_split_manifest(folder, split):
    """The pairs of one split, in record order, as a `Manifest` (from `SPLIT.csv`)."""
    info = read_info(folder)
    if split not in info["splits"]:
        raise ManifestError(f"{os.path.join(folder, INFO_NAME)}: no '{split}' split "
                            f"(it has {', '.join(info['splits']) or 'none'})")
    path = os.path.join(os.fspath(folder), info["splits"][split]["index"])
    manifest = read_manifest(path, check_files=False)
    rows = [dict(r, top=r["top"], bottom=r["bottom"]) for r in manifest.rows]
    return Manifest(manifest.path, rows, True)


class TFRecordPairData:
    """One split of a TFRecord folder, with the interface of `PairData` (`dataset`, `labels`, ...).

    Args:
        folder: written by `write_tfrecords`.
        split: "train", "val" or "test".
        image_size: the model's input size S (a `pixels` folder must have
            been written at S).
    """

    def __init__(self, folder, split, image_size):
        self.folder = os.fspath(folder)
        self.info = read_info(folder)
        self.split = split
        self.image_size = int(image_size)
        self.manifest = read_split_manifest(folder, split)
        self.labels = self.manifest.labels
        self.files = [os.path.join(self.folder, f) for f in self.info["splits"][split]["files"]]
        missing = [f for f in self.files if not os.path.isfile(f)]
        if missing:
            raise ManifestError(f"{missing[0]}: shard listed in {INFO_NAME} is missing")
        stored = self.info["image_size"]
        if self.info["encoding"] == "pixels" and stored != self.image_size:
            raise ManifestError(
                f"{os.path.join(self.folder, INFO_NAME)}: images stored as {stored} px pixels, the model takes "
                f"{self.image_size} px (convert again with --image-size {self.image_size}, or without it)")

        self.colour_targets = _colour_targets(self.manifest) if self.info["colours"] else None

    def __len__(self):
        return len(self.labels)

    def _decode(self, data):
        size = self.image_size
        if self.info["encoding"] == "pixels":
            image = tf.reshape(tf.io.decode_raw(data, tf.uint8), (size, size, 3))
        else:
            image = tf.numpy_function(lambda b: load_image(b, size), [data], tf.uint8)
        image.set_shape((size, size, 3))
        return image

    def dataset(self, batch_size, training=False, augment=None, seed=0, colour_targets=False, all_pairs=False):
        """Batches of `({"top", "bottom"}, target)`, exactly as `PairData.dataset` makes them."""


        features = {"top/image": tf.io.FixedLenFeature([], tf.string),
                    "bottom/image": tf.io.FixedLenFeature([], tf.string),
                    "label": tf.io.FixedLenFeature([], tf.int64)}
        with_colours = colour_targets or all_pairs
        if with_colours:
            if self.colour_targets is None:
                raise ManifestError(f"{self.folder}: the shards record no main colours")
            features["colour"] = tf.io.FixedLenFeature([6], tf.float32)
        scale = tf.constant(COLOUR_TARGET_SCALE, tf.float32)

        def oklab(lch):  # space.oklch_to_oklab, times the colour-target scale
            h = lch[2] * (np.pi / 180.0)
            return tf.stack([lch[0], lch[1] * tf.cos(h), lch[1] * tf.sin(h)]) * scale

        def parse(record):
            f = tf.io.parse_single_example(record, features)
            label = tf.cast(f["label"], tf.int32)
            target = label
            if with_colours:
                target = {LABEL_KEY: label, "top_colour": oklab(f["colour"][:3]),
                          "bottom_colour": oklab(f["colour"][3:])}
            return self._decode(f["top/image"]), self._decode(f["bottom/image"]), target

        if training:
            files = tf.data.Dataset.from_tensor_slices(self.files).shuffle(len(self.files), seed=seed)
            ds = files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(self.files), 8),
                                  num_parallel_calls=AUTOTUNE, deterministic=True)
            ds = ds.shuffle(min(SHUFFLE_BUFFER, len(self)), seed=seed, reshuffle_each_iteration=True)
        else:
            ds = tf.data.TFRecordDataset(self.files)  # in order: predictions line up with SPLIT.csv
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(self)))  # Keras then knows the epoch length
        ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = _finish(ds, batch_size, training, augment, seed, all_pairs)
        if all_pairs and not colour_targets:
            ds = ds.map(lambda x, y: (x, {LABEL_KEY: y[LABEL_KEY], "all_pairs": y["all_pairs"]}))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)
