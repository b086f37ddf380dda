"""TFRecord shards: conversion, and a round trip that gives load_image's arrays (training from shards: test_multiworker)."""

import json
import os

import numpy as np
import pytest

from neipalette_tf.data import tfrecord


@pytest.fixture(scope="module")
def shards(tiny_synth, tmp_path_factory):
    from neipalette_tf.commands import to_tfrecord

    out = tmp_path_factory.mktemp("shards")
    assert to_tfrecord.main([str(tiny_synth / "pairs.csv"), "--out", str(out), "--shards", "3"]) == 0
    return out


def test_round_trip_matches_load_image(shards, tiny_synth, tmp_path):
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import PairData

    info = json.loads((shards / "tfrecords.json").read_text())
    assert info["encoding"] == "bytes" and info["colours"]
    assert {s: v["pairs"] for s, v in info["splits"].items()} == {"train": 56, "val": 12, "test": 12}
    assert len(info["splits"]["train"]["files"]) == 3
    test = read_manifest(tiny_synth).subset("test")
    for size in (32, 48):
        data = tfrecord.TFRecordPairData(shards, "test", size)
        x, y = next(iter(data.dataset(batch_size=64, colour_targets=True)))
        reference = PairData(test, size)  # load_image, as training from the files
        np.testing.assert_array_equal(np.asarray(x["top"]).astype(np.uint8), reference.top)
        np.testing.assert_array_equal(np.asarray(x["bottom"]).astype(np.uint8), reference.bottom)
        np.testing.assert_array_equal(y["logits"].numpy(), test.labels)
        np.testing.assert_allclose(y["top_colour"].numpy(), reference.colour_targets["top_colour"], atol=1e-5)
    # Pixels at the model size: the same arrays, and a clear error for another size.
    pixels = tmp_path / "pixels"
    tfrecord.write_tfrecords(tiny_synth, pixels, shards=2, image_size=32)
    x, _ = next(iter(tfrecord.TFRecordPairData(pixels, "test", 32).dataset(batch_size=64)))
    np.testing.assert_array_equal(np.asarray(x["top"]).astype(np.uint8), PairData(test, 32).top)
    with pytest.raises(tfrecord.ManifestError, match="stored as 32 px"):
        tfrecord.TFRecordPairData(pixels, "test", 48)
    # Training order: every train pair once per epoch, interleaved across shards.
    train = tfrecord.TFRecordPairData(shards, "train", 32)
    labels = np.concatenate([y.numpy() for _, y in train.dataset(16, training=True, augment=None)])
    assert sorted(labels.tolist()) == sorted(train.labels.tolist())


def test_bad_image_stops_the_conversion_and_leaves_nothing(tiny_synth, tmp_path):
    import shutil

    from neipalette_tf.commands import to_tfrecord

    data = tmp_path / "data"
    shutil.copytree(tiny_synth, data)
    first = sorted((data / "images").iterdir())[0]
    first.write_bytes(b"not an image")
    out = tmp_path / "out"
    with pytest.raises(Exception, match=first.name):
        to_tfrecord.main([str(data / "pairs.csv"), "--out", str(out)])
    assert not out.exists() or os.listdir(out) == []
    assert sorted(os.listdir(tmp_path)) == ["data"] or sorted(os.listdir(tmp_path)) == ["data", "out"]  # no staging


def test_conversion_replaces_its_own_output_and_refuses_anyone_elses(tiny_synth, tmp_path):
    from neipalette_tf.core.cli import UserError
    from neipalette_tf.data import tfrecord

    out = tmp_path / "shards"
    tfrecord.write_tfrecords(tiny_synth, out, shards=3, image_size=16)
    first = sorted(os.listdir(out))
    assert "tfrecords.json" in first and any(n.startswith("train-") for n in first)
    tfrecord.write_tfrecords(tiny_synth, out, shards=1, image_size=16)  # its own earlier conversion: replaced
    assert "train-00000-of-00001.tfrecord" in os.listdir(out) and "train-00000-of-00003.tfrecord" not in os.listdir(out)
    assert sorted(os.listdir(tmp_path)) == ["shards"]  # no staging folder left behind

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.csv").write_text("my own notes\n")
    (mine / "old-00000.tfrecord").write_bytes(b"my own records")
    with pytest.raises(UserError, match="did not write"):
        tfrecord.write_tfrecords(tiny_synth, mine, shards=1, image_size=16)
    assert (mine / "train.csv").read_text() == "my own notes\n"
    assert sorted(os.listdir(mine)) == ["old-00000.tfrecord", "train.csv"]


# Training from shards (with calibration and the embedding view): tests/training/test_multiworker.py.
