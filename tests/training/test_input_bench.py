"""The input-pipeline measurement behind `python -m neipalette_tf.bench_input`
(neipalette_tf.training.input_bench.measure), in the fast tier.

The command with the run's real model (ResNet18, its traced training step) is
tests/training/test_bench_input.py, in the full tier. Here `measure` runs on a
20-pair synthetic set with the real decode, tf.data pipeline, `TrainingSetup`
and `HarmonyClassifier`, but a one-convolution backbone whose training steps
run eagerly (no graph to trace) and no auxiliary outputs: seconds, not a minute. What is checked is
`measure`'s own contract: the keys it documents, finite positive rates that
are the pairs it timed over the seconds it timed, the verdict against
`REQUIRED_RATIO`, and the run's model and data.
"""

import json
import math

import keras
import pytest

from neipalette_tf.data import synth
from neipalette_tf.models import HarmonyClassifier
from neipalette_tf.training import config as config_lib
from neipalette_tf.training import input_bench
from neipalette_tf.training.prepare import prepare_manifest

KEYS = {"backbone", "image_size", "batch_size", "train_pairs", "decode_pairs_per_s", "pipeline_pairs_per_s",
        "train_step_pairs_per_s", "pipeline_over_step", "required", "ok", "cpu"}


class _Clock:
    """input_bench's `time`, passing the real clock through and keeping every reading."""

    def __init__(self):
        import time

        self._time, self.readings = time, []

    def perf_counter(self):
        self.readings.append(self._time.perf_counter())
        return self.readings[-1]


def test_measure_reports_the_documented_rates_of_the_run(tmp_path, monkeypatch):
    data = tmp_path / "synth"
    synth.generate(data, pairs=20, seed=0, image_size=32, workers=1, progress=False)
    batch, pipeline_batches, steps = 4, 3, 1
    cfg = config_lib.resolve(config_lib.config_path(None), {  # no auxiliary outputs: a lighter eager step
        "data.path": str(data), "model.image_size": 32, "train.batch_size": batch,
        "train.colour_loss_weight": 0.0, "train.all_pairs_loss_weight": 0.0, "train.rating_loss_weight": 0.0})

    built, step_calls = [], []

    def tiny_classifier(backbone, size, pairing, weights, head_units, dropout, log, head_projection):
        built.append((backbone, size, pairing, weights))
        conv = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, strides=4, padding="same")])
        model = HarmonyClassifier(conv, size, backbone, pairing, head_units=8, dropout=0.0, colour_channels=4,
                                  harmony=cfg["harmony"])
        return model, "none"

    class EagerSetup(input_bench.TrainingSetup):
        def compile(self, *args, **kwargs):
            super().compile(*args, **kwargs)
            self.trainee.run_eagerly = True  # no tf.function to trace
            real = self.trainee.train_on_batch
            self.trainee.train_on_batch = lambda *a, **k: (step_calls.append(1), real(*a, **k))[1]

    clock = _Clock()
    monkeypatch.setattr(input_bench, "build_classifier", tiny_classifier)
    monkeypatch.setattr(input_bench, "TrainingSetup", EagerSetup)
    monkeypatch.setattr(input_bench, "time", clock)
    result = input_bench.measure(cfg, pipeline_batches=pipeline_batches, steps=steps)

    assert set(result) == KEYS
    json.dumps(result)  # the command writes it as JSON
    train_pairs = len(prepare_manifest(cfg).subset("train"))
    assert result["train_pairs"] == train_pairs == synth.split_counts(20)["train"]
    assert (result["backbone"], result["image_size"], result["batch_size"]) == (cfg["model"]["backbone"], 32, batch)
    assert built == [(cfg["model"]["backbone"], 32, cfg["model"]["pairing"], "none")]  # the run's model, untrained
    assert len(step_calls) == 3 + steps  # three warm-up steps, then the timed ones

    # each rate: the pairs handled over the seconds between its two clock readings
    assert len(clock.readings) == 6
    seconds = [b - a for a, b in zip(clock.readings[::2], clock.readings[1::2])]
    pairs = (train_pairs, pipeline_batches * batch, steps * batch)
    keys = ("decode_pairs_per_s", "pipeline_pairs_per_s", "train_step_pairs_per_s")
    for key, n, s in zip(keys, pairs, seconds):
        assert math.isfinite(result[key]) and result[key] > 0, key
        assert result[key] == pytest.approx(n / s, abs=0.051), key  # reported to 0.1 pair/s
    ratio = (pairs[1] / seconds[1]) / (pairs[2] / seconds[2])
    assert result["pipeline_over_step"] == pytest.approx(ratio, abs=0.051)
    assert result["required"] == input_bench.REQUIRED_RATIO == 5.0
    assert result["ok"] is (ratio >= input_bench.REQUIRED_RATIO)
    assert result["cpu"]["cores"] >= 1


def test_a_rate_over_no_time_stays_finite():
    assert input_bench._rate(10, 2.0) == 5.0
    assert math.isfinite(input_bench._rate(10, 0.0)) and input_bench._rate(10, 0.0) > 0
