"""Measure the explanations: the library behind `python -m neipalette_tf.explain_eval`.

The command, its flags and what it writes are described in `neipalette_tf/commands/explain_eval.py`;
this module holds the work, callable from Python.
"""

import time

import numpy as np

from neipalette_tf.colour import people
from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.colour.harmony import harmonious
from neipalette_tf.colour.space import oklab_to_oklch, oklch_to_oklab, srgb_to_oklab
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.data.manifest import LABEL_NAMES
from neipalette_tf.explanation import explain
from neipalette_tf.explanation.fixes import TARGET_P
from neipalette_tf.explanation.readings import ROLES
from neipalette_tf.explanation.recolour import shift_ab

WITHIN = 0.05


def _colour_stats(delta_e):
    d = np.asarray(delta_e, np.float64)
    if not len(d):
        return {"n": 0}
    return {"n": int(len(d)), "median_delta_e": round(float(np.median(d)), 4),
            "p90_delta_e": round(float(np.quantile(d, 0.9)), 4), f"share_within_{WITHIN}": round(float(np.mean(d <= WITHIN)), 4)}


def _recorded(row, role):
    try:
        return np.array([float(row[f"{role}_{k}"]) for k in ("L", "C", "h")])
    except (KeyError, TypeError, ValueError):
        return None


def evaluate(backend, manifest, limit=None, target=TARGET_P, log=print):
    """The two figures on one manifest; returns a dict (see the module docs)."""
    rows = manifest.rows[:limit] if limit else manifest.rows
    recorded = all(_recorded(r, "top") is not None for r in rows)
    delta_e, delta_heuristic, rule_agrees = [], [], []
    mean_delta_e, mean_heuristic = [], []  # the model's main colour (the mean), beside the colour shown
    flips = {"pairs": 0, "with_suggestion": 0, "model_flips": 0, "rule_harmonious": 0, "both": 0}
    people_model = people.default() if getattr(backend, "has_rating", False) else None
    # People models: the pairs the model calls clashing; does the top suggestion, on the photo, lift
    # both the model and the people model (on the recorded colours, moved as the photo was) over
    # the threshold?
    lifts = {"pairs": 0, "with_suggestion": 0, "model_over": 0, "people_over": 0, "both": 0}
    # People models, pairs labelled clashing with a multi-colour garment: palette suggestions
    on_palettes = {"pairs": 0, "with_suggestion": 0, "model_over": 0, "delta_e": [], "rating_before": [],
                   "rating_after": []}
    start = time.perf_counter()
    for n, row in enumerate(rows):
        images = [load_image(row[role], backend.image_size) for role in ROLES]
        clashing = int(row["label"]) == LABEL_NAMES.index("clashing")
        result = explain.explain_images(backend, *images, target=target, k=1, always_suggest=clashing)
        if clashing and "palette_suggestions" in result:
            _palette_lift(result, on_palettes)
        if people_model is not None and result["label"] == "clashing":
            _people_lift(backend, people_model, row, images, result, recorded, lifts)
        reads = np.array([result["colours"][role]["oklab"] for role in ROLES])
        means = _means(result)
        for i, role in enumerate(ROLES):
            truth = oklch_to_oklab(_recorded(row, role)) if recorded else srgb_to_oklab(estimate_main_colour(images[i]))
            (delta_e if recorded else delta_heuristic).append(float(np.linalg.norm(reads[i] - truth)))
            (mean_delta_e if recorded else mean_heuristic).append(float(np.linalg.norm(means[i] - truth)))
        rule_agrees.append(bool(result["rule"]["harmonious"]) != clashing)
        if not clashing:
            continue
        flips["pairs"] += 1
        if not result["suggestions"]:
            continue
        s = result["suggestions"][0]
        flips["with_suggestion"] += 1
        flip = _model_over_on_photo(backend, images, result, s)
        if recorded:
            truth = _moved_truth(row, means, s)
            rule_ok = bool(harmonious(oklab_to_oklch(truth[0]), oklab_to_oklch(truth[1])))
        else:
            rule_ok = bool(s["rule_harmonious"])
        flips["model_flips"] += flip
        flips["rule_harmonious"] += rule_ok
        flips["both"] += flip and rule_ok
        if log and (n + 1) % 50 == 0:
            log(f"  {n + 1}/{len(rows)} pairs ({time.perf_counter() - start:.0f} s)")
    pairs = max(flips["pairs"], 1)
    summary = {"manifest": manifest.path, "pairs": len(rows), "seconds": round(time.perf_counter() - start, 1),
               "rule_on_read_colours_matches_label": round(float(np.mean(rule_agrees)), 4)}
    if recorded:
        summary["read_colour_vs_recorded"] = _colour_stats(delta_e)
        summary["mean_colour_vs_recorded"] = _colour_stats(mean_delta_e)
    else:
        summary["read_colour_vs_heuristic_estimate"] = _colour_stats(delta_heuristic)
        summary["mean_colour_vs_heuristic_estimate"] = _colour_stats(mean_heuristic)
    if people_model is not None:
        n_people = max(lifts["pairs"], 1)
        summary["people_suggestions"] = {
            **lifts, "share_with_suggestion": round(lifts["with_suggestion"] / n_people, 4),
            "share_model_over": round(lifts["model_over"] / n_people, 4),
            "share_people_over": round(lifts["people_over"] / n_people, 4),
            "share_both": round(lifts["both"] / n_people, 4),
            "rating_threshold": people.RATING_THRESHOLD, "target_p": target}
    if people_model is not None:
        summary["palette_suggestions"] = _palette_summary(on_palettes)
    summary["suggestions"] = {**flips, "share_flips_model_and_rule": round(flips["both"] / pairs, 4),
                              "share_with_suggestion": round(flips["with_suggestion"] / pairs, 4),
                              "share_model_flips": round(flips["model_flips"] / pairs, 4),
                              "share_rule_harmonious": round(flips["rule_harmonious"] / pairs, 4),
                              "target_p": target}
    return summary


def _people_lift(backend, model, row, images, result, recorded, lifts):
    """Count one pair the model calls clashing: does its top suggestion lift model and people over?"""
    lifts["pairs"] += 1
    if not result["suggestions"]:
        return
    s = result["suggestions"][0]
    lifts["with_suggestion"] += 1
    over = _model_over_on_photo(backend, images, result, s)
    if recorded:
        truth = _moved_truth(row, _means(result), s)
        people_ok = float(model.rate(truth[0], truth[1])) >= people.RATING_THRESHOLD
    else:
        people_ok = (s.get("rating_pixels") or 0.0) >= people.RATING_THRESHOLD
    lifts["model_over"] += over
    lifts["people_over"] += people_ok
    lifts["both"] += over and people_ok


def _palette_lift(result, tally):
    """Count one clashing pair with a multi-colour garment: its top palette suggestion, if any."""
    tally["pairs"] += 1
    if not result["palette_suggestions"]:
        return
    s = result["palette_suggestions"][0]
    tally["with_suggestion"] += 1
    tally["model_over"] += s["p_pixels"] >= result["threshold"]
    tally["delta_e"].append(s["delta_e"])
    tally["rating_before"].append(result["palette_rating"])
    tally["rating_after"].append(s["rating_pixels"])


def _palette_summary(tally):
    """Palette suggestions on clashing pairs with a multi-colour garment (`explain`'s `palette_suggestions`):
    the share with one; of the top ones, the model's p on the photo over the threshold, the median
    ΔE of the change and people's outfit palette rating before and on the recoloured photo."""
    n, found = max(tally["pairs"], 1), max(tally["with_suggestion"], 1)
    median = lambda xs: round(float(np.median(xs)), 4) if xs else None  # noqa: E731
    return {"pairs": tally["pairs"], "with_suggestion": tally["with_suggestion"],
            "share_with_suggestion": round(tally["with_suggestion"] / n, 4),
            "share_model_over": round(tally["model_over"] / found, 4),
            "median_delta_e": median(tally["delta_e"]), "median_rating_before": median(tally["rating_before"]),
            "median_rating_on_photo": median(tally["rating_after"])}


def _model_over_on_photo(backend, images, result, s):
    """The photo recoloured by suggestion `s`, re-scored by the full model graph: over the threshold?

    (The explanation scored it through encoder + head, which the export checks are the same computation.)
    """
    i = ROLES.index(s["role"])
    pair = [image[None] for image in images]
    pair[i] = result["_previews"][0][None]
    return float(backend.predict_batch(*pair)[0]) >= result["threshold"]


def _means(result):
    """The model's main colours (OKLab `[2, 3]`): what the suggestion search and the recolouring start
    from (`colours.<role>.mean`; the colour shown is the palette's dominant one)."""
    return np.array([result["colours"][role]["mean"]["oklab"] for role in ROLES])


def _moved_truth(row, reads, s):
    """The recorded colours (OKLab) with suggestion `s` applied as the recolouring moved the photo
    (`reads`: the colours the recolouring moved from, the model's main colours)."""
    i = ROLES.index(s["role"])
    truth = [oklch_to_oklab(_recorded(row, role)) for role in ROLES]
    moved = truth[i].copy()
    moved[1:] = shift_ab(truth[i][1:], reads[i], s["colour"]["oklab"])
    moved[0] += s["colour"]["oklab"][0] - reads[i][0]  # the lightness step (none at the garment's lightness)
    truth[i] = moved
    return truth
