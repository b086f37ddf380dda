"""Classification metrics for NeiPalette pair predictions.

A model gives `p_harmonious` for each (top, bottom) pair; the positive class
is *harmonious* (label 1), the negative class *clashing* (label 0). A pair is
predicted harmonious when `p_harmonious >= threshold`.

`classification_metrics` returns one JSON-serialisable dict (plain Python
floats and ints) with the keys in `METRIC_KEYS`: the point metrics, 95%
percentile-bootstrap confidence intervals for accuracy and ROC-AUC, per-class
precision / recall / F1 / support, and the confusion matrix. It is the single
place where these numbers are computed; reports, plots and the comparison CLI
read its output. Everything here uses scikit-learn and NumPy only.
"""

import numpy as np

from neipalette_tf.core.vocabulary import LABEL_NAMES, POSITIVE_LABEL, THRESHOLD
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

# Class names indexed by label: CLASS_NAMES[0] == "clashing".

METRIC_KEYS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "roc_auc_ci95",
    "accuracy_ci95",
    "per_class",
    "confusion_matrix",
    "n",
    "threshold",
)
PER_CLASS_KEYS = ("precision", "recall", "f1", "support")


def expected_keys():
    """The top-level keys of `classification_metrics`'s result."""
    return list(METRIC_KEYS)


def _validate(y_true, p_harmonious):
    y = np.asarray(y_true)
    p = np.asarray(p_harmonious, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(
            f"y_true and p_harmonious must be 1-D and of equal length, "
            f"got shapes {y.shape} and {p.shape}"
        )
    if y.size == 0:
        raise ValueError("no predictions to evaluate (empty input)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (clashing) or 1 (harmonious), got {np.unique(y)}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("p_harmonious must be finite probabilities in [0, 1]")
    return y.astype(np.int64), p


def _auc(y, p):
    """ROC-AUC, or None when only one class is present."""
    return float(roc_auc_score(y, p)) if np.unique(y).size == 2 else None


def _percentile_ci(values):
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def _bootstrap_ci(y, p, correct, n_bootstrap, seed):
    """Percentile bootstrap over pairs -> (accuracy_ci95, roc_auc_ci95).

    Resamples holding one class only have no AUC and are skipped for it.
    """
    rng = np.random.default_rng(seed)
    accuracies, aucs = [], []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, y.size, size=y.size)
        accuracies.append(correct[idx].mean())
        auc = _auc(y[idx], p[idx])
        if auc is not None:
            aucs.append(auc)
    return _percentile_ci(accuracies), _percentile_ci(aucs)


def classification_metrics(y_true, p_harmonious, threshold=THRESHOLD, n_bootstrap=1000, seed=0):
    """Metrics of harmonious-vs-clashing predictions.

    Args:
        y_true: labels, 1 = harmonious, 0 = clashing.
        p_harmonious: the model's probability that each pair is harmonious.
        threshold: predicted harmonious when `p_harmonious >= threshold`.
        n_bootstrap: resamples (over pairs) for the 95% percentile CIs.
        seed: seed of the bootstrap; the same seed gives the same CIs.

    Returns:
        A dict with exactly the keys of `METRIC_KEYS`. `precision`, `recall`
        and `f1` are those of the harmonious class; `per_class` maps
        "harmonious" and "clashing" to precision / recall / f1 / support
        (zero_division=0); `confusion_matrix` is [[tn, fp], [fn, tp]];
        `roc_auc` and its CI are None when only one class is present.

    Example:

    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], n_bootstrap=100)
    >>> m["accuracy"], m["roc_auc"], m["confusion_matrix"]
    (0.5, 0.75, [[1, 1], [1, 1]])
    >>> m["per_class"]["harmonious"]
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'support': 2}
    >>> low, high = m["accuracy_ci95"]
    >>> low <= m["accuracy"] <= high
    True
    """
    y, p = _validate(y_true, p_harmonious)
    predicted = (p >= threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=[0, 1], zero_division=0
    )
    per_class = {
        LABEL_NAMES[label]: {
            "precision": float(precision[label]),
            "recall": float(recall[label]),
            "f1": float(f1[label]),
            "support": int(support[label]),
        }
        for label in (1, 0)
    }
    accuracy_ci, auc_ci = _bootstrap_ci(y, p, predicted == y, n_bootstrap, seed)
    positive = per_class[LABEL_NAMES[POSITIVE_LABEL]]
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": positive["precision"],
        "recall": positive["recall"],
        "f1": positive["f1"],
        "roc_auc": _auc(y, p),
        "roc_auc_ci95": auc_ci,
        "accuracy_ci95": accuracy_ci,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
        "n": int(y.size),
        "threshold": float(threshold),
    }


def roc_points(y_true, p_harmonious):
    """ROC curve of the harmonious class -> (fpr, tpr, auc).

    Returns None when only one class is present (no curve is defined).
    """
    y, p = _validate(y_true, p_harmonious)
    auc = _auc(y, p)
    if auc is None:
        return None
    fpr, tpr, _ = roc_curve(y, p, pos_label=POSITIVE_LABEL)
    return fpr, tpr, auc
