"""Parity: does an exported model give the Keras model's answers?

Every export checks each format on >= 64 real test pairs against the Keras
model it came from, with the rules below; a format that fails is not
published and the export exits non-zero. For siamese models the encoder
and head are checked too: `head(encoder(top), encoder(bottom))` must
meet the same rule as the full model.

| format                          | rule (p = p_harmonious, decision = p >= 0.5)                |
|---------------------------------|-------------------------------------------------------------|
| savedmodel, onnx, tflite (fp32) | max abs(p - p_keras) <= 1e-4 and the same decision on every pair |
| tflite_fp16                     | max abs(p - p_keras) <= 1e-2                                |
| tflite_int8                     | abs(ROC-AUC - ROC-AUC_keras) <= 0.01 and the same decision on >= 97 % of pairs |

A parity check on a saturated model (every p near 0 or 1) proves little,
so the report states how many Keras outputs lie in (0.02, 0.98) and warns
when fewer than a quarter do.
"""

import numpy as np

from neipalette_tf.evaluation.metrics import roc_points

THRESHOLD = 0.5
MIN_PAIRS = 64
RULES = {
    "savedmodel": {"max_abs_diff": 1e-4, "min_agreement": 1.0},
    "onnx": {"max_abs_diff": 1e-4, "min_agreement": 1.0},
    "tflite": {"max_abs_diff": 1e-4, "min_agreement": 1.0},
    "tflite_fp16": {"max_abs_diff": 1e-2},
    "tflite_int8": {"max_auc_diff": 0.01, "min_agreement": 0.97},
}
UNSATURATED = (0.02, 0.98)
MIN_UNSATURATED_FRACTION = 0.25


class PairSet:
    """Decoded pairs (uint8 `[N, S, S, 3]`) with labels, and where they came from."""
    def __init__(self, tops, bottoms, labels, source):
        self.tops, self.bottoms = tops, bottoms
        self.labels = np.asarray(labels)
        self.source = source

    def __len__(self):
        return len(self.labels)


def _auc(labels, p):
    roc = roc_points(labels, p)
    return None if roc is None else float(roc[2])


def batched(fn, *arrays, batch_size=32):
    """Apply `fn` to aligned arrays in batches and concatenate the results."""
    n = len(arrays[0])
    return np.concatenate([fn(*(a[i:i + batch_size] for a in arrays)) for i in range(0, n, batch_size)])


def predictions(runner, pairs, composed):
    """p of the full model, and of head(encoder, encoder) when `composed`."""
    p = {"model": batched(runner.predict_batch, pairs.tops, pairs.bottoms)}
    if composed:
        e_tops = batched(runner.embed_batch, pairs.tops)
        e_bottoms = batched(runner.embed_batch, pairs.bottoms)
        p["encoder+head"] = batched(runner.score_batch, e_tops, e_bottoms)
    return p


def compare(reference, p, labels, rule):
    """Differences of `p` from the Keras `reference`, judged by `rule`."""
    p = np.asarray(p, dtype=np.float64)
    finite = bool(np.isfinite(p).all())
    agreement = float(np.mean((p >= THRESHOLD) == (reference >= THRESHOLD)))
    auc_ref, auc = _auc(labels, reference), _auc(labels, p) if finite else None
    result = {
        "max_abs_diff": float(np.max(np.abs(p - reference))),
        "mean_abs_diff": float(np.mean(np.abs(p - reference))),
        "decision_agreement": agreement,
        "roc_auc": auc,
        "roc_auc_keras": auc_ref,
    }
    failures = [] if finite else [f"{int(np.sum(~np.isfinite(p)))} non-finite outputs"]
    if "max_abs_diff" in rule and not result["max_abs_diff"] <= rule["max_abs_diff"]:
        failures.append(f"max |dp| {result['max_abs_diff']:.3g} > {rule['max_abs_diff']}")
    if "min_agreement" in rule and agreement < rule["min_agreement"]:
        failures.append(f"decision agreement {agreement:.2%} < {rule['min_agreement']:.0%}")
    if "max_auc_diff" in rule:
        diff = abs(auc - auc_ref) if None not in (auc, auc_ref) else float("nan")
        result["roc_auc_diff"] = diff
        if not diff <= rule["max_auc_diff"]:
            failures.append(f"ROC-AUC differs by {diff:.3g} > {rule['max_auc_diff']}")
    result.update(passed=not failures, failures=failures)
    return result


def check(fmt, runner, pairs, reference, composed):
    """Parity of one format against the Keras p `reference`.

    Returns a dict with `passed` and one comparison per graph: "model" and,
    when `composed` (siamese), "encoder+head".
    """
    rule = RULES[fmt]
    graphs = {name: compare(reference, p, pairs.labels, rule)
              for name, p in predictions(runner, pairs, composed).items()}
    return {"rule": rule, "passed": all(g["passed"] for g in graphs.values()), **graphs}


def failure_summary(result):
    """One line: why a format failed."""
    if "error" in result:
        return result["error"]
    return " | ".join(f"{graph}: {'; '.join(r['failures'])}" for graph, r in result.items()
                      if isinstance(r, dict) and r.get("failures"))


def saturation(p):
    """How spread the reference outputs are (parity on saturated outputs proves little)."""
    low, high = UNSATURATED
    fraction = float(np.mean((p > low) & (p < high)))
    summary = {"unsaturated_fraction": fraction, "unsaturated_range": list(UNSATURATED),
               "p_quantiles": {q: float(np.quantile(p, float(q))) for q in ("0.05", "0.25", "0.5", "0.75", "0.95")}}
    if fraction < MIN_UNSATURATED_FRACTION:
        summary["warning"] = (f"only {fraction:.0%} of the Keras outputs lie in {UNSATURATED}: "
                              "the model is saturated and parity is a weak check")
    return summary


def report(pairs, reference, results):
    """The content of parity.json."""
    return {
        "pairs": len(pairs),
        "data": pairs.source,
        "threshold": THRESHOLD,
        "keras": {"roc_auc": _auc(pairs.labels, reference),
                  "accuracy": float(np.mean((reference >= THRESHOLD) == pairs.labels)),
                  **saturation(reference)},
        "formats": results,
        "passed": all(r["passed"] for r in results.values()),
    }
