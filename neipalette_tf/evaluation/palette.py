"""Measure the palette reading: the read palette against the renderer's recorded one.

On a synthetic split whose `pairs.csv` records each garment's palette (`synth --multicolour`:
`top_pattern`, `top_palette`, ...; older sets: every garment plain, its main colour):

- **multi-colour garments**: the read entries (`colour.palette.read_palette`) matched to the
  recorded ones by the least total ΔE_OK (Hungarian); per matched entry its ΔE_OK and |Δshare|;
  per garment the total-variation distance between the two share vectors (unmatched entries count
  in full) and whether the number of colours agrees (recorded entries under the reader's
  `MIN_SHARE` are not counted as colours there);
- **plain garments** (`pattern` "none": one main colour, prints of <= 30 % allowed): ΔE_OK of the
  dominant colour (the palette's first entry) and of the attention-weighted mean (the main colour
  the model's head sees) against the recorded main colour.

Goals (issue 32): multi-colour median entry ΔE_OK <= 0.04, median |Δshare| <= 0.10; plain
median ΔE_OK <= 0.03.
"""

import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from neipalette_tf.colour import palette as palettes
from neipalette_tf.colour.space import OKLAB_SCALE, oklch_to_oklab
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.data.synth.table import parse_palette

GOALS = {"multi_median_delta_e": 0.04, "multi_median_share_error": 0.10, "plain_median_delta_e": 0.03}


def recorded_palette(row, role):
    """(pattern, [(OKLab [3], share)]) of one garment of a synthetic manifest row."""
    text = row.get(f"{role}_palette")
    if text:
        return row.get(f"{role}_pattern") or "none", [(oklch_to_oklab(np.array(c)), s) for c, s in parse_palette(text)]
    lch = np.array([float(row[f"{role}_{k}"]) for k in ("L", "C", "h")])
    return "none", [(oklch_to_oklab(lch), 1.0)]


def match(read, recorded):
    """Read entries matched to recorded ones by the least total ΔE_OK.

    Returns (entry ΔE `[M]`, entry |Δshare| `[M]`, total-variation distance of the share vectors).
    """
    cost = np.array([[np.linalg.norm(r[0] - t[0]) for t in recorded] for r in read])
    rows, cols = linear_sum_assignment(cost)
    delta_e = cost[rows, cols]
    share = np.array([abs(read[i][1] - recorded[j][1]) for i, j in zip(rows, cols)])
    unmatched = sum(r[1] for i, r in enumerate(read) if i not in rows) + \
        sum(t[1] for j, t in enumerate(recorded) if j not in cols)
    return delta_e, share, 0.5 * (float(share.sum()) + unmatched)


def _stats(values):
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "median": round(float(np.median(v)), 4), "p90": round(float(np.quantile(v, 0.9)), 4),
            "mean": round(float(np.mean(v)), 4)}


def evaluate(predictor, manifest, limit=None, batch_size=32, log=print):
    """The figures on `manifest`'s rows (a synthetic split) with `predictor` (any siamese model)."""
    started = time.perf_counter()
    rows = manifest.rows[:limit] if limit else manifest.rows
    garments = [(row, role) for row in rows for role in ("top", "bottom")]
    multi = {"delta_e": [], "share": [], "tv": [], "count_ok": [], "by_pattern": {}}
    plain = {"dominant": [], "mean": []}
    for start in range(0, len(garments), batch_size):
        chunk = garments[start:start + batch_size]
        images = np.stack([load_image(row[role], predictor.image_size) for row, role in chunk])
        out = predictor.attend_details(images)
        means = np.asarray(out["embedding"], np.float64)[:, -3:] / np.asarray(OKLAB_SCALE)
        for (row, role), raw, mean in zip(chunk, out["palette"], means):
            pattern, recorded = recorded_palette(row, role)
            read = palettes.read_palette(raw)
            if pattern == "none":
                plain["dominant"].append(float(np.linalg.norm(read[0][0] - recorded[0][0])))
                plain["mean"].append(float(np.linalg.norm(mean - recorded[0][0])))
                continue
            counted = [t for t in recorded if t[1] >= palettes.MIN_SHARE]
            delta_e, share, tv = match(read, counted)
            multi["delta_e"] += delta_e.tolist()
            multi["share"] += share.tolist()
            multi["tv"].append(tv)
            multi["count_ok"].append(len(read) == len(counted))
            p = multi["by_pattern"].setdefault(pattern, {"delta_e": [], "share": []})
            p["delta_e"] += delta_e.tolist()
            p["share"] += share.tolist()
        if log:
            log(f"  {min(start + batch_size, len(garments))}/{len(garments)} garments")
    summary = {
        "pairs": len(rows),
        "garments": len(garments),
        "multicolour": {
            "garments": len(multi["tv"]),
            "entry_delta_e": _stats(multi["delta_e"]),
            "entry_share_error": _stats(multi["share"]),
            "share_total_variation": _stats(multi["tv"]),
            "colour_count_agrees": round(float(np.mean(multi["count_ok"])), 4) if multi["count_ok"] else None,
            "by_pattern": {k: {"entry_delta_e": _stats(v["delta_e"]), "entry_share_error": _stats(v["share"])}
                           for k, v in sorted(multi["by_pattern"].items())},
        },
        "plain": {"garments": len(plain["dominant"]), "dominant_delta_e": _stats(plain["dominant"]),
                  "mean_delta_e": _stats(plain["mean"])},
        "seconds": round(time.perf_counter() - started, 1),
    }
    m, p = summary["multicolour"], summary["plain"]
    summary["goals"] = {
        "multi_median_delta_e": _goal(m["entry_delta_e"], GOALS["multi_median_delta_e"]),
        "multi_median_share_error": _goal(m["entry_share_error"], GOALS["multi_median_share_error"]),
        "plain_median_delta_e": _goal(p["dominant_delta_e"], GOALS["plain_median_delta_e"]),
    }
    return summary


def _goal(stats, bound):
    if not stats.get("n"):
        return {"bound": bound, "met": None}
    return {"bound": bound, "value": stats["median"], "met": stats["median"] <= bound}
