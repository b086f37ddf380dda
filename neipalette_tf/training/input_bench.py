"""Is the input pipeline fast enough? `python -m neipalette_tf.bench_input [--config ...] [--data ...]`.

Measures on this machine, with the run's config:

1. decode: pairs/s of `load_image` on both garments (the first, cached pass);
2. pipeline: pairs/s of the training `tf.data` pipeline alone (shuffle,
   augment, batch, prefetch) after the cache is filled;
3. train step: pairs/s of the training step `train` runs (with its
   auxiliary outputs when the data has colours) on one fixed batch.

The pipeline must deliver at least 5x the training step rate so the model
never waits for data; the command exits 1 when it does not.
"""

import argparse
import json
import sys
import time

from neipalette_tf import cli
from neipalette_tf.cpu_info import cpu_summary

REQUIRED_RATIO = 5.0


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.bench_input", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML config (default: configs/resnet18.yaml)")
    p.add_argument("--data", help="synthetic data folder or pairs.csv")
    p.add_argument("--backbone")
    p.add_argument("--image-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--pipeline-batches", type=int, default=100)
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--json", help="also write the results to this JSON file")
    return p.parse_args(argv)


def _rate(pairs, seconds):
    return pairs / max(seconds, 1e-9)


def main(argv=None):
    args = parse_args(argv)
    from neipalette_tf import config as config_lib
    from neipalette_tf.train import prepare_manifest

    cfg = config_lib.resolve(args.config or config_lib.DEFAULT_CONFIG_PATH, {
        "data.path": args.data, "model.backbone": args.backbone,
        "model.image_size": args.image_size, "train.batch_size": args.batch_size})
    manifest = prepare_manifest(cfg).subset("train")
    size, batch = cfg["model"]["image_size"], cfg["train"]["batch_size"]

    import keras

    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.models import build_classifier
    from neipalette_tf.training import TrainingSetup

    t0 = time.perf_counter()
    data = {"train": PairData(manifest, size)}
    decode = _rate(len(data["train"]), time.perf_counter() - t0)
    data["val"] = data["train"]

    keras.utils.set_random_seed(0)
    model, _ = build_classifier(cfg["model"]["backbone"], size, cfg["model"]["pairing"], "none", log=lambda s: None)
    setup = TrainingSetup(model, data, cfg["train"], seed=0)  # the training step `train` runs
    it = iter(setup.train_ds.repeat())
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(args.pipeline_batches):
        next(it)
    pipeline = _rate(args.pipeline_batches * batch, time.perf_counter() - t0)

    setup.compile(1e-3, 1000)
    x, y = next(it)
    for _ in range(3):
        setup.trainee.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        setup.trainee.train_on_batch(x, y)
    step = _rate(args.steps * batch, time.perf_counter() - t0)

    ratio = pipeline / step
    result = {"backbone": cfg["model"]["backbone"], "image_size": size, "batch_size": batch,
              "train_pairs": len(data["train"]), "decode_pairs_per_s": round(decode, 1),
              "pipeline_pairs_per_s": round(pipeline, 1), "train_step_pairs_per_s": round(step, 1),
              "pipeline_over_step": round(ratio, 1), "required": REQUIRED_RATIO,
              "ok": bool(ratio >= REQUIRED_RATIO), "cpu": cpu_summary(as_dict=True)}
    print(cpu_summary())
    print(f"| {'measure':<24} | {'pairs/s':>10} |\n|{'-' * 26}|{'-' * 12}|")
    for key, name in (("decode_pairs_per_s", "decode (first pass)"), ("pipeline_pairs_per_s", "tf.data pipeline"),
                      ("train_step_pairs_per_s", "training step")):
        print(f"| {name:<24} | {result[key]:>10.1f} |")
    verdict = "OK" if result["ok"] else "TOO SLOW"
    print(f"pipeline / training step = {ratio:.1f}x (needs >= {REQUIRED_RATIO:.0f}x): {verdict}")
    if args.json:
        from neipalette_tf.io_utils import write_json

        write_json(args.json, result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
