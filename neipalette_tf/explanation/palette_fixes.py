"""Suggestions on palettes: recolour one palette entry of one garment ("make the stripes navy").

`explain` recolours a garment's main colour. For a **multi-colour** garment (its palette's second
entry holds at least `MULTI_COLOUR_SHARE` of it; `neipalette_tf.colour.palette`) the fix may be one
of its colours instead: for each entry of each multi-colour garment this module proposes the
nearest colours that lift people's rating of the **outfit palette** (`people.palette_rating`,
every colour of both garments weighted by half its share) over the line, recolours **only that
entry's pixels** on the photo (`entry_region`: the garment's pixels, by the palette's support,
nearest to that entry) and re-scores the photo as `explain` re-scores its suggestions: the
recoloured garment through the encoder, with the other garment's embedding through the head
(`p_pixels`), and people's palette rating on the palette read again from the recoloured photo
(`rating_pixels`). A suggestion's recoloured photo keeps that rating over the line.

Why the people palette rating ranks the candidates, not the model's head: the head compares the
attention-weighted *mean* colours, and the attention of today's models looks away from a print's
other colours, so recolouring the stripes barely moves p (docs/palette.md). `p_pixels` is
reported beside the rating, so that limit is visible per suggestion. The rating is people's, so
`explain` asks for palette suggestions for people-trained models only (a rule-v1 model's
explanation keeps clear of the people model, as its labels do).

`explain.explain_images` adds them (`palette_suggestions`) when a garment is multi-colour; plain
garments cost nothing. In Python, on two preprocessed uint8 images `[S, S, 3]`:

    from neipalette_tf.explanation import explain, palette_fixes
    backend = explain.load_backend("runs/people-default/model.keras")
    palette_fixes.suggest(backend, top_image, bottom_image)
"""

import numpy as np

from neipalette_tf.colour import palette, people
from neipalette_tf.colour.space import srgb_to_oklab
from neipalette_tf.explanation.fixes import (
    MIN_SUGGESTION_SPACING,
    PEOPLE_LIGHTNESS_STEPS,
    PEOPLE_MARGIN,
    candidate_colours,
)
from neipalette_tf.explanation.readings import ROLES, colour_info, read_garments
from neipalette_tf.explanation.recolour import LIGHTNESS_WEIGHT, REGION_FAR, REGION_NEAR, recolour

# A garment is multi-colour when its palette's second entry covers at least this share of it: a
# fifth of the garment is a colour the eye reads (a small print's ~6-15 % is texture, not a colour
# to change on its own).
MULTI_COLOUR_SHARE = 0.2
PER_ENTRY = 2  # candidates per palette entry checked on the photo
SUGGESTIONS = 3
ENTRY_WORDS = ("main colour", "second colour", "third colour")


def is_multi_colour(entries):
    """Whether a read palette `[(OKLab, share)]` (largest first) is a multi-colour garment's."""
    return len(entries) > 1 and entries[1][1] >= MULTI_COLOUR_SHARE


def outfit_rating(palettes, model=None):
    """People's rating of an outfit: `palettes` = (top, bottom), each [(OKLab, share)]."""
    model = model or people.default()
    entries = [e for p in palettes for e in p]
    labs = np.array([lab for lab, _ in entries])
    weights = np.array([0.5 * share for _, share in entries])
    return model.palette_rating(labs, weights)


def ratings_with_entry(palettes, g, j, targets, model):
    """`outfit_rating` with entry `j` of garment `g` replaced by each of `targets` `[M, 3]` -> `[M]`.

    The pairs without that entry are rated once; the pairs with it, for every target at once.
    """
    entries = [e for p in palettes for e in p]
    index = sum(len(p) for p in palettes[:g]) + j
    labs = np.array([lab for lab, _ in entries], np.float64)
    w = np.array([0.5 * share for _, share in entries], np.float64)
    i1, i2 = np.triu_indices(len(labs), k=1)
    fixed = (i1 != index) & (i2 != index)
    pw = w[i1] * w[i2]
    base = float(np.sum(pw[fixed] * model.rate(labs[i1[fixed]], labs[i2[fixed]], clip=False)))
    others = np.array([e for e in range(len(labs)) if e != index])
    targets = np.asarray(targets, np.float64)
    moving = model.rate(targets[:, None, :], labs[others][None], clip=False) @ (w[index] * w[others])
    return np.clip((base + moving) / pw.sum(), *people.RATING_RANGE)


def entry_region(image, attention, entries, index):
    """Soft mask `[S, S]` in 0..1 of the pixels of palette entry `index` of a garment.

    The garment: the palette's support of the attention (`palette.support`, every attended
    pooled pixel about once), upsampled to the photo. Its pixels go to their nearest entry
    (lightness down-weighted: shading is not another colour), fading out between REGION_NEAR and
    REGION_FAR from it.
    """
    size = image.shape[0]
    side = int(round(np.sqrt(len(attention))))
    weights = palette.support(np.asarray(attention, np.float64)[None])[0].reshape(side, side)
    weights = np.repeat(np.repeat(weights, size // side, axis=0), size // side, axis=1)
    garment = np.clip(2.0 * weights / max(weights.max(), 1e-12), 0.0, 1.0)
    metric = np.array([LIGHTNESS_WEIGHT, 1.0, 1.0])
    lab = srgb_to_oklab(image)
    distance = np.stack([np.linalg.norm((lab - e) * metric, axis=-1) for e, _ in entries])  # [K, S, S]
    nearest = np.argmin(distance, axis=0) == index
    near = np.clip((REGION_FAR - distance[index]) / (REGION_FAR - REGION_NEAR), 0.0, 1.0)
    return garment * nearest * near


def _candidates(read, garments, per_entry, model):
    """Per entry of each garment in `garments`: the `per_entry` nearest visible changes (at least
    MIN_SUGGESTION_SPACING away, and apart) that lift the outfit palette rating over the line."""
    line = people.RATING_THRESHOLD + PEOPLE_MARGIN
    out = []
    for g in garments:
        for j, (lab, share) in enumerate(read[g]):
            targets = candidate_colours(lab, PEOPLE_LIGHTNESS_STEPS)
            distance = np.linalg.norm(targets - lab, axis=-1)
            ratings = ratings_with_entry(read, g, j, targets, model)
            picked = []
            for n in np.argsort(distance, kind="stable"):
                if len(picked) == per_entry:
                    break
                if ratings[n] >= line and distance[n] >= MIN_SUGGESTION_SPACING and all(
                        np.linalg.norm(targets[n] - targets[m]) >= MIN_SUGGESTION_SPACING for m in picked):
                    picked.append(n)
            out += [{"g": g, "role": ROLES[g], "j": j, "lab": lab, "share": share, "target": targets[n],
                     "delta_e": float(distance[n]), "rating_palette": float(ratings[n])} for n in picked]
    return sorted(out, key=lambda c: c["delta_e"])


def palette_suggestions(backend, images, embeddings, attention, read, garments, k=SUGGESTIONS,
                        per_entry=PER_ENTRY, model=None):
    """Palette-entry fixes for the garments `garments` (indices into ROLES), nearest first.

    `images` `[2, S, S, 3]` uint8, `embeddings` `[2, D]`, `attention` `[2, P]` and `read` (each
    garment's read palette, `[(OKLab, share)]`) as `explain` read them. Returns `(suggestions,
    checked, previews)`: up to `k` fixes whose recoloured photo keeps people's outfit palette
    rating over the line, every checked candidate, and the suggestions' recoloured photos.
    All checked candidates go through the encoder in one batch and the head in one more.
    """
    model = model or people.default()
    line = people.RATING_THRESHOLD + PEOPLE_MARGIN
    candidates = _candidates(read, garments, per_entry, model)
    if not candidates:
        return [], [], []
    for c in candidates:
        region = entry_region(images[c["g"]], attention[c["g"]], read[c["g"]], c["j"])
        c["preview"] = recolour(images[c["g"]], region, c["lab"], c["target"])
        c["region_share"] = float(region.mean())
    moved, _, _, raw = read_garments(backend, np.stack([c["preview"] for c in candidates]), palettes=True)
    roles = np.array([c["g"] for c in candidates])
    e_tops = np.where((roles == 0)[:, None], moved, embeddings[0][None]).astype(np.float32)
    e_bottoms = np.where((roles == 1)[:, None], moved, embeddings[1][None]).astype(np.float32)
    p = backend.score_batch(e_tops, e_bottoms)
    for n, c in enumerate(candidates):
        reread = list(read)
        reread[c["g"]] = palette.read_palette(raw[n]) if raw is not None else read[c["g"]]
        c["rating_pixels"] = float(outfit_rating(reread, model))
        c["p_pixels"] = float(p[n])
    good = [c for c in candidates if c["rating_pixels"] >= line][:k]
    return good, candidates, [c["preview"] for c in good]


def suggestion_json(c, threshold=None):
    """One palette suggestion as JSON (`explain`'s `palette_suggestions`)."""
    info, current = colour_info(c["target"]), colour_info(c["lab"])
    part = ENTRY_WORDS[c["j"]] if c["j"] < len(ENTRY_WORDS) else f"colour {c['j'] + 1}"
    return {"role": c["role"], "entry": int(c["j"]), "share": round(float(c["share"]), 3), "from": current,
            "colour": info, "delta_e": round(c["delta_e"], 4), "rating_palette": round(c["rating_palette"], 4),
            "rating_pixels": round(c["rating_pixels"], 4), "p_pixels": round(c["p_pixels"], 6),
            **({"label_pixels": "harmonious" if c["p_pixels"] >= threshold else "clashing"}
               if threshold is not None else {}),
            "region_share": round(c["region_share"], 4),
            "text": (f"make the {part} of the {c['role']} ({current['name']}, {round(100 * c['share'])} % of it) "
                     f"{info['name']} ({info['hex']}) instead")}


def suggest(backend, top, bottom, k=SUGGESTIONS, per_entry=PER_ENTRY, model=None, garments=None):
    """Palette-entry fixes for one pair of preprocessed uint8 images, best first (a pass of its own).

    Returns a dict: `palettes` (each garment's read palette, JSON), `rating` (people's outfit
    palette rating now), `threshold` (the line), `suggestions` (see `suggestion_json`) and
    `checked` (the candidates that were recoloured and did not make it). `garments`: which
    garments' entries to recolour (default: both).
    """
    model = model or people.default()
    images = np.stack([top, bottom])
    embeddings, _, attention, raw = read_garments(backend, images, palettes=True)
    read = [palette.read_palette(r) for r in raw]
    flat = attention.reshape(len(images), -1)
    good, checked, _ = palette_suggestions(backend, images, embeddings, flat, read,
                                           range(len(ROLES)) if garments is None else garments, k, per_entry, model)
    return {"palettes": {role: palette.as_json(r) for role, r in zip(ROLES, raw)},
            "rating": round(outfit_rating(read, model), 4), "threshold": people.RATING_THRESHOLD + PEOPLE_MARGIN,
            "suggestions": [suggestion_json(c) for c in good],
            "checked": [suggestion_json(c) for c in checked if not any(c is g for g in good)]}
