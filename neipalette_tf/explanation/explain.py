"""Why a top and a bottom clash, and which colour would fix it: the library behind `python -m neipalette_tf.explain`.

The command, its flags and what it writes are described in `neipalette_tf/explain.py`;
this module holds the work, callable from Python.
"""

import math
import os
import textwrap

import numpy as np

from neipalette_tf.colour import palette, people
from neipalette_tf.colour.harmony import (
    ANALOGOUS_MAX_DEG,
    COMPLEMENTARY_MIN_DEG,
    NEUTRAL_ZONES,
    RULE_VERSION,
    harmonious,
    hue_distance,
)
from neipalette_tf.colour.names import colour_name_of_oklab, hex_of_srgb
from neipalette_tf.colour.space import (
    OKLAB_SCALE,
    in_srgb_gamut,
    oklab_to_oklch,
    oklab_to_srgb,
    oklch_to_oklab,
    oklch_to_srgb,
    srgb_to_oklab,
)
from neipalette_tf.core.errors import ArtifactError
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import THRESHOLD  # noqa: F401 - explain.THRESHOLD: the service and CLIs read it here
from neipalette_tf.predictors import load_predictor

ROLES = ("top", "bottom")
TARGET_P = 0.8
SUGGESTIONS = 3
# Candidate colours for a garment: its own lightness, these chromas, hues every HUE_STEP degrees.
CANDIDATE_CHROMAS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.18, 0.22, 0.26)
HUE_STEP = 10.0
MIN_SUGGESTION_SPACING = 0.04  # OKLab distance between two suggestions for one garment
# Besides the nearest colours the head scores >= target, each garment's PIXEL_SHORTLIST colours
# the head scores highest are recoloured and checked by the full model: a head that reads the
# backbone features as well as the swapped-in colour may never reach the target on its own.
PIXEL_SHORTLIST = 6
# Recolouring: pixels belong to the garment's colour region when their OKLab distance to the read
# colour (lightness counted at LIGHTNESS_WEIGHT: shading changes L, not the fabric) is below
# REGION_NEAR (fully) .. REGION_FAR (not at all), inside the blurred attention's support.
REGION_NEAR, REGION_FAR, LIGHTNESS_WEIGHT = 0.07, 0.14, 0.4
SUPPORT_FRACTION = 0.08  # of the blurred attention map's peak
GREY_CHROMA = 0.03  # below: a hue shift is meaningless, the colour is moved (a, b translated)
# People-trained models: a suggested colour must lift people's rating (with the other garment's
# read colour) this far over the threshold, and the rating re-read off the recoloured photo over it.
PEOPLE_MARGIN = 0.15
# People models: candidates also lighter and darker than the garment (the recolouring moves each
# pixel's lightness by the same step, so shading and texture stay).
PEOPLE_LIGHTNESS_STEPS = (-0.24, -0.16, -0.08, 0.0, 0.08, 0.16, 0.24)
LIGHTNESS_RANGE = (0.12, 0.97)


def load_backend(path, threads=None):
    """The model at `path` as a `Predictor` that explains (a siamese model; any format, `load_predictor`)."""
    return load_predictor(path, threads=threads, embeddings=True)


def read_garments(backend, images, palettes=False):
    """Embeddings `[N, D]`, read colours (OKLab `[N, 3]`) and attention maps `[N, h, w]` (or None);
    with `palettes`, also each garment's palette, `[{"hex", "share"}]` largest first (or None;
    `neipalette_tf.colour.palette`), from the same pass."""
    images = np.asarray(images)
    raw = None
    try:
        if hasattr(backend, "attend_details"):  # every Predictor; stand-ins may only attend
            out = backend.attend_details(images)
            embeddings, attention, raw = out["embedding"], out["attention"], out["palette"]
        else:
            embeddings, attention = backend.attend_batch(images)
            raw = palette.palettes_from_attention(images, attention)
        side = math.isqrt(attention.shape[1])
        attention = np.asarray(attention, np.float64).reshape(len(images), side, side)
    except ArtifactError:  # no attention graph (an export made before it existed)
        embeddings, attention = backend.embed_batch(images), None
    embeddings = np.asarray(embeddings, np.float32)
    if palettes:
        return embeddings, embedding_colours(embeddings), attention, \
            None if raw is None else [palette.as_json(r) for r in raw]
    return embeddings, embedding_colours(embeddings), attention


def embedding_colours(embeddings):
    """The main colours in garment embeddings (their last three values), as OKLab `[N, 3]`."""
    return np.asarray(embeddings, np.float64)[:, -3:] / np.asarray(OKLAB_SCALE)


def with_colours(embeddings, labs):
    """Copies of one embedding `[D]` with its main colour replaced by each OKLab colour `[M, 3]`."""
    out = np.repeat(np.asarray(embeddings, np.float32)[None], len(labs), axis=0)
    out[:, -3:] = np.asarray(labs, np.float64) * np.asarray(OKLAB_SCALE)
    return out


# --------------------------------------------------------------------------
# Colours and the rule, in words
# --------------------------------------------------------------------------


def colour_info(lab):
    """hex, OKLCH, OKLab and name of one OKLab colour (JSON-ready)."""
    lab = np.asarray(lab, np.float64)
    L, C, h = oklab_to_oklch(lab)
    return {"hex": hex_of_srgb(oklch_to_srgb(np.array([L, C, h]))), "name": colour_name_of_oklab(lab),
            "oklch": [round(float(L), 4), round(float(C), 4), round(float(h), 2)],
            "oklab": [round(float(v), 4) for v in lab]}


def neutral_zone(lch):
    """The rule's neutral zone of an OKLCH colour (as in `harmony.is_neutral`), or None."""
    _, C, h = (float(v) for v in lch)
    h %= 360.0
    for zone, (low, high, chroma_below) in NEUTRAL_ZONES.items():
        if low <= h <= high and C < chroma_below:
            return zone, chroma_below
    return None


def _zone_words(zone):
    return {"achromatic": "an achromatic neutral", "navy_denim": "a navy / denim neutral",
            "earth": "an earth neutral"}.get(zone, f"a neutral ({zone})")


def rule_reading(top_lch, bottom_lch, names=("", "")):
    """The rule's verdict on two OKLCH colours, in one sentence (and the verdict as a bool).

    Thresholds are `harmony`'s; the sentence says which clause decided.
    """
    top_lch, bottom_lch = np.asarray(top_lch, np.float64), np.asarray(bottom_lch, np.float64)
    ok = bool(harmonious(top_lch, bottom_lch))
    things = [f"the {n + ' ' if n else ''}{role}" for n, role in zip(names, ROLES)]
    zones = [neutral_zone(top_lch), neutral_zone(bottom_lch)]
    d = float(hue_distance(top_lch[2], bottom_lch[2]))
    if any(zones):
        neutral = [f"{t} is {_zone_words(z[0])} (chroma {c[1]:.3f} < {z[1]:g})"
                   for t, z, c in zip(things, zones, (top_lch, bottom_lch)) if z]
        return ok, f"harmonious: {' and '.join(neutral)}, and anything goes with a neutral"
    apart = f"{things[0]} and {things[1]} are {d:.0f}° apart in hue"
    if d <= ANALOGOUS_MAX_DEG:
        return ok, f"harmonious: {apart} — analogous (≤ {ANALOGOUS_MAX_DEG:g}°)"
    if d >= COMPLEMENTARY_MIN_DEG:
        return ok, f"harmonious: {apart} — complementary (≥ {COMPLEMENTARY_MIN_DEG:g}°)"
    return ok, (f"clashing: {apart} — neither analogous (≤ {ANALOGOUS_MAX_DEG:g}°) nor complementary "
                f"(≥ {COMPLEMENTARY_MIN_DEG:g}°), and neither is a neutral")


# --------------------------------------------------------------------------
# People's rating, in words
# --------------------------------------------------------------------------

# A term of the people model counts as a reason when it moves the rating by at least this much.
PEOPLE_TERM_MIN = 0.03
PEOPLE_COMFORTABLE_DISTANCE = 0.2  # OKLab distance where the people model's distance term peaks


def _people_term_words(term, value, lab_t, lab_b, names):
    """One phrase for one term of the people model (`people.PeopleModel.contributions`)."""
    lch_t, lch_b = oklab_to_oklch(lab_t), oklab_to_oklch(lab_b)
    good = value > 0
    if term in ("like_a", "like_b"):
        role, name = ("top", names[0]) if term == "like_a" else ("bottom", names[1])
        return (f"people like {name or 'the ' + role + ' colour'} on its own" if good
                else f"people rarely like {name or 'the ' + role + ' colour'} on its own")
    if term == "lightness_contrast":
        d_l = abs(float(lch_t[0] - lch_b[0]))
        if good:
            return f"a pleasing lightness contrast (ΔL {d_l:.2f})"
        return (f"too little lightness contrast (ΔL {d_l:.2f})" if d_l < 0.25
                else f"a harsh lightness contrast (ΔL {d_l:.2f})")
    if term == "saturation":
        chromas = sorted([float(lch_t[1]), float(lch_b[1])])
        if good:
            return "calm, muted colours" if chromas[1] < 0.12 else "saturation in good balance"
        return ("two strongly saturated colours" if chromas[0] >= 0.1
                else "a strongly saturated colour against a muted one" if chromas[1] >= 0.1
                else "two dull colours")
    if term == "hue_relation":
        return "hues that sit well together" if good else "hues that fight each other"
    # distance: people prefer two colours a moderate OKLab distance apart (the term peaks near 0.2)
    d_e = float(np.linalg.norm(np.asarray(lab_t) - np.asarray(lab_b)))
    if good:
        return f"colours a comfortable distance apart (ΔE {d_e:.2f})"
    return (f"colours too close to tell apart (ΔE {d_e:.2f})" if d_e < PEOPLE_COMFORTABLE_DISTANCE
            else f"colours far apart, a stark pair (ΔE {d_e:.2f})")


def people_reading(lab_t, lab_b, names=("", ""), model=None):
    """People's rating of two OKLab colours, its reasons in words, and the terms (JSON-ready).

    Returns `{"rating", "threshold", "harmonious", "reading", "terms"}`: the reading names the
    terms of the people model that move this pair's rating most (each colour on its own, and how
    the two go together), largest first.
    """
    model = model or people.default()
    lab_t, lab_b = np.asarray(lab_t, np.float64), np.asarray(lab_b, np.float64)
    rating = float(model.rate(lab_t, lab_b))
    terms = model.contributions(lab_t, lab_b)
    average = terms.pop("average")
    ok = rating >= people.RATING_THRESHOLD
    ranked = sorted(terms.items(), key=lambda kv: -abs(kv[1]))
    # the reasons that push the verdict's way first, then one that pulls against it
    for_ = [(t, v) for t, v in ranked if (v > 0) == ok and abs(v) >= PEOPLE_TERM_MIN][:2]
    against = [(t, v) for t, v in ranked if (v > 0) != ok and abs(v) >= PEOPLE_TERM_MIN][:1]
    words = [_people_term_words(t, v, lab_t, lab_b, names) for t, v in for_]
    sentence = (f"people would rate this pair about {rating:.1f} / 5 "
                f"({'at least' if ok else 'below'} {people.RATING_THRESHOLD:g}: {'harmonious' if ok else 'clashing'})")
    if words:
        sentence += " — " + ("mostly " if len(words) == 1 else "") + " and ".join(words)
    if against:
        sentence += f"; on the other side, {_people_term_words(*against[0], lab_t, lab_b, names)}"
    return {"rating": round(rating, 4), "threshold": people.RATING_THRESHOLD, "harmonious": ok,
            "reading": sentence, "average_theme": round(average, 4),
            "terms": {t: round(v, 4) for t, v in terms.items()}}


# --------------------------------------------------------------------------
# Suggestions: candidate colours through the head, checked on pixels
# --------------------------------------------------------------------------


_CHROMAS = np.array([c for c in CANDIDATE_CHROMAS if c > 0])


def candidate_colours(lab, lightness_steps=(0.0,)):
    """OKLab candidates: `CANDIDATE_CHROMAS` x hues every `HUE_STEP`°, in gamut, at the colour's lightness
    plus each of `lightness_steps` (people models: `PEOPLE_LIGHTNESS_STEPS`, since people care about
    lightness contrast; clipped to `LIGHTNESS_RANGE`)."""
    L0 = float(np.asarray(lab)[0])
    levels = np.array(sorted({round(float(np.clip(L0 + d, *LIGHTNESS_RANGE)), 4) for d in lightness_steps} | {L0}))
    greys = np.stack([levels, np.zeros_like(levels), np.zeros_like(levels)], axis=-1)
    # every level x chroma x hue, level-major (the greys of every level first)
    grid = np.meshgrid(levels, _CHROMAS, np.arange(0.0, 360.0, HUE_STEP), indexing="ij")
    lch = np.concatenate([greys, np.stack([g.ravel() for g in grid], axis=-1)])
    return oklch_to_oklab(lch[in_srgb_gamut(lch)])


def _spaced(order, labs, k, taken=()):
    """The first `k` indices of `order` whose colours are `MIN_SUGGESTION_SPACING` apart (and from `taken`)."""
    kept, out = [labs[j] for j in taken], []
    for j in order:
        if len(out) == k:
            break
        if not kept or np.linalg.norm(np.asarray(kept) - labs[j], axis=-1).min() >= MIN_SUGGESTION_SPACING:
            kept.append(labs[j])
            out.append(j)
    return out


def _candidate(role, lab, delta_e, p_head):
    return {"role": role, "oklab": lab, "delta_e": float(delta_e), "p_head": float(p_head)}


def nearest_fixes(backend, e_top, e_bottom, target=TARGET_P, k=SUGGESTIONS, people_model=None):
    """For the top and for the bottom: the `k` nearest candidate colours the head scores p >= target.

    Returns `{role: [{"role", "oklab", "delta_e", "p_head"}, ...]}`, nearer
    ones first, at least `MIN_SUGGESTION_SPACING` apart; every candidate of
    both garments goes through the head in one batch. With `people_model`
    (people-trained models), a candidate must also lift people's rating of the
    pair (with the other garment's read colour) to the threshold plus
    `PEOPLE_MARGIN`: the nearest colours people would call harmonious.
    """
    e_top, e_bottom = np.asarray(e_top, np.float32), np.asarray(e_bottom, np.float32)
    currents = embedding_colours(np.stack([e_top, e_bottom]))
    steps = PEOPLE_LIGHTNESS_STEPS if people_model is not None else (0.0,)
    labs = [candidate_colours(c, steps) for c in currents]
    if people_model is not None:  # only colours people would rate over the line go through the head
        labs = [lab[people_model.rate_against(lab, currents[1 - i]) >= people.RATING_THRESHOLD + PEOPLE_MARGIN]
                for i, lab in enumerate(labs)]
    tops = np.concatenate([with_colours(e_top, labs[0]), np.broadcast_to(e_top, (len(labs[1]), len(e_top)))])
    bottoms = np.concatenate([np.broadcast_to(e_bottom, (len(labs[0]), len(e_bottom))), with_colours(e_bottom, labs[1])])
    p_all = backend.score_batch(tops, bottoms)
    fixes = {}
    for i, role in enumerate(ROLES):
        p = p_all[:len(labs[0])] if i == 0 else p_all[len(labs[0]):]
        distance = np.linalg.norm(labs[i] - currents[i], axis=-1)
        by_distance = np.argsort(distance, kind="stable")
        allowed = np.ones(len(p), dtype=bool)  # people models: every candidate left is allowed
        chosen = _spaced(by_distance[(p[by_distance] >= target) & allowed[by_distance]], labs[i], k)
        # the head's best colours (people models: among those people rate over the threshold),
        # spaced: checked on pixels too (see explain_images)
        strongest = _spaced([j for j in np.argsort(-p, kind="stable") if allowed[j]], labs[i], PIXEL_SHORTLIST,
                            taken=chosen)
        fixes[role] = [_candidate(role, labs[i][j], distance[j], p[j]) for j in chosen]
        fixes[role + "_shortlist"] = [_candidate(role, labs[i][j], distance[j], p[j]) for j in strongest]
    return fixes


def _blur(x, sigma):
    """A separable Gaussian blur of a 2-D map (edges extended)."""
    radius = max(1, int(round(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        padded = np.pad(x, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        x = np.lib.stride_tricks.sliding_window_view(padded, len(kernel), axis=axis) @ kernel  # symmetric kernel
    return x


def upsample(attention, size):
    """An attention map `[h, w]` at the image's size `[size, size]` (nearest), normalised to sum 1."""
    h, w = attention.shape
    rows = np.minimum(np.arange(size) * h // size, h - 1)
    cols = np.minimum(np.arange(size) * w // size, w - 1)
    up = attention[rows][:, cols]
    return up / max(up.sum(), 1e-12)


def colour_region(image, attention, lab):
    """Soft mask `[S, S]` in 0..1 of the pixels of the garment's read colour `lab`.

    Pixels near the read colour (lightness down-weighted: shading is not a
    colour change) inside the support of the attention map, blurred over an
    eighth of the image (attention picks a few telling pixels of the
    garment, not its outline). Without a map: near pixels anywhere.
    """
    size = image.shape[0]
    pixels = srgb_to_oklab(image)
    delta = (pixels - np.asarray(lab)) * np.array([LIGHTNESS_WEIGHT, 1.0, 1.0])
    near = np.clip((REGION_FAR - np.linalg.norm(delta, axis=-1)) / (REGION_FAR - REGION_NEAR), 0.0, 1.0)
    if attention is None:
        return near
    support = _blur(upsample(attention, size), size / 8.0)
    support = np.clip(support / max(support.max(), 1e-12) / SUPPORT_FRACTION, 0.0, 1.0)
    region = near * support
    return region if region.sum() >= 0.02 * size * size * near.mean() else near


def shift_ab(ab, current_lab, target_lab):
    """`recolour`'s map of (a, b) values `[..., 2]` that takes `current_lab` to `target_lab`.

    A chromatic colour is rotated in hue and scaled in chroma (so a
    texture's variations keep their relative size); a near-grey one
    (chroma < `GREY_CHROMA`, no hue to rotate) is moved by the difference in
    (a, b).
    """
    current, target = np.asarray(current_lab, np.float64), np.asarray(target_lab, np.float64)
    ab = np.asarray(ab, np.float64)
    c_now, c_new = np.hypot(*current[1:]), np.hypot(*target[1:])
    if c_now < GREY_CHROMA:
        return ab + (target[1:] - current[1:])
    turn = math.atan2(target[2], target[1]) - math.atan2(current[2], current[1])
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    return (ab @ rotation.T) * (c_new / c_now)


def recolour(image, region, current_lab, target_lab):
    """The photo with its colour region moved from `current_lab` to `target_lab` in OKLCH hue / chroma.

    Every pixel's (a, b) goes through `shift_ab`, blended in by `region`
    (0..1); lightness moves by the same step for every pixel (none when the
    target keeps the garment's lightness), so shading and texture stay.
    """
    lab = srgb_to_oklab(image)
    ab = lab[..., 1:]
    new = lab.copy()
    new[..., 1:] = ab + region[..., None] * (shift_ab(ab, current_lab, target_lab) - ab)
    new[..., 0] = lab[..., 0] + region * (float(target_lab[0]) - float(current_lab[0]))
    return np.round(oklab_to_srgb(new)).astype(np.uint8)


# --------------------------------------------------------------------------
# The explanation
# --------------------------------------------------------------------------


def _label(p, threshold):
    return "harmonious" if p >= threshold else "clashing"


def explain_images(backend, top, bottom, threshold=THRESHOLD, target=TARGET_P, k=SUGGESTIONS, previews=True,
                   always_suggest=False, prefer_rule=True, check_all=True, full_model=True):
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
    """
    images = np.stack([top, bottom])
    embeddings, labs, attention, garment_palettes = read_garments(backend, images, palettes=True)
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
    garments = {role: colour_info(labs[i]) for i, role in enumerate(ROLES)}
    for i, role in enumerate(ROLES):
        garments[role]["palette"] = None if garment_palettes is None else garment_palettes[i]
        garments[role]["attention_map"] = None if attention is None else {
            "shape": list(attention[i].shape), "peak": [int(v) for v in np.unravel_index(attention[i].argmax(),
                                                                                         attention[i].shape)]}
    lchs = oklab_to_oklch(labs)
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
        reading = people_reading(labs[0], labs[1], (garments["top"]["name"], garments["bottom"]["name"]),
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
        for role in ROLES:
            result["fixes"][role] = [_suggestion_json(s, labs, threshold) for s in fixes[role]]
        for s in best[:k]:
            result["suggestions"].append(_suggestion_json(s, labs, threshold))
            hidden["_previews"].append(s["preview"])
    if previews:
        result.update(hidden)
    return result


def _judge_applied(candidates, labs, people_model=None):
    """With each candidate applied to its garment (on the read colours): whether the rule calls the
    pair harmonious (`s["rule_ok"]`) and, with `people_model`, people's rating (`s["rating"]`); one
    vectorised pass for all candidates."""
    if not candidates:
        return
    pairs = np.repeat(np.asarray(labs, np.float64)[None], len(candidates), axis=0)  # [n, 2, 3]
    roles = np.array([ROLES.index(s["role"]) for s in candidates])
    pairs[np.arange(len(candidates)), roles] = np.stack([s["oklab"] for s in candidates])
    rule_ok = harmonious(oklab_to_oklch(pairs[:, 0]), oklab_to_oklch(pairs[:, 1]))
    ratings = people_model.rate(pairs[:, 0], pairs[:, 1]) if people_model is not None else None
    for n, s in enumerate(candidates):
        s["rule_ok"] = bool(rule_ok[n])
        if ratings is not None:
            s["rating"] = float(ratings[n])


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


def _suggestion_json(s, labs, threshold):
    i = ROLES.index(s["role"])
    info, current = colour_info(s["oklab"]), colour_info(labs[i])
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
    """The explanation without its private arrays (`_previews`, `_attention`)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


# --------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------


def heat_overlay(image, attention, alpha=0.55):
    """The photo with its attention map as a heat overlay (uint8 `[S, S, 3]`), or the photo without one."""
    if attention is None:
        return np.asarray(image)
    size = image.shape[0]
    a = _blur(upsample(attention, size), max(size / 48.0, 0.5))
    # square root: a softmax map is peaked; its tail still shows where the model looked
    a = np.sqrt(np.clip(a / max(a.max(), 1e-12), 0.0, 1.0))[..., None]
    heat = np.concatenate([np.ones_like(a), np.clip(2.0 * a - 0.4, 0, 1), np.zeros_like(a)], axis=-1) * 255.0
    grey = np.asarray(image, np.float64).mean(axis=-1, keepdims=True) * np.ones(3)
    base = 0.5 * np.asarray(image, np.float64) + 0.5 * grey
    return np.clip(base * (1 - alpha * a) + heat * alpha * a, 0, 255).astype(np.uint8)


def save_figure(result, top, bottom, path):
    """`explain.png`: photos with attention, swatches, verdict and the suggestions with previews."""
    # Deferred: only the figure needs matplotlib; the web service draws with Pillow.
    from matplotlib.figure import Figure

    from neipalette_tf.evaluation.plots import save_figure as save_png  # matplotlib too: the runtime extra has none

    suggestions = result["suggestions"]
    attention = result.get("_attention") or [None, None]
    columns = 2 + max(1, len(suggestions))
    fig = Figure(figsize=(2.6 * columns, 3.9), layout="constrained")
    axes = fig.subplots(1, columns, squeeze=False)[0]
    for ax, role, image, att in zip(axes, ROLES, (top, bottom), attention):
        c = result["colours"][role]
        ax.imshow(heat_overlay(np.asarray(image), att))
        ax.set_title(f"{role}: {c['name']}\n{c['hex']}  L {c['oklch'][0]:.2f} C {c['oklch'][1]:.2f} "
                     f"h {c['oklch'][2]:.0f}°", fontsize=8)
        ax.add_patch(_swatch(ax, c["hex"]))
        ax.axis("off")
    for j in range(max(1, len(suggestions))):
        ax = axes[2 + j]
        ax.axis("off")
        if j >= len(suggestions):
            ax.text(0.5, 0.5, "harmonious:\nno fix needed" if result["label"] == "harmonious"
                    else f"no colour reaches\np >= {TARGET_P} in the head", ha="center", va="center", fontsize=9)
            continue
        s = suggestions[j]
        ax.imshow(result["_previews"][j])
        ax.add_patch(_swatch(ax, s["colour"]["hex"]))
        ax.set_title(f"#{j + 1} {s['role']} -> {s['colour']['name']} ({s['colour']['hex']})\n"
                     f"p head {s['p_head']:.2f}, p photo {s['p_pixels']:.2f}, ΔE {s['delta_e']:.3f}",
                     fontsize=8, color="#1a7f37" if s["p_pixels"] >= result["threshold"] else "#cf222e")
    verdict = f"p(harmonious) = {result['p_harmonious']:.3f}: {result['label']}"
    reading = result["rule"]["reading"]
    if "people" in result:
        reading = f"{result['people']['reading']}\ncolour theory: {reading}"
    fig.suptitle(f"{verdict}  ({result['model']['format']})\n{_wrap(reading, 110)}", fontsize=9,
                 color="#1a7f37" if result["label"] == "harmonious" else "#cf222e")
    save_png(fig, path)


def _swatch(ax, hex_code):
    from matplotlib.patches import Rectangle

    return Rectangle((0.78, 0.02), 0.2, 0.2, transform=ax.transAxes, facecolor=hex_code, edgecolor="black", lw=0.8)


def _wrap(text, width):

    return "\n".join(textwrap.wrap(text, width))


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
