"""Compare evaluated NeiPalette models side by side: the library behind `python -m neipalette_tf.compare`.

The command, its flags and what it writes are described in `neipalette_tf/commands/compare.py`;
this module holds the work, callable from Python.
"""

import json
import os
from collections import Counter

from neipalette_tf.core.errors import UserError
from neipalette_tf.core.io_utils import write_json, write_text
from neipalette_tf.evaluation import plots
from neipalette_tf.evaluation.metrics import METRIC_KEYS
from neipalette_tf.evaluation.report import (
    PER_CLASS_HEADER,
    fmt,
    markdown_table,
    model_name,
    per_class_rows,
    read_predictions,
)

DEFAULT_OUT = os.path.join("runs", "compare")
OVERALL_HEADER = [
    "Model", "Accuracy", "Precision", "Recall", "F1-score", "ROC-AUC", "ROC-AUC 95% CI", "n",
]


class CompareError(UserError):
    """A folder or option that cannot be used; the message is one line (exit 2 through `core.cli.run`)."""


def load_run(directory):
    """Read a run folder -> (metrics dict, prediction records)."""
    for name in ("metrics.json", "predictions.csv"):
        if not os.path.isfile(os.path.join(directory, name)):
            raise CompareError(
                f"{directory}: no {name} here; pass a run or evaluation folder "
                f"written by write_evaluation"
            )
    try:
        with open(os.path.join(directory, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        records = read_predictions(directory)
    except (OSError, ValueError, KeyError) as e:
        raise CompareError(f"{directory}: cannot read its results ({type(e).__name__}: {e})")
    missing = [key for key in METRIC_KEYS if key not in metrics]
    if missing:
        raise CompareError(f"{directory}: metrics.json lacks {', '.join(missing)}")
    return metrics, records


def model_names(directories, metrics_list, names=None):
    """Display names: `names` (comma-separated) or derived, made unique.

    Derived names that repeat get the folder name added, else the path as
    given, else a running number.
    """
    if names:
        given = [n.strip() for n in names.split(",")]
        if len(given) != len(directories) or len(set(given)) != len(given):
            raise CompareError(
                f"--names needs {len(directories)} distinct names, got {names!r}"
            )
        return given
    folders = [os.path.basename(os.path.normpath(d)) for d in directories]
    derived = [model_name(m, fallback=f) for m, f in zip(metrics_list, folders)]
    counts = Counter(derived)
    for qualifiers in (folders, directories, range(1, len(derived) + 1)):
        labels = [n if counts[n] == 1 else f"{n} ({q})" for n, q in zip(derived, qualifiers)]
        if len(set(labels)) == len(labels):
            break
    return labels


def comparison_markdown(names, metrics_list):
    """compare.md: the overall table and the per-class table."""
    overall = [
        [name] + [fmt(m[k]) for k in ("accuracy", "precision", "recall", "f1", "roc_auc",
                                      "roc_auc_ci95")] + [m["n"]]
        for name, m in zip(names, metrics_list)
    ]
    per_class = [
        [name] + row for name, m in zip(names, metrics_list) for row in per_class_rows(m)
    ]
    return "\n\n".join([
        "# NeiPalette model comparison",
        "## Overall (positive class: harmonious)",
        markdown_table(OVERALL_HEADER, overall),
        "## Per class",
        markdown_table(["Model"] + PER_CLASS_HEADER, per_class),
        "![ROC curves](roc.png)",
    ]) + "\n"


def compare(directories, out_dir=DEFAULT_OUT, names=None):
    """Write compare.md, compare.json and roc.png for `directories`.

    Returns the markdown of compare.md.
    """
    runs = [load_run(d) for d in directories]
    metrics_list = [metrics for metrics, _ in runs]
    labels = model_names(directories, metrics_list, names)
    markdown = comparison_markdown(labels, metrics_list)
    os.makedirs(out_dir, exist_ok=True)
    curves = {
        label: ([r["label"] for r in records], [r["p_harmonious"] for r in records])
        for label, (_, records) in zip(labels, runs)
    }
    plots.plot_roc(curves, os.path.join(out_dir, "roc.png"), title="ROC curves")
    write_text(os.path.join(out_dir, "compare.md"), markdown)
    write_json(
        os.path.join(out_dir, "compare.json"),
        {"models": [{"name": n, "dir": d, "metrics": m}
                    for n, d, m in zip(labels, directories, metrics_list)]},
    )
    return markdown
