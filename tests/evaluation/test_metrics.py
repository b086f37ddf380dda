"""Tests of neipalette_tf.evaluation.metrics against hand-computed values."""

import json

import numpy as np
import pytest

from neipalette_tf.evaluation.metrics import (
    METRIC_KEYS,
    classification_metrics,
    expected_keys,
    roc_points,
)

# 4 harmonious, 6 clashing. At threshold 0.5: tp 3, fn 1, fp 2, tn 4.
# AUC by counting (positive, negative) pairs ranked correctly:
# 0.9 -> 6, 0.8 -> 6, 0.6 -> 5, 0.3 -> 3; 20 of 24.
Y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
P = [0.9, 0.8, 0.6, 0.3, 0.7, 0.55, 0.4, 0.2, 0.1, 0.05]


def test_exact_key_set():
    m = classification_metrics(Y, P, n_bootstrap=10)
    assert list(m) == list(METRIC_KEYS) == expected_keys()
    assert set(m["per_class"]) == {"harmonious", "clashing"}
    for c in m["per_class"].values():
        assert set(c) == {"precision", "recall", "f1", "support"}


def test_hand_computed_example():
    m = classification_metrics(Y, P, n_bootstrap=10)
    assert m["confusion_matrix"] == [[4, 2], [1, 3]]
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))
    assert m["roc_auc"] == pytest.approx(20 / 24)
    clashing = m["per_class"]["clashing"]
    assert clashing["precision"] == pytest.approx(4 / 5)
    assert clashing["recall"] == pytest.approx(4 / 6)
    assert clashing["f1"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert (clashing["support"], m["per_class"]["harmonious"]["support"]) == (6, 4)
    assert m["per_class"]["harmonious"]["f1"] == m["f1"]
    assert (m["n"], m["threshold"]) == (10, 0.5)


def test_threshold_is_inclusive_and_configurable():
    m = classification_metrics([1, 0], [0.5, 0.49], n_bootstrap=0)
    assert m["confusion_matrix"] == [[1, 0], [0, 1]]
    m = classification_metrics(Y, P, threshold=0.75, n_bootstrap=0)
    assert m["confusion_matrix"] == [[6, 0], [2, 2]]
    assert m["threshold"] == 0.75


def test_perfect_and_inverted_auc():
    y = [0, 0, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    perfect = classification_metrics(y, p, n_bootstrap=200)
    assert perfect["roc_auc"] == 1.0 and perfect["accuracy"] == 1.0
    assert perfect["roc_auc_ci95"] == [1.0, 1.0]
    inverted = classification_metrics(y, [1 - v for v in p], n_bootstrap=200)
    assert inverted["roc_auc"] == 0.0 and inverted["accuracy"] == 0.0
    assert inverted["precision"] == 0.0  # zero_division=0, no error


def test_one_class_has_no_auc():
    m = classification_metrics([1, 1, 1], [0.2, 0.6, 0.9], n_bootstrap=50)
    assert m["roc_auc"] is None and m["roc_auc_ci95"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["per_class"]["clashing"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert roc_points([1, 1, 1], [0.2, 0.6, 0.9]) is None


def test_ci_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)
    a = classification_metrics(y, p, n_bootstrap=300, seed=3)
    b = classification_metrics(y, p, n_bootstrap=300, seed=3)
    c = classification_metrics(y, p, n_bootstrap=300, seed=4)
    for key, ci in (("accuracy", "accuracy_ci95"), ("roc_auc", "roc_auc_ci95")):
        low, high = a[ci]
        assert 0.0 <= low < a[key] < high <= 1.0
        assert a[ci] == b[ci]
        assert a[ci] != c[ci]


def test_plain_python_types():
    m = classification_metrics(Y, P, n_bootstrap=20)
    json.dumps(m, allow_nan=False)
    assert type(m["accuracy"]) is float and type(m["n"]) is int
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)
    assert all(type(v) is float for v in m["roc_auc_ci95"])


@pytest.mark.parametrize(
    "y, p",
    [
        ([0, 1], [0.5]),  # lengths differ
        ([0, 2], [0.1, 0.9]),  # label not 0/1
        ([0, 1], [0.1, 1.5]),  # not a probability
        ([0, 1], [0.1, float("nan")]),
        ([], []),
    ],
)
def test_invalid_input_is_refused(y, p):
    with pytest.raises(ValueError):
        classification_metrics(y, p, n_bootstrap=0)
