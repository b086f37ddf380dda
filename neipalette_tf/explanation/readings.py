"""What the model read about each garment, and in words.

`read_garments`: one pass of the backend's attention graph over garment photos (embeddings,
the model's main colours, attention maps, palettes); `shown_colours`: the colour shown for each
garment (its palette's dominant colour). In words: a colour's hex / OKLCH / name, the rule's
reading of two colours and people's rating of them with its reasons (`explain` reports them;
`recommend --explain` too).

The main colour of a garment embedding is its last three values (scaled OKLab,
`ColourAttentionPooling`, the attention-weighted mean): `embedding_colours`.
"""

import math

import numpy as np

from neipalette_tf.colour import palette, people
from neipalette_tf.colour.harmony import (
    ANALOGOUS_MAX_DEG,
    COMPLEMENTARY_MIN_DEG,
    NEUTRAL_ZONES,
    harmonious,
    hue_distance,
)
from neipalette_tf.colour.names import colour_name_of_oklab, hex_of_srgb
from neipalette_tf.colour.space import OKLAB_SCALE, oklab_to_oklch, oklch_to_srgb
from neipalette_tf.core.errors import ArtifactError

ROLES = ("top", "bottom")


def embedding_colours(embeddings):
    """The main colours in garment embeddings (their last three values), as OKLab `[N, 3]`."""
    return np.asarray(embeddings, np.float64)[:, -3:] / np.asarray(OKLAB_SCALE)


def read_garments(backend, images, palettes=False):
    """Embeddings `[N, D]`, the model's main colours (the embeddings' attention-weighted means, OKLab
    `[N, 3]`) and attention maps `[N, h, w]` (or None); with `palettes`, also each garment's raw
    palette `[N, K, 4]` (or None; `neipalette_tf.colour.palette.read_palette` reads it), from the
    same pass."""
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
        return embeddings, embedding_colours(embeddings), attention, None if raw is None else np.asarray(raw)
    return embeddings, embedding_colours(embeddings), attention


def shown_colours(means, raw_palettes):
    """The colour shown for each garment, OKLab `[N, 3]`: its palette's dominant colour (largest share,
    `palette.read_palette`) where there is a palette, else the model's main colour (the mean).

    For a plain garment the two agree (docs/explain.md gives the figures); for a striped shirt the
    mean is a blend nobody wears. The model's head, the suggestion search and the recolouring keep
    the mean: it is what the model scores.
    """
    if raw_palettes is None:
        return np.asarray(means, np.float64)
    return np.stack([palette.read_palette(raw)[0][0] for raw in raw_palettes])


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
