"""Calibration: temperature and shift fitted on held-out logits, ECE, reliability diagrams.

A classifier is *calibrated* when, of the pairs it calls harmonious with
p = 0.8, about 80 % are. Networks trained with cross-entropy are often
overconfident. Temperature scaling (Guo et al., 2017) fixes that with one
number: probabilities become `softmax(logits / T)`, with T > 0 chosen to
minimise the negative log-likelihood (NLL) of the *validation* split. T
changes no decision and no ranking, only how confident the model says it is.

Photos are not renders: a model can rank photos right and still lean to one
class on them (`neipalette_tf.evaluation.photo_shift`). A *shift* s moves the
decision: p(harmonious) = sigmoid((z1 - z0) / T + s), Platt scaling (Platt,
1999). `fit_calibration` fits T and s together against Platt's smoothed
targets ((n+ + 1) / (n+ + 2) for a positive, 1 / (n- + 2) for a negative),
which keep the fit finite on a few dozen pairs that the logits separate
perfectly, where the plain NLL would fall forever as T -> 0. Neither changes
the ranking (ROC-AUC).

- `fit_temperature(logits, labels)`: the NLL-minimising T alone (bounded
  scalar search over log T; the NLL is convex in 1/T).
- `fit_calibration(logits, labels)`: T and s (Platt targets).
- `calibrated(logits, T, s)` / `probabilities(logits, T, s)`: what every
  exported graph computes.
- `expected_calibration_error(probabilities, labels, n_bins=15)`: top-label
  ECE, the bin-weighted mean |accuracy - confidence| over equal-width
  confidence bins.
- `reliability_bins` / `plot_reliability`: the reliability diagram, before
  and after scaling (`reliability.png`).
- `predict_logits(model, data)` and `calibrate(model, data)`: the model's
  uncalibrated logits on a `PairData`, and fitting + storing T and s in the
  model (`HarmonyClassifier.set_calibration`), which every save and export keeps.

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
>>> shifted = np.stack([np.zeros_like(z), z - 2.0], 1)  # right scale, leaning 2 logits to class 0
>>> t, s = fit_calibration(shifted, labels)
>>> round(t, 1), round(s, 1)
(1.0, 2.0)
"""

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from neipalette_tf.evaluation.plots import save_figure

N_BINS = 15
T_BOUNDS = (0.05, 20.0)
SHIFT_BOUNDS = (-20.0, 20.0)
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


def calibrated(logits, temperature=1.0, shift=0.0):
    """`logits / T`, plus `(-s / 2, +s / 2)` for two classes: the logits every exported graph's softmax takes."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if shift and z.shape[-1] == 2:
        z = z + np.array([-0.5, 0.5]) * float(shift)
    return z


def probabilities(logits, temperature=1.0, shift=0.0):
    """Calibrated class probabilities `[N, K]` (`softmax(calibrated(...))`)."""
    return softmax(calibrated(logits, temperature, shift))


def nll(logits, labels, temperature=1.0, shift=0.0):
    """Mean negative log-likelihood of `labels` under `probabilities(logits, temperature, shift)`."""
    z, y = _validate(logits, labels)
    z = calibrated(z, temperature, shift)
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


def platt_targets(labels):
    """Platt's smoothed targets for binary labels: (n+ + 1) / (n+ + 2) for 1, 1 / (n- + 2) for 0."""
    y = np.asarray(labels).astype(np.int64)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    return np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1.0 / (n_neg + 2))


def fit_calibration(logits, labels, bounds=T_BOUNDS, shift_bounds=SHIFT_BOUNDS):
    """(T, s) minimising the cross-entropy of sigmoid((z1 - z0) / T + s) against `platt_targets` (two classes).

    Bounded quasi-Newton (L-BFGS-B) over (log T, s) from (log 1, 0); the loss
    is convex in (1/T, s). A few dozen pairs suffice, separated or not.
    """
    z, y = _validate(logits, labels)
    if z.shape[1] != 2:
        raise ValueError("fit_calibration needs two-class logits")
    margin, target = z[:, 1] - z[:, 0], platt_targets(y)

    def loss(params):
        a = margin / np.exp(params[0]) + params[1]
        # cross-entropy with soft targets, stable: log(1 + e^a) - target * a
        return float(np.mean(np.logaddexp(0.0, a) - target * a))

    result = minimize(loss, np.array([0.0, 0.0]), method="L-BFGS-B",
                      bounds=[(np.log(bounds[0]), np.log(bounds[1])), shift_bounds])
    return float(np.exp(result.x[0])), float(result.x[1])


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


def summary(logits, labels, temperature, shift=0.0, before=(1.0, 0.0), n_bins=N_BINS):
    """NLL and ECE of `logits` calibrated by `before` (T, s) (default: none) and by (`temperature`, `shift`)."""
    return {
        "temperature": float(temperature),
        "shift": float(shift),
        "before": {"temperature": float(before[0]), "shift": float(before[1])},
        "nll_before": nll(logits, labels, *before),
        "nll_after": nll(logits, labels, temperature, shift),
        "ece_before": expected_calibration_error(probabilities(logits, *before), labels, n_bins),
        "ece_after": expected_calibration_error(probabilities(logits, temperature, shift), labels, n_bins),
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
    """None when `logits` / `labels` can support a calibration fit, else why not (one line).

    Not enough: fewer than `min_pairs` pairs, or one class only. Classes the
    logits separate perfectly are fine: Platt's targets keep the fit finite.
    """
    z, y = _validate(logits, labels)
    if len(y) < min_pairs:
        return f"{len(y)} pairs, a fit needs at least {min_pairs}"
    if len(np.unique(y)) < 2:
        return "it holds one class only"
    return None


def current(model):
    """A model's (T, s); models without a shift: s = 0."""
    return float(model.temperature), float(getattr(model, "calibration_shift", 0.0))


def calibrate(model, data, n_bins=N_BINS, batch_size=64, keep=None, before=(1.0, 0.0), logits=None):
    """Fit T and s on `data` (a `PairData`: the validation split, or a user's photos) and store them in `model`.

    When the data cannot support a fit (`fit_support`), or T runs to the
    lower bound of `T_BOUNDS`, `keep` (T, s) (default: the model's current
    ones) is kept instead; the summary then says why in `fit_skipped`.

    Returns `summary(...)` on `data`: T, s, and NLL / ECE at `before` (T, s) and after.
    `logits`: the data's uncalibrated logits when they are at hand (else predicted).
    """
    logits = predict_logits(model, data, batch_size) if logits is None else logits
    why = fit_support(logits, data.labels)
    fitted = None
    if why is None:
        fitted = fit_calibration(logits, data.labels)
        if fitted[0] <= T_BOUNDS[0] * (1 + 1e-6):  # near-certainty on everything
            why, fitted = f"the fit ran to the lower bound T = {fitted[0]:g}", None
    if fitted is None:
        fitted = current(model) if keep is None else (keep if isinstance(keep, tuple) else (float(keep), 0.0))
    model.set_calibration(*fitted)
    s = summary(logits, data.labels, *fitted, before=before, n_bins=n_bins)
    if why:
        s["fit_skipped"] = why
    elif len(data.labels) <= LOO_MAX_PAIRS:
        s["ece_after_leave_one_out"] = leave_one_out_ece(logits, data.labels, n_bins)
    return s


LOO_MAX_PAIRS = 500  # up to this many pairs (a user's photos), `calibrate` also reports the leave-one-out ECE


def leave_one_out_ece(logits, labels, n_bins=N_BINS):
    """ECE of each pair's p under (T, s) fitted on all the other pairs: what a fit on a few dozen
    photos promises for the next photo (the in-sample ECE after a fit flatters it)."""
    z, y = _validate(logits, labels)
    p = np.empty((len(y), z.shape[1]))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        p[i] = probabilities(z[i:i + 1], *fit_calibration(z[keep], y[keep]))[0]
    return expected_calibration_error(p, y, n_bins)
