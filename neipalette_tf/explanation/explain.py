"""Why a top and a bottom clash, and which colour would fix it: the library behind `python -m neipalette_tf.explain`.

The command, its flags and what it writes are described in `neipalette_tf/commands/explain.py`;
this module puts one explanation together, callable from Python. Its parts, one module each:
`readings` (the garments' pass through the model, their colours, the rule and people in words),
`fixes` (candidate colours through the head), `recolour` (a garment's colour region moved on the
photo), `palette_fixes` (a multi-colour garment: recolour one palette entry), `figure` (the heat
overlay and `explain.png`).
"""

import os

import numpy as np

from neipalette_tf.colour import palette, people
from neipalette_tf.colour.harmony import RULE_VERSION
from neipalette_tf.colour.space import oklab_to_oklch
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import THRESHOLD  # the service and CLIs read explain.THRESHOLD, TARGET_P, ROLES
from neipalette_tf.explanation import palette_fixes
from neipalette_tf.explanation.fixes import (
    MIN_SUGGESTION_SPACING,
    PEOPLE_MARGIN,
    SUGGESTIONS,
    TARGET_P,
    _judge_applied,
    nearest_fixes,
)
from neipalette_tf.explanation.readings import (
    ROLES,
    colour_info,
    embedding_colours,
    people_reading,
    read_garments,
    rule_reading,
    shown_colours,
)
from neipalette_tf.explanation.recolour import colour_region, recolour
from neipalette_tf.predictors import load_predictor


def load_backend(path, threads=None):
    """The model at `path` as a `Predictor` that explains (a siamese model; any format, `load_predictor`)."""
    return load_predictor(path, threads=threads, embeddings=True)


def _label(p, threshold):
    return "harmonious" if p >= threshold else "clashing"


def explain_images(backend, top, bottom, threshold=THRESHOLD, target=TARGET_P, k=SUGGESTIONS, previews=True,
                   always_suggest=False, prefer_rule=True, check_all=True, full_model=True, palette_suggest=True):
    """The explanation of one pair of preprocessed uint8 images `[S, S, 3]`.

    Returns a JSON-ready dict (see `--json`); with `previews`, the
    recoloured images themselves are under the private key `_previews`
    (uint8 arrays, one per suggestion) and the attention maps under
    `_attention` (float arrays `[h, w]`, or None), for drawing.
    `always_suggest`: look for fixes even when the model says harmonious.

    Suggestions: candidate colours at the garment's lightness go through
    the head (`nearest_fixes`); the nearest that reach `target` there and
    the head's strongest few are recoloured on the photo and re-scored by
    the full model; those reaching `target` on the photo are the
    suggestions, nearest first — with `prefer_rule`, the ones the rule
    also calls harmonious (on the read colours) ahead of the rest.
    A photo is re-scored as the full model would: the recoloured garment
    through the encoder, its embedding and the other garment's through the
    head (the export checks that head(encoder) equals the model).
    `check_all`: check every candidate on pixels (each fix then carries its
    `p_pixels`); otherwise stop once `k` suggestions are found, checking
    `k` candidates at a time in the order suggestions are picked — the same
    suggestions, with less work (the web service); unchecked fixes have
    `p_pixels` None. `full_model`: p from the full model graph; otherwise
    p is the head's on the embeddings just read (the same computation in
    float formats, 1e-5 apart; one pass less).

    `palette_suggest` (people-trained models): when a garment is
    multi-colour (`palette_fixes.is_multi_colour`: its palette's second
    entry covers >= `palette_fixes.MULTI_COLOUR_SHARE` of it), fixes that
    recolour one palette entry of it, checked on the photo, are added as
    `palette_suggestions` (with `palette_rating`, people's rating of the
    outfit palette now, and their photos under `_palette_previews`);
    plain garments add nothing and cost nothing.
    """
    images = np.stack([top, bottom])
    embeddings, labs, attention, raw_palettes = read_garments(backend, images, palettes=True)
    p_head = float(backend.score_batch(embeddings[:1], embeddings[1:])[0])
    people_model = people.default() if getattr(backend, "has_rating", False) else None
    rating = None
    if full_model and people_model is not None:
        details = backend.predict_details(images[:1], images[1:])
        p = float(details["p"][0])
        rating = None if details["rating"] is None else float(details["rating"][0])
    elif full_model:
        p = float(backend.predict_batch(images[:1], images[1:])[0])
    else:
        p = p_head
    shown = shown_colours(labs, raw_palettes)  # what the readings name; `labs` is what the model scores
    garments = {role: colour_info(shown[i]) for i, role in enumerate(ROLES)}
    for i, role in enumerate(ROLES):
        garments[role]["read_as"] = "mean" if raw_palettes is None else "dominant"
        garments[role]["mean"] = {"hex": palette.hex_colour(labs[i]), "oklab": [round(float(v), 4) for v in labs[i]]}
        garments[role]["palette"] = None if raw_palettes is None else palette.as_json(raw_palettes[i])
        garments[role]["attention_map"] = None if attention is None else {
            "shape": list(attention[i].shape), "peak": [int(v) for v in np.unravel_index(attention[i].argmax(),
                                                                                         attention[i].shape)]}
    lchs = oklab_to_oklch(shown)
    rule_ok, sentence = rule_reading(lchs[0], lchs[1], (garments["top"]["name"], garments["bottom"]["name"]))
    result = {
        "model": {"path": backend.path, "format": backend.format, "image_size": int(backend.image_size)},
        "p_harmonious": round(p, 6), "p_head": round(p_head, 6), "threshold": threshold,
        "label": _label(p, threshold),
        "colours": garments,
        "rule": {"version": RULE_VERSION, "harmonious": rule_ok, "reading": sentence},
        "attention_available": attention is not None,
        "fixes": {}, "suggestions": [],
    }
    read = (f"it read the top as {garments['top']['name']} ({garments['top']['hex']}) and the bottom as "
            f"{garments['bottom']['name']} ({garments['bottom']['hex']})")
    if people_model is not None:
        reading = people_reading(shown[0], shown[1], (garments["top"]["name"], garments["bottom"]["name"]),
                                 people_model)
        # the model's own rating output when the full graph ran; else the people model on the read colours
        result["rating"] = round(rating if rating is not None else reading["rating"], 4)
        result["people"] = reading
        result["explanation"] = (f"The model scores this pair p = {p:.2f} ({result['label']}); {read}. "
                                 f"{reading['reading'][0].upper()}{reading['reading'][1:]}. "
                                 f"Colour theory (rule {RULE_VERSION}): {sentence}.")
    else:
        result["explanation"] = (f"The model scores this pair p = {p:.2f} ({result['label']}); {read}. "
                                 f"Rule {RULE_VERSION}: {sentence}.")
    hidden = {"_previews": [], "_attention": None if attention is None else list(attention)}
    if p < threshold or always_suggest:
        fixes = nearest_fixes(backend, embeddings[0], embeddings[1], target, k, people_model)
        _judge_applied([s for role in ROLES for s in fixes[role] + fixes[role + "_shortlist"]], labs,
                       people_model)
        # The candidates in the order the suggestions are picked: the ones the rule also calls
        # harmonious (with the other garment's read colour) first, then the nearest. Picking is greedy
        # in this order, so checking them on pixels in this order and stopping once `k` are picked
        # gives the same suggestions as checking all of them.
        # People models: the nearest colours people would call harmonious, the rule left out of the order.
        prefer = prefer_rule and people_model is None
        order = sorted((s for role in ROLES for s in fixes[role] + fixes[role + "_shortlist"]),
                       key=lambda s: (not (s["rule_ok"] and prefer), s["delta_e"]))
        regions = {}
        best = []
        step = max(1, len(order)) if check_all else max(1, k)
        for start in range(0, len(order), step):
            batch = order[start:start + step]
            _check_on_pixels(backend, batch, images, embeddings, attention, labs, regions, people_model)
            for s in batch:
                people_ok = people_model is None or s["rating_pixels"] >= people.RATING_THRESHOLD + PEOPLE_MARGIN
                if s["p_pixels"] >= target and people_ok and all(
                        s["role"] != b["role"] or np.linalg.norm(s["oklab"] - b["oklab"]) >= MIN_SUGGESTION_SPACING
                        for b in best):
                    best.append(s)
            if len(best) >= k and not check_all:
                break
        infos = {}
        for role in ROLES:
            result["fixes"][role] = [_suggestion_json(s, shown, threshold, infos) for s in fixes[role]]
        for s in best[:k]:
            result["suggestions"].append(_suggestion_json(s, shown, threshold, infos))
            hidden["_previews"].append(s["preview"])
        if palette_suggest and people_model is not None and raw_palettes is not None:
            _suggest_on_palettes(backend, images, embeddings, attention, raw_palettes, k, people_model, threshold,
                                 always_suggest, result, hidden)
    if previews:
        result.update(hidden)
    return result


def _suggest_on_palettes(backend, images, embeddings, attention, raw_palettes, k, people_model, threshold,
                         always_suggest, result, hidden):
    """`palette_suggestions` (and `palette_rating`, `_palette_previews`) when a garment is multi-colour
    (`palette_fixes.is_multi_colour`); plain garments: nothing added, nothing run. An outfit palette
    people already rate over the line gets none unless `always_suggest`."""
    read = [palette.read_palette(raw) for raw in raw_palettes]
    multi = [g for g in range(len(ROLES)) if palette_fixes.is_multi_colour(read[g])]
    if not multi:
        return
    now = palette_fixes.outfit_rating(read, people_model)
    result["palette_rating"] = round(now, 4)
    result["palette_suggestions"], hidden["_palette_previews"] = [], []
    if now >= people.RATING_THRESHOLD + PEOPLE_MARGIN and not always_suggest:
        return
    good, _, shots = palette_fixes.palette_suggestions(backend, images, embeddings, attention.reshape(len(ROLES), -1),
                                                       read, multi, k, model=people_model)
    result["palette_suggestions"] = [palette_fixes.suggestion_json(c, threshold) for c in good]
    hidden["_palette_previews"] = shots


def _check_on_pixels(backend, batch, images, embeddings, attention, labs, regions, people_model=None):
    """Recolour the photo for each suggestion in `batch` and score it (`s["preview"]`, `s["p_pixels"]`).

    The recoloured garments go through the encoder in one batch and, with
    the other garment's embedding, through the head. `regions` caches each
    garment's colour region. With `people_model`, `s["rating_pixels"]`: people's
    rating of the colour read off the recoloured photo with the other garment's.
    """
    for s in batch:
        i = ROLES.index(s["role"])
        if i not in regions:
            regions[i] = colour_region(images[i], None if attention is None else attention[i], labs[i])
        s["preview"] = recolour(images[i], regions[i], labs[i], s["oklab"])
        s["region_share"] = float(regions[i].mean())
    moved = backend.embed_batch(np.stack([s["preview"] for s in batch]))
    roles = np.array([ROLES.index(s["role"]) for s in batch])
    e_tops = np.where((roles == 0)[:, None], moved, embeddings[0][None])
    e_bottoms = np.where((roles == 1)[:, None], moved, embeddings[1][None])
    for s, pp in zip(batch, backend.score_batch(e_tops.astype(np.float32), e_bottoms.astype(np.float32))):
        s["p_pixels"] = float(pp)
    if people_model is not None:
        ratings = people_model.rate(embedding_colours(e_tops), embedding_colours(e_bottoms))
        for s, r in zip(batch, ratings):
            s["rating_pixels"] = float(r)


def _info(lab, cache):
    """`colour_info(lab)`, each colour worked out once per explanation (a copy per use)."""
    key = tuple(np.asarray(lab, np.float64).tolist())
    if key not in cache:
        cache[key] = colour_info(lab)
    return dict(cache[key])


def _suggestion_json(s, shown, threshold, cache=None):
    """One fix as JSON: `from` is the garment's colour as shown (`shown_colours`), `delta_e` the distance
    from the model's main colour (the search's). `cache`: colour infos already worked out (a dict)."""
    i = ROLES.index(s["role"])
    cache = {} if cache is None else cache
    info, current = _info(s["oklab"], cache), _info(shown[i], cache)
    checked = "p_pixels" in s
    people_keys = {}
    if "rating" in s:
        people_keys = {"rating": round(s["rating"], 4),
                       "rating_pixels": round(s["rating_pixels"], 4) if "rating_pixels" in s else None}
    return {**people_keys, "role": s["role"], "colour": info, "from": current, "delta_e": round(s["delta_e"], 4),
            "p_head": round(s["p_head"], 6),
            "p_pixels": round(s["p_pixels"], 6) if checked else None,
            "label_pixels": _label(s["p_pixels"], threshold) if checked else None,
            "region_share": round(s["region_share"], 4) if checked else None,
            "rule_harmonious": s["rule_ok"],
            "text": f"make the {s['role']} {info['name']} ({info['hex']}) instead of {current['name']}"}


def explain_pair(backend, top, bottom, **kwargs):
    """`explain_images` of two photos (paths, bytes or `load_image` arrays)."""
    load = lambda x: x if isinstance(x, np.ndarray) else load_image(x, backend.image_size)  # noqa: E731
    result = explain_images(backend, load(top), load(bottom), **kwargs)
    for role, source in zip(ROLES, (top, bottom)):
        if isinstance(source, (str, os.PathLike)):
            result["colours"][role]["file"] = os.fspath(source)
    return result


def public(result):
    """The explanation without its private arrays (`_previews`, `_attention`, `_palette_previews`)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}
