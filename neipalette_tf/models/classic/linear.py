"""A standardised logistic regression stored as plain numbers (no pickle).

The classic models (`palette`, `probe`) end in the same light classifier:
scikit-learn's `StandardScaler` + `LogisticRegression`. `fit_logistic`
trains it and returns its parameters as a JSON-ready dict; `predict_logistic`
scores with those numbers in NumPy alone, so a saved model is a small JSON
file that loads without unpickling anything.

Example:

>>> import numpy as np
>>> x = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]])
>>> params = fit_logistic(x, [0, 1, 0, 1], C=1.0)
>>> p = predict_logistic(params, x)
>>> bool(p[1] > 0.5 > p[0])
True
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

KIND = "standard_scaler+logistic_regression"


def fit_logistic(x, y, C=1.0, seed=0):
    """Fit scaler + logistic regression on features `x` `[N, D]` and labels 0/1."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if np.unique(y).size != 2:
        raise ValueError("the classifier needs both classes in its training pairs")
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=seed)
    clf.fit(scaler.transform(x), y)
    return {
        "kind": KIND,
        "C": float(C),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": clf.coef_[0].tolist(),
        "intercept": float(clf.intercept_[0]),
    }


def predict_logistic(params, x):
    """p(label 1) for features `x` `[N, D]` from `fit_logistic`'s parameters."""
    if params.get("kind") != KIND:
        raise ValueError(f"unknown classifier kind {params.get('kind')!r}")
    x = np.asarray(x, dtype=np.float64)
    z = ((x - np.asarray(params["mean"])) / np.asarray(params["scale"])) @ np.asarray(params["coef"])
    z = z + params["intercept"]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))
