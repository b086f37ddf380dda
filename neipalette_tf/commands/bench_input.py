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
import sys

from neipalette_tf.core import cli, cpu_info

# Before the imports below load TensorFlow: oneDNN's training kernels unless TF_ENABLE_ONEDNN_OPTS is set.
cpu_info.prefer_onednn_for_training("bench_input")

from neipalette_tf.core.cpu_info import cpu_summary  # noqa: E402
from neipalette_tf.core.io_utils import write_json  # noqa: E402
from neipalette_tf.training import config as config_lib  # noqa: E402


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


def main(argv=None):
    args = parse_args(argv)

    cfg = config_lib.resolve(config_lib.config_path(args.config), {
        "data.path": args.data, "model.backbone": args.backbone,
        "model.image_size": args.image_size, "train.batch_size": args.batch_size})
    from neipalette_tf.training.input_bench import REQUIRED_RATIO, measure  # TensorFlow loads here

    result = measure(cfg, args.pipeline_batches, args.steps)
    ratio = result["pipeline_over_step"]
    print(cpu_summary())
    print(f"| {'measure':<24} | {'pairs/s':>10} |\n|{'-' * 26}|{'-' * 12}|")
    for key, name in (("decode_pairs_per_s", "decode (first pass)"), ("pipeline_pairs_per_s", "tf.data pipeline"),
                      ("train_step_pairs_per_s", "training step")):
        print(f"| {name:<24} | {result[key]:>10.1f} |")
    verdict = "OK" if result["ok"] else "TOO SLOW"
    print(f"pipeline / training step = {ratio:.1f}x (needs >= {REQUIRED_RATIO:.0f}x): {verdict}")
    if args.json:
        write_json(args.json, result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
