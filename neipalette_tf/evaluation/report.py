"""Evaluation output of a NeiPalette model: files, tables and a report.

`write_evaluation(out_dir, records, meta)` is the one call the training and
evaluation CLIs make after predicting a test set. `records` are dicts with
`top`, `bottom` (image paths), `label` (1 harmonious / 0 clashing),
`p_harmonious`, and optionally the OKLCH main colours `top_L, top_C, top_h,
bottom_L, bottom_C, bottom_h`. It writes, atomically, into `out_dir`:

- `metrics.json`: `classification_metrics` plus every key of `meta`
  (weights, backbone, pairing, image size, data, split, ...);
- `predictions.csv`: one row per pair (read back with `read_predictions`);
- `roc.png`, `confusion.png`, `samples.png`, and `curves.png` when a
  training history is given;
- `report.md`: a human-readable summary linking the figures.

`format_metrics_table` is the compact table the train CLI prints at the end;
`markdown_table`, `fmt`, `per_class_rows` and `model_name` are shared with
`neipalette_tf.compare`.
"""

import csv
import os

from neipalette_tf.core.io_utils import atomic_write, write_json, write_text
from neipalette_tf.core.vocabulary import COLOUR_COLUMNS, LABEL_NAMES, THRESHOLD
from neipalette_tf.evaluation import plots
from neipalette_tf.evaluation.metrics import (
    METRIC_KEYS,
    classification_metrics,
)

N_BOOTSTRAP = 1000
PREDICTION_COLUMNS = ("top", "bottom", "label", "p_harmonious", "predicted")
PER_CLASS_HEADER = ["Class", "Precision", "Recall", "F1-score", "Support"]
FIGURES = {
    "roc.png": "ROC curve",
    "confusion.png": "Confusion matrix",
    "samples.png": "Sample test pairs",
    "curves.png": "Training curves",
}


def fmt(value):
    """A metric for a table: 3 decimals; "n/a" for None; a CI as [low, high]."""
    if value is None:
        return "n/a"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(header, rows):
    """A markdown table with padded columns (readable as plain text too)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def format_metrics_table(metrics):
    """The headline metrics with their 95% CIs, as a compact markdown table."""
    rows = [
        ["Accuracy", fmt(metrics["accuracy"]), fmt(metrics["accuracy_ci95"])],
        ["Precision", fmt(metrics["precision"]), ""],
        ["Recall", fmt(metrics["recall"]), ""],
        ["F1-score", fmt(metrics["f1"]), ""],
        ["ROC-AUC", fmt(metrics["roc_auc"]), fmt(metrics["roc_auc_ci95"])],
    ]
    note = (
        f"n = {metrics['n']} pairs, threshold = {metrics['threshold']:g}; precision, "
        f"recall and F1 of the harmonious class; 95% CI: bootstrap over pairs."
    )
    return markdown_table(["Metric", "Value", "95% CI"], rows) + "\n\n" + note


def per_class_rows(metrics):
    """Rows [class, precision, recall, f1, support] for harmonious, clashing."""
    return [
        [name, fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), c["support"]]
        for name, c in metrics["per_class"].items()
    ]


def model_name(metrics, fallback="model"):
    """A model's display name: its backbone, "-stacked" for stacked pairing."""
    backbone = metrics.get("backbone")
    if not backbone:
        return fallback
    return f"{backbone}-stacked" if metrics.get("pairing") == "stacked" else str(backbone)


def write_predictions(path, records, threshold=THRESHOLD):
    """Write records as predictions.csv (labels as class names)."""
    colours = [c for c in COLOUR_COLUMNS if any(r.get(c) is not None for r in records)]
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(PREDICTION_COLUMNS + tuple(colours))
        for r in records:
            p = float(r["p_harmonious"])
            writer.writerow(
                [r["top"], r["bottom"], LABEL_NAMES[int(r["label"])], repr(p),
                 LABEL_NAMES[int(p >= threshold)]]
                + ["" if r.get(c) is None else repr(float(r[c])) for c in colours]
            )


def read_predictions(directory):
    """Read `directory/predictions.csv` back into records (labels 0/1)."""
    with open(os.path.join(directory, "predictions.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    records = []
    for row in rows:
        record = {
            "top": row["top"],
            "bottom": row["bottom"],
            "label": LABEL_NAMES.index(row["label"]),
            "p_harmonious": float(row["p_harmonious"]),
        }
        record.update({c: float(row[c]) for c in COLOUR_COLUMNS if row.get(c)})
        records.append(record)
    return records


def _report_markdown(metrics, meta, figures):
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    evaluated = [[key, value] for key, value in meta.items()]
    evaluated += [["pairs (n)", metrics["n"]], ["threshold", metrics["threshold"]]]
    confusion = [["true clashing", tn, fp], ["true harmonious", fn, tp]]
    parts = [
        "# NeiPalette evaluation",
        "## What was evaluated",
        markdown_table(["Field", "Value"], evaluated),
        "## Metrics",
        "Positive class: harmonious (label 1); a pair is predicted harmonious "
        "when p_harmonious >= threshold. 95% CIs: percentile bootstrap over "
        f"pairs, {N_BOOTSTRAP} resamples.",
        format_metrics_table(metrics),
        "## Per class",
        markdown_table(PER_CLASS_HEADER, per_class_rows(metrics)),
        "## Confusion matrix",
        markdown_table(["", "predicted clashing", "predicted harmonious"], confusion),
        "## Figures",
        "\n\n".join(f"### {FIGURES[name]}\n\n![{FIGURES[name]}]({name})" for name in figures),
        "## Files",
        "- [metrics.json](metrics.json): all metrics and the fields above\n"
        "- [predictions.csv](predictions.csv): one row per test pair",
    ]
    return "\n\n".join(parts) + "\n"


def write_evaluation(out_dir, records, meta, history=None, threshold=THRESHOLD):
    """Compute metrics of `records` and write every evaluation file to `out_dir`.

    Args:
        out_dir: output folder (created if needed).
        records: dicts with `top`, `bottom`, `label` (0/1), `p_harmonious`,
            optionally the OKLCH colour columns.
        meta: fields describing what was evaluated (weights, backbone,
            pairing, image_size, data, split, run name, ...); added to the
            metrics. A key may not collide with a metric key.
        history: Keras `History.history` dict; `curves.png` only when given.
        threshold: decision threshold, predicted harmonious when p >= it.

    Returns:
        The metrics dict including `meta`, as written to metrics.json.
    """
    clashes = sorted(set(meta) & set(METRIC_KEYS))
    if clashes:
        raise ValueError(f"meta keys {clashes} would overwrite metrics; rename them")
    y_true = [int(r["label"]) for r in records]
    p = [float(r["p_harmonious"]) for r in records]
    metrics = classification_metrics(y_true, p, threshold=threshold, n_bootstrap=N_BOOTSTRAP)
    metrics.update(meta)

    os.makedirs(out_dir, exist_ok=True)

    def path(name):
        return os.path.join(out_dir, name)

    write_json(path("metrics.json"), metrics)
    write_predictions(path("predictions.csv"), records, threshold)
    plots.plot_roc({model_name(metrics): (y_true, p)}, path("roc.png"))
    plots.plot_confusion(metrics["confusion_matrix"], path("confusion.png"))
    plots.plot_samples(records, path("samples.png"), threshold=threshold)
    figures = ["roc.png", "confusion.png", "samples.png"]
    if history is not None:
        plots.plot_curves(history, path("curves.png"))
        figures.append("curves.png")
    write_text(path("report.md"), _report_markdown(metrics, meta, figures))
    return metrics
