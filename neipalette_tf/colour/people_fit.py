"""Fit and judge the people model (`neipalette_tf.colour.people`) on rated themes.

`fit(lab, ratings)` is ridge regression of the themes' ratings on their mean features
(`people.theme_features`), each feature standardised, the weights folded back to raw features;
`cross_validate` fits it K times, each time without one fold of theme ids, and scores the
held-out folds beside rule v1 (a theme scored by the share of its colour pairs the rule calls
harmonious) and the constant predictor. The scores (`rank_metrics`): Spearman's rank
correlation, mean absolute error (for the rule: after a linear fit of its share to the ratings
on the training folds) and pairwise ranking accuracy over the theme pairs whose ratings differ
by at least `PAIR_MIN_GAP`.

NumPy only.

Example:

>>> import numpy as np
>>> round(spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 40, 30])), 3)
0.8
>>> pairwise_accuracy(np.array([1.0, 2, 3]), np.array([1.0, 2, 3]), min_gap=0.5)
1.0
"""

import itertools

import numpy as np

from neipalette_tf.colour import people
from neipalette_tf.colour.harmony import harmonious
from neipalette_tf.colour.space import oklab_to_oklch

RIDGE_ALPHA = 10.0  # chosen by cross-validation on the development themes (flat from 1 to 100)
PAIR_MIN_GAP = 0.5


def _ranks(x):
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # average the ranks of ties
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends):
        if e - s > 1:
            ranks[order[s:e]] = (s + e - 1) / 2.0
    return ranks


def spearman(pred, target):
    """Spearman's rank correlation (ties share their mean rank); nan for a constant input."""
    a, b = _ranks(np.asarray(pred, dtype=np.float64)), _ranks(np.asarray(target, dtype=np.float64))
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def pairwise_accuracy(pred, target, min_gap=PAIR_MIN_GAP, chunk=2048):
    """Share of item pairs with `|target_i - target_j| >= min_gap` that `pred` orders the same way.

    A tie in `pred` counts half.
    """
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    agree, total = 0.0, 0
    for start in range(0, len(pred), chunk):
        dt = target[start:start + chunk, None] - target[None, :]
        dp = pred[start:start + chunk, None] - pred[None, :]
        sel = dt >= min_gap  # each unordered pair once: i above j
        total += int(sel.sum())
        agree += float((dp[sel] > 0).sum() + 0.5 * (dp[sel] == 0).sum())
    return agree / total if total else float("nan")


def rank_metrics(pred, target):
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return {"spearman": spearman(pred, target), "mae": float(np.mean(np.abs(pred - target))),
            "pairwise_accuracy": pairwise_accuracy(pred, target), "themes": int(len(target))}


def _standardise(X):
    mean, std = X.mean(axis=0), X.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return mean, std


def fit(lab, ratings, alpha=RIDGE_ALPHA, meta=None):
    """Ridge fit of the pair function on themes `lab` `[T, K, 3]` (OKLab) and their `ratings` `[T]`."""
    X = people.theme_features(lab)
    y = np.asarray(ratings, dtype=np.float64)
    mean, std = _standardise(X)
    Z = (X - mean) / std
    y_mean = y.mean()
    w = np.linalg.solve(Z.T @ Z + alpha * np.eye(Z.shape[1]), Z.T @ (y - y_mean))
    raw = w / std
    bias = y_mean - float(mean @ raw)
    d = people.COLOUR_DIM
    return people.PeopleModel(raw[:d], raw[d:], bias, mean, meta)


def rule_share(lab):
    """Rule v1's theme score: the share of a theme's colour pairs the rule calls harmonious `[T]`."""
    lch = oklab_to_oklch(np.asarray(lab, dtype=np.float64))
    k = lch.shape[1]
    pairs = list(itertools.combinations(range(k), 2))
    return np.mean([harmonious(lch[:, i], lch[:, j]) for i, j in pairs], axis=0)


def cross_validate(themes, folds, alpha=RIDGE_ALPHA):
    """K-fold cross-validation by theme id: held-out predictions and metrics of each method.

    `folds` `[T]` ints (e.g. `data.themes.fold_of(ids, K)`). Returns
    `{"predictions": {method: [T]}, "metrics": {method: rank_metrics}, "per_fold": {method: [...]}}`
    for `people`, `rule_v1` and `constant`.
    """
    y = themes.ratings
    share = rule_share(themes.lab)
    pred = {m: np.zeros(len(y)) for m in ("people", "rule_v1", "constant")}
    per_fold = {m: [] for m in pred}
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        pred["people"][te] = fit(themes.lab[tr], y[tr], alpha).rate_themes(themes.lab[te])
        slope, intercept = np.polyfit(share[tr], y[tr], 1)  # rule v1's share, on the rating scale
        pred["rule_v1"][te] = intercept + slope * share[te]
        pred["constant"][te] = y[tr].mean()
        for m in pred:
            per_fold[m].append(rank_metrics(pred[m][te], y[te]))
    return {"predictions": pred, "metrics": {m: rank_metrics(p, y) for m, p in pred.items()},
            "per_fold": per_fold}
