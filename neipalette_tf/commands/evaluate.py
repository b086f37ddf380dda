"""Evaluate a trained model on any manifest.

    python -m neipalette_tf.evaluate --model runs/X/model.keras --data PATH [--split test|all] [--out DIR]

Writes metrics.json, predictions.csv, report.md, roc.png, confusion.png,
samples.png, reliability.png (ECE at T = 1 and at the model's temperature)
and, when the manifest records main colours, embedding_tsne.png into DIR (default: `eval-<data name>` beside the model). The
default split is `test` for a manifest with a split column, else `all`.

    python -m neipalette_tf.evaluate --model M --human PATH/themes.csv [--themes heldout|all] [--limit N] [--seed S]
        [--both-orders] [--out DIR]

Agreement with people (`neipalette_tf.evaluation.human`): every rated theme's colour pairs drawn
as plain garments and scored by any model or export; the Spearman and pairwise accuracy of the
theme scores against people's ratings, beside rule v1 and the people model, into human.json and
human.md (default DIR: `human-<themes name>` beside the model). Default: the held-out themes only.
"""

import argparse
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.vocabulary import SPLIT_CHOICES
from neipalette_tf.data.bad_input import MODES as ON_BAD_INPUT
from neipalette_tf.evaluation.evaluate import evaluate


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True,
                   help="a trained model.keras, model.palette.json or model.probe.json")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a pairs.csv manifest or a folder holding one")
    source.add_argument("--human", metavar="THEMES",
                        help="a themes.csv of people's ratings: report the model's agreement with people")
    p.add_argument("--split", choices=SPLIT_CHOICES)
    p.add_argument("--out", help="output folder")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--on-bad-input", choices=ON_BAD_INPUT, default="error",
                   help="bad manifest rows / images: stop with an error (default) or skip them (skipped.csv)")
    human = p.add_argument_group("--human options")
    human.add_argument("--themes", choices=("heldout", "all"), default="heldout",
                       help="the themes the people model was not fitted on (default), or all of them")
    human.add_argument("--limit", type=int, help="only the first N themes (quick checks)")
    human.add_argument("--seed", type=int, default=0, help="the garments' randomness (default 0)")
    human.add_argument("--both-orders", action="store_true", help="also draw each pair with top and bottom swapped")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.human:
        from neipalette_tf.evaluation.human import evaluate_human

        evaluate_human(args.model, args.human, args.themes, args.limit, args.seed, args.out, args.batch_size,
                       args.both_orders)
        return 0
    evaluate(args.model, args.data, args.split, args.out, args.batch_size, args.on_bad_input)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
