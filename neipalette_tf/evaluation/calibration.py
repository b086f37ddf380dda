"""Calibration: temperature scaling fitted on validation logits, ECE, reliability diagrams.

A classifier is *calibrated* when, of the pairs it calls harmonious with
p = 0.8, about 80 % are. Networks trained with cross-entropy are often
overconfident. Temperature scaling (Guo et al., 2017) fixes that with one
number: probabilities become `softmax(logits / T)`, with T > 0 chosen to
minimise the negative log-likelihood (NLL) of the *validation* split. T
changes no decision and no ranking (accuracy and ROC-AUC stay exactly the
same), only how confident the model says it is.

- `fit_temperature(logits, labels)`: the NLL-minimising T (bounded scalar
  search over log T; the NLL is convex in 1/T).
- `expected_calibration_error(probabilities, labels, n_bins=15)`: top-label
  ECE, the bin-weighted mean |accuracy - confidence| over equal-width
  confidence bins.
- `reliability_bins` / `plot_reliability`: the reliability diagram, before
  and after scaling (`reliability.png`).
- `predict_logits(model, data)` and `calibrate(model, data)`: the model's
  uncalibrated logits on a `PairData`, and fitting + storing T in the model
  (`HarmonyClassifier.set_temperature`), which every save and export keeps.

Example:

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(0, 4, 20000)                     # true logit of class 1
>>> labels = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(int)
>>> logits = np.stack([np.zeros_like(z), 3 * z], 1)  # an overconfident model: 3x the true logit
>>> round(fit_temperature(logits, labels), 1)
3.0
>>> expected_calibration_error(softmax(logits / 3.0), labels) < expected_calibration_error(softmax(logits), labels)
True
"""

import numpy as np
from scipy.optimize import minimize_scalar

from neipalette_tf.evaluation.plots import save_figure

N_BINS = 15
T_BOUNDS = (0.05, 20.0)
MIN_FIT_PAIRS = 20  # fewer validation pairs than this cannot support a temperature fit


def softmax(logits):
    """Row-wise softmax in float64 (stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _validate(logits, labels):
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if z.ndim != 2 or y.shape != (len(z),) or len(z) == 0:
        raise ValueError(f"need logits [N, K] and labels [N], N > 0; got {z.shape} and {y.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{z.shape[1] - 1}")
    return z, y


def nll(logits, labels, temperature=1.0):
    """Mean negative log-likelihood of `labels` under `softmax(logits / temperature)`."""
    z, y = _validate(logits, labels)
    z = z / float(temperature)
    m = z.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(logits, labels, bounds=T_BOUNDS):
    """The T in `bounds` that minimises `nll(logits, labels, T)`.

    The NLL is convex in 1/T, so a bounded scalar search (Brent, over log T)
    finds the minimum. When the validation logits separate the classes
    perfectly the NLL keeps falling as T -> 0 and the result is the lower
    bound; a validation set that small says little about calibration.
    """

    z, y = _validate(logits, labels)
    low, high = np.log(bounds[0]), np.log(bounds[1])
    result = minimize_scalar(lambda log_t: nll(z, y, np.exp(log_t)), bounds=(low, high), method="bounded",
                             options={"xatol": 1e-5})
    best = float(np.exp(result.x))
    # Brent works inside the interval: a minimum at a bound is taken exactly.
    return min((bounds[0], best, bounds[1]), key=lambda t: nll(z, y, t))


def reliability_bins(probabilities, labels, n_bins=N_BINS):
    """Top-label reliability: per equal-width confidence bin, (count, mean confidence, accuracy).

    Returns a dict of arrays `edges` `[n_bins + 1]`, `count`, `confidence`,
    `accuracy` `[n_bins]` (NaN where a bin is empty). A prediction's
    confidence is its largest class probability; it falls in bin
    `(lo, hi]` (the first bin also takes 0).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if p.ndim != 2 or y.shape != (len(p),) or len(p) == 0:
        raise ValueError(f"need probabilities [N, K] and labels [N], N > 0; got {p.shape} and {y.shape}")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, confidence, n_bins) / count
        accuracy = np.bincount(index, correct, n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(probabilities, labels, n_bins=N_BINS):
    """ECE: sum over bins of (bin share) * |accuracy - mean confidence| (top label, equal-width bins).

    Example (two bins: confidence 0.6 with 1 of 2 right, 0.9 with 2 of 2 right):

    >>> p = [[0.4, 0.6], [0.6, 0.4], [0.1, 0.9], [0.9, 0.1]]
    >>> round(expected_calibration_error(p, [1, 1, 1, 0], n_bins=10), 4)
    0.1
    """
    bins = reliability_bins(probabilities, labels, n_bins)
    filled = bins["count"] > 0
    share = bins["count"][filled] / bins["count"].sum()
    return float(np.sum(share * np.abs(bins["accuracy"][filled] - bins["confidence"][filled])))


def summary(logits, labels, temperature, n_bins=N_BINS):
    """NLL and ECE of `logits` at T = 1 (before) and at `temperature` (after)."""
    return {
        "temperature": float(temperature),
        "nll_before": nll(logits, labels, 1.0),
        "nll_after": nll(logits, labels, temperature),
        "ece_before": expected_calibration_error(softmax(logits), labels, n_bins),
        "ece_after": expected_calibration_error(softmax(np.asarray(logits, np.float64) / temperature), labels, n_bins),
        "ece_bins": n_bins,
        "n": int(len(labels)),
    }


def plot_reliability(curves, path, n_bins=N_BINS, title="Reliability diagram (top label)"):
    """Reliability diagram: accuracy against confidence per bin, one line per curve.

    Args:
        curves: `{name: (probabilities [N, K], labels [N])}`, e.g.
            `{"before (T = 1)": ..., "after (T = 1.8)": ...}`; the legend
            gives each curve's ECE.
        path: output PNG (written atomically).
    """
    from matplotlib.figure import Figure


    fig = Figure(figsize=(8.4, 4.2), layout="constrained")
    ax, hist = fig.subplots(1, 2)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    width = 1.0 / n_bins
    for k, (name, (p, y)) in enumerate(curves.items()):
        bins = reliability_bins(p, y, n_bins)
        filled = bins["count"] > 0
        ece = expected_calibration_error(p, y, n_bins)
        ax.plot(bins["confidence"][filled], bins["accuracy"][filled], marker="o", markersize=4,
                label=f"{name}: ECE {ece:.3f}")
        centres = bins["edges"][:-1] + width / 2
        hist.bar(centres + (k - 0.5 * (len(curves) - 1)) * width / len(curves), bins["count"],
                 width=width / len(curves), label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (largest class probability)",
           ylabel="accuracy in the bin", title=title)
    ax.legend(fontsize=8, loc="upper left")
    hist.set(xlim=(0, 1), xlabel="confidence", ylabel="pairs", title=f"Pairs per bin ({n_bins} bins)")
    hist.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)


def predict_logits(model, data, batch_size=64):
    """The model's uncalibrated logits `[N, 2]` for every pair of a `PairData`, in manifest order."""
    logits = model.logits_model().predict(data.dataset(batch_size), verbose=0)
    return np.asarray(logits, dtype=np.float64)


def fit_support(logits, labels, min_pairs=MIN_FIT_PAIRS):
    """None when `logits` / `labels` can support a temperature fit, else why not (one line).

    Not enough: fewer than `min_pairs` pairs, one class only, or classes
    that the logits separate perfectly (the NLL then keeps falling as T -> 0,
    and the fit would claim near-certainty on everything).
    """
    z, y = _validate(logits, labels)
    if len(y) < min_pairs:
        return f"{len(y)} pairs, a fit needs at least {min_pairs}"
    if len(np.unique(y)) < 2:
        return "it holds one class only"
    margin = z[:, -1] - z[:, 0] if z.shape[1] == 2 else None
    if margin is not None and margin[y == 1].min() > margin[y == 0].max():
        return "its classes are perfectly separated (the NLL keeps falling as T -> 0)"
    return None


def calibrate(model, data, n_bins=N_BINS, batch_size=64, keep=None):
    """Fit T on `data` (a `PairData`, normally the validation split) and store it in `model`.

    When the split cannot support a fit (`fit_support`), or the fit runs
    to the lower bound of `T_BOUNDS`, the temperature `keep` (default: the model's
    current one) is kept instead; the summary then says why in `fit_skipped`.

    Returns `summary(...)` on `data`: T, and NLL / ECE before and after.
    """
    logits = predict_logits(model, data, batch_size)
    why = fit_support(logits, data.labels)
    temperature = None
    if why is None:
        temperature = fit_temperature(logits, data.labels)
        if temperature <= T_BOUNDS[0] * (1 + 1e-6):  # near-certainty on everything: separation in all but name
            why, temperature = f"the fit ran to the lower bound T = {temperature:g}", None
    if temperature is None:
        temperature = float(model.temperature if keep is None else keep)
    model.set_temperature(temperature)
    s = summary(logits, data.labels, temperature, n_bins)
    if why:
        s["fit_skipped"] = why
    return s
