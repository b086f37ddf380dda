"""Evaluation figures for NeiPalette (PNG, matplotlib, Agg renderer).

- `plot_roc`: ROC curves of one or more models on one axis, AUC in the legend.
- `plot_confusion`: a 2x2 confusion matrix with counts and row percentages.
- `plot_curves`: training curves (loss, accuracy, AUC; train and validation)
  from a Keras `History.history` dict.
- `plot_samples`: a grid of test pairs with their images, main-colour
  swatches, true and predicted labels and `p_harmonious`.

Figures are built with `matplotlib.figure.Figure` (no pyplot, so no global
backend or open-figure state) and saved as PNG through
`neipalette_tf.core.io_utils.atomic_write`: rendered to a temporary file in the
destination folder, then `os.replace`d.
"""

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.colour.space import oklch_to_srgb
from neipalette_tf.core.io_utils import atomic_write
from neipalette_tf.core.preprocessing import letterbox, load_image
from neipalette_tf.core.vocabulary import LABEL_NAMES, THRESHOLD
from neipalette_tf.evaluation.metrics import roc_points

DPI = 120
SAMPLE_IMAGE_SIZE = 96
CORRECT_COLOUR = "#1a7f37"
WRONG_COLOUR = "#cf222e"

# Panels of `plot_curves`: (title, accepted History keys for the train series).
CURVE_PANELS = (
    ("Loss", ("loss",)),
    ("Accuracy", ("accuracy", "binary_accuracy", "acc")),
    ("ROC-AUC", ("auc", "roc_auc")),
)


def save_figure(fig, path):
    """Render `fig` to a PNG file at `path` atomically."""
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight")


def plot_roc(curves, path, title="ROC curve (positive class: harmonious)"):
    """One ROC line per model on one figure.

    Args:
        curves: dict model name -> (y_true, p_harmonious).
        path: output PNG.
        title: figure title.
    """
    fig = Figure(figsize=(5.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance (AUC = 0.500)")
    for name, (y_true, p) in curves.items():
        roc = roc_points(y_true, p)
        if roc is None:
            ax.plot([], [], label=f"{name} (AUC undefined: one class)")
            continue
        fpr, tpr, auc = roc
        ax.plot(fpr, tpr, linewidth=2, label=f"{name} (AUC = {auc:.3f})")
    ax.set_xlim(-0.01, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("False positive rate (clashing pairs called harmonious)")
    ax.set_ylabel("True positive rate (recall of harmonious)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    save_figure(fig, path)


def plot_confusion(cm, path, labels=LABEL_NAMES, title="Confusion matrix"):
    """A 2x2 confusion matrix [[tn, fp], [fn, tp]] with counts in the cells."""
    cm = np.asarray(cm, dtype=np.int64)
    row_totals = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    share = cm / row_totals
    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{cm[i, j]}\n({share[i, j]:.0%} of row)", ha="center",
                    va="center", color=colour, fontsize=12)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(f"{title} (n = {cm.sum()})")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    save_figure(fig, path)


def _history_series(history, names):
    """The first of `names` present in `history` -> (train, val) lists.

    A series that was not recorded is an empty list.
    """
    for name in names:
        if name in history or f"val_{name}" in history:
            return list(history.get(name, [])), list(history.get(f"val_{name}", []))
    return [], []


def plot_curves(history, path):
    """Training curves: loss, accuracy and AUC panels, train and validation.

    Args:
        history: dict metric -> list of per-epoch values, as Keras'
            `History.history` (a `History` object itself is accepted too).
            Missing metrics leave their panel marked "not recorded".
        path: output PNG.
    """
    history = getattr(history, "history", history)
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, len(CURVE_PANELS))
    for ax, (title, names) in zip(axes, CURVE_PANELS):
        train, val = _history_series(history, names)
        for series, label, style in ((train, "train", "-o"), (val, "validation", "-s")):
            if series:
                epochs = np.arange(1, len(series) + 1)
                ax.plot(epochs, series, style, markersize=3, label=label)
        if train or val:
            ax.legend()
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(title)
        ax.set_xlabel("Epoch")
        ax.grid(alpha=0.3)
    fig.suptitle("Training curves")
    save_figure(fig, path)


def pick_samples(records, n, threshold=THRESHOLD):
    """Indices of up to `n` records, half correct and half wrong where possible.

    Deterministic: within each group (wrong, correct) the records are sorted
    by `p_harmonious` and picked at evenly spaced ranks, so the grid spans the
    whole confidence range. Wrong predictions come first.
    """
    correct = np.array(
        [(r["p_harmonious"] >= threshold) == bool(r["label"]) for r in records], dtype=bool
    )
    groups = [np.flatnonzero(~correct), np.flatnonzero(correct)]
    n = min(n, len(records))
    n_wrong = min(len(groups[0]), max(n // 2, n - len(groups[1])))
    picked = []
    for group, k in zip(groups, (n_wrong, n - n_wrong)):
        ordered = group[np.argsort([records[i]["p_harmonious"] for i in group], kind="stable")]
        ranks = np.unique(np.round(np.linspace(0, len(ordered) - 1, k)).astype(int)) if k else []
        picked.extend(int(ordered[r]) for r in ranks)
    return picked


def _swatch_colour(record, side, image):
    """A garment's main colour: from its OKLCH columns, else estimated."""
    lch = [record.get(f"{side}_{c}") for c in ("L", "C", "h")]
    if all(v is not None and np.isfinite(v) for v in lch):
        return np.round(oklch_to_srgb(np.array(lch, dtype=np.float64))).astype(np.uint8)
    return estimate_main_colour(image)


def _pair_tile(record, image_loader):
    """Top and bottom images side by side, each with its swatch strip below."""
    size = SAMPLE_IMAGE_SIZE
    columns = []
    for side in ("top", "bottom"):
        image = np.asarray(image_loader(record[side]), dtype=np.uint8)
        if image.shape[:2] != (size, size):
            image = letterbox(Image.fromarray(image), size)
        strip = np.empty((size // 5, size, 3), dtype=np.uint8)
        strip[:] = _swatch_colour(record, side, image)
        gap = np.full((3, size, 3), 255, dtype=np.uint8)
        columns.append(np.concatenate([image, gap, strip], axis=0))
    separator = np.full((columns[0].shape[0], 6, 3), 255, dtype=np.uint8)
    return np.concatenate([columns[0], separator, columns[1]], axis=1)


def _default_loader(path):
    return load_image(path, SAMPLE_IMAGE_SIZE)


def plot_samples(records, path, n=16, image_loader=_default_loader, threshold=THRESHOLD):
    """A grid of test pairs with labels, predictions and colour swatches.

    Each cell shows the top (left) and bottom (right) image with a strip of
    its main colour underneath, and a title with the true label, the
    predicted label and `p_harmonious`: green when correct, red when wrong.
    The swatch comes from the record's OKLCH columns (`top_L`, `top_C`,
    `top_h`, `bottom_...`) when present, otherwise it is estimated from the
    image with `estimate_main_colour` (a heuristic, see its module).

    Args:
        records: dicts with `top`, `bottom` (image paths), `label` (0/1),
            `p_harmonious` and optionally the OKLCH colour columns.
        path: output PNG.
        n: number of pairs shown; chosen by `pick_samples`.
        image_loader: path -> uint8 `[H, W, 3]`; images that are not
            96 x 96 are letterboxed to it.
        threshold: decision threshold for the predicted label.
    """
    picked = pick_samples(records, n, threshold)
    n_cols = min(4, max(1, len(picked)))
    n_rows = max(1, -(-len(picked) // n_cols))
    fig = Figure(figsize=(3.3 * n_cols, 2.35 * n_rows + 0.6), layout="constrained")
    fig.get_layout_engine().set(wspace=0.08, hspace=0.04)  # keep pairs apart
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, picked):
        record = records[i]
        p = float(record["p_harmonious"])
        truth, predicted = int(record["label"]), int(p >= threshold)
        ax.imshow(_pair_tile(record, image_loader), interpolation="nearest")
        ax.set_title(
            f"true: {LABEL_NAMES[truth]}\npred: {LABEL_NAMES[predicted]}  (p = {p:.2f})",
            color=CORRECT_COLOUR if truth == predicted else WRONG_COLOUR,
            fontsize=9,
        )
    fig.suptitle(
        "Test pairs: top (left) | bottom (right); strip = main colour\n"
        "green = correct, red = wrong; p = p_harmonious",
        fontsize=10,
    )
    save_figure(fig, path)
