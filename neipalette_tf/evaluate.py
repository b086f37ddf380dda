"""Evaluate a trained model on any manifest.

    python -m neipalette_tf.evaluate --model runs/X/model.keras --data PATH [--split test|all] [--out DIR]

Writes metrics.json, predictions.csv, report.md, roc.png, confusion.png,
samples.png, reliability.png (ECE at T = 1 and at the model's temperature)
and, when the manifest records main colours, embedding_tsne.png into DIR (default: `eval-<data name>` beside the model). The
default split is `test` for a manifest with a split column, else `all`.
"""

import argparse
import sys

from neipalette_tf.core import cli
from neipalette_tf.evaluation.evaluate import evaluate


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True,
                   help="a trained model.keras, model.palette.json or model.probe.json")
    p.add_argument("--data", required=True, help="a pairs.csv manifest or a folder holding one")
    p.add_argument("--split", choices=("train", "val", "test", "all"))
    p.add_argument("--out", help="output folder")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--on-bad-input", choices=("error", "skip"), default="error",
                   help="bad manifest rows / images: stop with an error (default) or skip them (skipped.csv)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    evaluate(args.model, args.data, args.split, args.out, args.batch_size, args.on_bad_input)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
