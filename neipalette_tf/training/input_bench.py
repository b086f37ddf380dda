"""Is the input pipeline fast enough? The measurement: the library behind `python -m neipalette_tf.bench_input`.

The command, its flags and what it writes are described in `neipalette_tf/commands/bench_input.py`;
this module holds the work, callable from Python.
"""

import time

import keras

from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.data.pipeline import PairData
from neipalette_tf.models import build_classifier
from neipalette_tf.training.loop import TrainingSetup
from neipalette_tf.training.prepare import prepare_manifest

REQUIRED_RATIO = 5.0


def _rate(pairs, seconds):
    return pairs / max(seconds, 1e-9)


def measure(cfg, pipeline_batches=100, steps=10):
    """Decode, pipeline and training-step rates (pairs/s) for a resolved config; a dict."""
    manifest = prepare_manifest(cfg).subset("train")
    size, batch = cfg["model"]["image_size"], cfg["train"]["batch_size"]


    t0 = time.perf_counter()
    data = {"train": PairData(manifest, size)}
    decode = _rate(len(data["train"]), time.perf_counter() - t0)
    data["val"] = data["train"]

    keras.utils.set_random_seed(0)
    m = cfg["model"]
    model, _ = build_classifier(m["backbone"], size, m["pairing"], "none", m["head_units"], m["dropout"],
                                log=lambda s: None, head_projection=m["head_projection"])
    setup = TrainingSetup(model, data, cfg["train"], seed=0)  # the training step `train` runs
    it = iter(setup.train_ds.repeat())
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(pipeline_batches):
        next(it)
    pipeline = _rate(pipeline_batches * batch, time.perf_counter() - t0)

    setup.compile(1e-3, 1000)
    x, y = next(it)
    for _ in range(3):
        setup.trainee.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        setup.trainee.train_on_batch(x, y)
    step = _rate(steps * batch, time.perf_counter() - t0)

    ratio = pipeline / step
    result = {"backbone": cfg["model"]["backbone"], "image_size": size, "batch_size": batch,
              "train_pairs": len(data["train"]), "decode_pairs_per_s": round(decode, 1),
              "pipeline_pairs_per_s": round(pipeline, 1), "train_step_pairs_per_s": round(step, 1),
              "pipeline_over_step": round(ratio, 1), "required": REQUIRED_RATIO,
              "ok": bool(ratio >= REQUIRED_RATIO), "cpu": cpu_summary(as_dict=True)}
    return result
