"""Temperature scaling and expected calibration error (NumPy only, no model)."""

import numpy as np
import pytest

from neipalette_tf.evaluation import calibration


def _overconfident(n=4000, factor=3.0, seed=0):
    """Labels drawn from softmax(z); the 'model' reports factor * z (overconfident by `factor`)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return np.stack([np.zeros(n), factor * z], axis=1), labels


def test_fit_temperature_recovers_the_scale_and_lowers_nll():
    logits, labels = _overconfident()
    t = calibration.fit_temperature(logits, labels)
    assert 2.6 < t < 3.4  # the true factor is 3
    assert calibration.nll(logits, labels, t) < calibration.nll(logits, labels, 1.0) - 0.1
    for other in (0.8 * t, 1.25 * t):  # a minimum, not just an improvement
        assert calibration.nll(logits, labels, t) <= calibration.nll(logits, labels, other)
    under, under_labels = _overconfident(factor=0.5)  # underconfident: T < 1 sharpens
    assert calibration.fit_temperature(under, under_labels) < 0.6
    s = calibration.summary(logits, labels, t)
    assert s["ece_after"] < s["ece_before"] and s["nll_after"] < s["nll_before"]


def test_ece_on_known_inputs():
    p = np.array([[0.4, 0.6], [0.6, 0.4], [0.1, 0.9], [0.9, 0.1], [0.05, 0.95]])
    labels = np.array([1, 1, 1, 0, 0])
    # 10 bins: confidence 0.6 (bin 0.5-0.6): 2 pairs, 1 right -> |0.5 - 0.6| = 0.1;
    # 0.9 (bin 0.8-0.9): 2 pairs, both right -> 0.1; 0.95: 1 pair, wrong -> 0.95.
    expected = 2 / 5 * 0.1 + 2 / 5 * 0.1 + 1 / 5 * 0.95
    assert calibration.expected_calibration_error(p, labels, n_bins=10) == pytest.approx(expected)
    bins = calibration.reliability_bins(p, labels, n_bins=10)
    assert bins["count"].tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 2, 1]
    assert bins["accuracy"][5] == 0.5 and bins["confidence"][9] == pytest.approx(0.95)
    perfect = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert calibration.expected_calibration_error(perfect, [1, 0]) == 0.0


def test_reliability_plot_is_written(tmp_path):
    logits, labels = _overconfident(n=500)
    path = tmp_path / "reliability.png"
    calibration.plot_reliability({"before": (calibration.softmax(logits), labels),
                                  "after": (calibration.softmax(logits / 3), labels)}, path)
    assert path.stat().st_size > 5000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels must be class indices"):
        calibration.fit_temperature(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="finite"):
        calibration.nll(np.array([[np.nan, 0.0]]), [0])


def test_fit_calibration_recovers_a_shift_and_moves_the_decision():
    # a model that ranks right but leans to "clashing" by 2.5 logits (renders -> photos)
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, 3000)
    labels = (rng.random(3000) < 1 / (1 + np.exp(-z))).astype(int)
    leaning = np.stack([np.zeros_like(z), z - 2.5], axis=1)
    t, s = calibration.fit_calibration(leaning, labels)
    assert 0.85 < t < 1.15 and 2.1 < s < 2.9
    p_before = calibration.probabilities(leaning)[:, 1]
    p_after = calibration.probabilities(leaning, t, s)[:, 1]
    accuracy = lambda p: ((p >= 0.5) == labels).mean()  # noqa: E731
    assert accuracy(p_after) > accuracy(p_before) + 0.05
    summary = calibration.summary(leaning, labels, t, s)
    assert summary["ece_after"] < summary["ece_before"] and summary["shift"] == s


def test_fit_calibration_is_finite_on_a_few_perfectly_separated_pairs():
    # 40 photos the model separates perfectly but all called clashing: Platt's targets keep T finite
    labels = np.array([0, 1] * 20)
    margin = np.where(labels == 1, -0.5, -6.0) + np.random.default_rng(0).normal(0, 0.3, 40)
    logits = np.stack([np.zeros(40), margin], axis=1)
    t, s = calibration.fit_calibration(logits, labels)
    assert calibration.T_BOUNDS[0] < t < calibration.T_BOUNDS[1]
    p = calibration.probabilities(logits, t, s)[:, 1]
    assert ((p >= 0.5) == labels).all()  # every pair now on its side of the line
    assert (p[labels == 1] < 1).all() and (p[labels == 0] > 0).all()
    assert 0 <= calibration.leave_one_out_ece(logits, labels) < 0.2
