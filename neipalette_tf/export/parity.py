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
| tflite_int8, onnx_int8         | abs(ROC-AUC - ROC-AUC_keras) <= 0.01 and the same decision on >= 97 % of pairs |

Siamese models' `attention` graphs (the read main colour and the colour
attention map, for `neipalette_tf.explain`) are checked on every image of
the pairs against the Keras model's `attention_outputs`: the colour's OKLab
distance (ΔE) and the attention map's L1 distance (sum of |a - a_keras|
over its pixels, 0..2), both at their maximum and (int8) 95th percentile,
with the bounds of `ATTENTION_RULES`. The graph's `palette` (each garment's K colours and shares)
is checked on the same images: entries matched to Keras' by the permutation with the least total
ΔE, then the largest entry ΔE and share difference (`palette_delta_e`, `palette_share_diff`).

A parity check on a saturated model (every p near 0 or 1) proves little,
so the report states how many Keras outputs lie in (0.02, 0.98) and warns
when fewer than a quarter do.
"""

import itertools

import numpy as np

from neipalette_tf.colour.space import OKLAB_SCALE
from neipalette_tf.core.formats import get_format, list_formats
from neipalette_tf.core.vocabulary import THRESHOLD
from neipalette_tf.evaluation.metrics import roc_points

MIN_PAIRS = 64
# Each format's bounds are part of its spec in the format registry (`core.formats`).
RULES = {name: get_format(name).parity for name in list_formats()}
ATTENTION_RULES = {name: get_format(name).attention for name in list_formats()}
RATING_RULES = {name: get_format(name).rating for name in list_formats()}
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


def read_colours(embeddings):
    """The main colours in embeddings `[N, D]` (their last three values) as OKLab `[N, 3]`."""
    return np.asarray(embeddings, np.float64)[:, -3:] / np.asarray(OKLAB_SCALE)


def attention(runner, pairs, batch_size=32):
    """(OKLab main colours `[2N, 3]`, attention maps `[2N, P]`, raw palettes `[2N, K, 4]`) of every
    top, then every bottom."""
    images = np.concatenate([pairs.tops, pairs.bottoms])
    colours, maps, palettes = [], [], []
    for i in range(0, len(images), batch_size):
        out = runner.attend_details(images[i:i + batch_size])
        colours.append(read_colours(out["embedding"]))
        maps.append(np.asarray(out["attention"], np.float64))
        palettes.append(np.asarray(out["palette"], np.float64))
    return np.concatenate(colours), np.concatenate(maps), np.concatenate(palettes)


def palette_differences(reference, got):
    """Per garment: (largest entry ΔE, largest share difference) of raw palettes `[N, K, 4]`, their
    entries matched by the permutation with the least total ΔE (the graphs' entry order may differ:
    the principal axis' sign is free)."""
    reference, got = np.asarray(reference, np.float64), np.asarray(got, np.float64)
    if reference.shape != got.shape:
        return np.full(len(reference), np.inf), np.full(len(reference), np.inf)
    best_e = best_s = None
    total = np.full(len(reference), np.inf)
    for perm in itertools.permutations(range(reference.shape[1])):
        d = np.linalg.norm(got[:, perm, :3] - reference[:, :, :3], axis=-1)  # [N, K]
        s = np.abs(got[:, perm, 3] - reference[:, :, 3])
        better = d.sum(axis=-1) < total
        total = np.where(better, d.sum(axis=-1), total)
        best_e = np.where(better, d.max(axis=-1), best_e if best_e is not None else np.inf)
        best_s = np.where(better, s.max(axis=-1), best_s if best_s is not None else np.inf)
    return best_e, best_s


def compare_attention(reference, got, rule):
    """Colour ΔE and attention L1 (and, where both carry one, the palette's entry ΔE and share
    difference) of `got` against the Keras `reference`, judged by `rule`."""
    delta_e = np.linalg.norm(got[0] - reference[0], axis=-1)
    l1 = np.abs(got[1] - reference[1]).sum(axis=-1) if got[1].shape == reference[1].shape else np.full(len(delta_e), 2.0)
    finite = bool(np.isfinite(got[0]).all() and np.isfinite(got[1]).all())
    values = {"max_colour_delta_e": float(np.max(delta_e)), "p95_colour_delta_e": float(np.quantile(delta_e, 0.95)),
              "max_attention_l1": float(np.max(l1)), "p95_attention_l1": float(np.quantile(l1, 0.95))}
    if len(got) > 2 and len(reference) > 2:
        entry_e, share = palette_differences(reference[2], got[2])
        finite = finite and bool(np.isfinite(got[2]).all())
        values.update(max_palette_delta_e=float(np.max(entry_e)), p95_palette_delta_e=float(np.quantile(entry_e, 0.95)),
                      max_palette_share_diff=float(np.max(share)), p95_palette_share_diff=float(np.quantile(share, 0.95)))
    failures = [] if finite else ["non-finite colours, attention or palette"]
    failures += [f"{key} {values[key]:.3g} > {bound}" for key, bound in rule.items()
                 if key in values and not values[key] <= bound]
    return {**values, "images": len(delta_e), "rule": rule, "passed": not failures, "failures": failures}


def ratings(runner, pairs):
    """People's rating `[N]` of every pair by `runner` (None when it has no rating output)."""
    return batched(runner.rate_batch, pairs.tops, pairs.bottoms) if runner.has_rating else None


def compare_rating(reference, got, rule):
    """|Δrating| of `got` against the Keras `reference`, judged by `rule`."""
    if got is None:
        return {"rule": rule, "passed": False, "failures": ["the graph has no rating output"]}
    diff = np.abs(np.asarray(got, np.float64) - reference)
    finite = bool(np.isfinite(diff).all())
    values = {"max_abs_diff": float(np.max(diff)), "p95_abs_diff": float(np.quantile(diff, 0.95)),
              "mean_abs_diff": float(np.mean(diff))}
    failures = [] if finite else ["non-finite ratings"]
    failures += [f"rating {key} {values[key]:.3g} > {bound}" for key, bound in rule.items() if not values[key] <= bound]
    return {**values, "pairs": len(diff), "rule": rule, "passed": not failures, "failures": failures}


def check(fmt, runner, pairs, reference, composed, attention_reference=None, rating_reference=None):
    """Parity of one format against the Keras p `reference`.

    Returns a dict with `passed` and one comparison per graph: "model" and,
    when `composed` (siamese), "encoder+head"; with `attention_reference`
    (`attention(KerasRunner, pairs)`), "attention" too.
    """
    rule = RULES[fmt]
    graphs = {name: compare(reference, p, pairs.labels, rule)
              for name, p in predictions(runner, pairs, composed).items()}
    if attention_reference is not None:
        graphs["attention"] = compare_attention(attention_reference, attention(runner, pairs), ATTENTION_RULES[fmt])
    if rating_reference is not None:
        graphs["rating"] = compare_rating(rating_reference, ratings(runner, pairs), RATING_RULES[fmt])
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
