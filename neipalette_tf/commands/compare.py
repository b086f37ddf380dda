"""Compare evaluated NeiPalette models side by side.

Usage:

    python -m neipalette_tf.compare DIR [DIR ...] [--out DIR] [--names a,b,c]

Each DIR is a run or evaluation folder written by
`neipalette_tf.evaluation.report.write_evaluation` (it must hold `metrics.json` and
`predictions.csv`). Metrics are taken from `metrics.json` as they are, not
recomputed; the ROC curves are drawn from `predictions.csv`.

Model names come from `--names`, else from the metrics (backbone, plus
"-stacked" for stacked pairing), with the folder name added where two
models would otherwise share a name.

Writes into `--out` (default `runs/compare`):

- `compare.md`: the overall table (Accuracy, Precision, Recall, F1-score,
  ROC-AUC, its 95% CI, n; harmonious is the positive class) and the
  per-class table (Precision, Recall, F1-score, Support per model and class);
- `roc.png`: every model's ROC curve on one figure;
- `compare.json`: the names, folders and metrics of all models.

The markdown is also printed. A folder that cannot be used gives a one-line
error naming it and exit status 2 (`core.cli.run`).
"""

import argparse
import sys

from neipalette_tf.core import cli
from neipalette_tf.evaluation.compare import DEFAULT_OUT, compare


def main(argv=None):
    """CLI entry point; an unusable folder or option raises `CompareError` (one line, exit 2 via `cli.run`)."""
    parser = argparse.ArgumentParser(
        prog="python -m neipalette_tf.compare",
        description="Compare evaluated NeiPalette models (tables and ROC curves).",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="run or evaluation folder with metrics.json and predictions.csv")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--names", help="comma-separated model names, one per DIR")
    args = parser.parse_args(argv)
    markdown = compare(args.dirs, args.out, args.names)
    print(markdown, end="")
    print(f"(written to {args.out}: compare.md, compare.json, roc.png)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
