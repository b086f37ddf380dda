"""Parity checks (neipalette_tf/export/parity.py) on outputs a broken converter could give."""

import numpy as np


def test_parity_fails_on_nan_outputs():
    from neipalette_tf.export.parity import RULES, compare

    reference = np.linspace(0.1, 0.9, 8)
    labels = np.array([0, 1] * 4)
    result = compare(reference, np.full(8, np.nan), labels, RULES["tflite"])
    assert not result["passed"] and "8 non-finite outputs" in result["failures"]
    result = compare(reference, np.full(8, np.nan), labels, RULES["tflite_int8"])
    assert not result["passed"]
    assert compare(reference, reference + 5e-5, labels, RULES["onnx"])["passed"]
