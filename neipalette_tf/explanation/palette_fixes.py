"""Suggestions on palettes: recolour one palette entry of one garment ("make the stripes navy").

Today's suggestions (`explain`) recolour a garment's main colour. For a multi-colour garment the
fix may be one of its *other* colours: this module proposes, for each entry of each garment's
palette (`neipalette_tf.colour.palette`), the nearest colours that lift people's rating of the
**outfit palette** (`people.palette_rating`, every colour weighted by half its garment share)
over the line, recolours **only that entry's pixels** on the photo (the pixels of the garment,
by the palette's support, nearest to that entry) and re-scores the photo as `explain` does: the
model's p and rating on the recoloured photo, and people's palette rating on the palette read
again from it.

Why the people palette rating ranks the candidates, not the model's head: the head compares the
attention-weighted *mean* colours, and the attention of today's models looks away from a print's
other colours, so recolouring the stripes barely moves p (docs/palette.md). The re-scored p is
reported beside the rating, so that limit is visible per suggestion.

Example (any siamese model, any format):

    from neipalette_tf.explanation import explain, palette_fixes
    backend = explain.load_backend("runs/people-default/model.keras")
    palette_fixes.suggest(backend, top_image, bottom_image)  # preprocessed uint8 [S, S, 3] each
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
from neipalette_tf.explanation.readings import ROLES, colour_info
from neipalette_tf.explanation.recolour import LIGHTNESS_WEIGHT, REGION_FAR, REGION_NEAR, recolour

PER_ENTRY = 2  # candidates per palette entry checked on the photo
SUGGESTIONS = 3


def outfit_rating(palettes, model=None):
    """People's rating of an outfit: `palettes` = (top, bottom), each [(OKLab, share)]."""
    model = model or people.default()
    entries = [e for p in palettes for e in p]
    labs = np.array([lab for lab, _ in entries])
    weights = np.array([0.5 * share for _, share in entries])
    return model.palette_rating(labs, weights)


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


def suggest(backend, top, bottom, k=SUGGESTIONS, per_entry=PER_ENTRY, model=None):
    """Palette-entry fixes for one pair of preprocessed uint8 images, best first.

    Returns a dict: `palettes` (each garment's read palette, JSON), `rating` (people's outfit
    palette rating now), `suggestions`: up to `k` of `{"role", "entry", "from", "colour",
    "delta_e", "rating_palette", "rating_pixels", "p_pixels", "rating_model_pixels"}` whose
    recoloured photo keeps people's palette rating over the line (threshold + margin), nearest
    first; the checked candidates that did not are under `checked`.
    """
    model = model or people.default()
    images = np.stack([top, bottom])
    out = backend.attend_details(images)
    read = [palette.read_palette(r) for r in out["palette"]]
    now = outfit_rating(read, model)
    line = people.RATING_THRESHOLD + PEOPLE_MARGIN
    candidates = []
    for g, role in enumerate(ROLES):
        for j, (lab, share) in enumerate(read[g]):
            found = []
            for target in candidate_colours(lab, PEOPLE_LIGHTNESS_STEPS):
                moved = [list(p) for p in read]
                moved[g] = [(target if n == j else c, s) for n, (c, s) in enumerate(read[g])]
                rating = outfit_rating(moved, model)
                if rating >= line:
                    found.append((float(np.linalg.norm(target - lab)), target, rating))
            found.sort(key=lambda f: f[0])
            picked = []
            for d, target, rating in found:
                if all(np.linalg.norm(target - t) >= MIN_SUGGESTION_SPACING for _, t, _ in picked):
                    picked.append((d, target, rating))
                if len(picked) == per_entry:
                    break
            candidates += [{"g": g, "role": role, "j": j, "lab": lab, "share": share, "delta_e": d,
                            "target": t, "rating_palette": r} for d, t, r in picked]
    checked = []
    for c in sorted(candidates, key=lambda c: c["delta_e"]):
        region = entry_region(images[c["g"]], out["attention"][c["g"]], read[c["g"]], c["j"])
        photo = images.copy()
        photo[c["g"]] = recolour(images[c["g"]], region, c["lab"], c["target"])
        details = backend.predict_details(photo[:1], photo[1:])
        again = backend.attend_details(photo[c["g"]:c["g"] + 1])["palette"][0]
        reread = list(read)
        reread[c["g"]] = palette.read_palette(again)
        checked.append({
            "role": c["role"], "entry": {"hex": palette.hex_colour(c["lab"]), "share": round(c["share"], 3)},
            "from": colour_info(c["lab"]), "colour": colour_info(c["target"]), "delta_e": round(c["delta_e"], 4),
            "rating_palette": round(c["rating_palette"], 4),
            "rating_pixels": round(outfit_rating(reread, model), 4),
            "p_pixels": round(float(details["p"][0]), 6),
            "rating_model_pixels": None if details["rating"] is None else round(float(details["rating"][0]), 4),
        })
    good = [s for s in checked if s["rating_pixels"] >= line]
    return {"palettes": {role: palette.as_json(r) for role, r in zip(ROLES, out["palette"])},
            "rating": round(now, 4), "threshold": line, "suggestions": good[:k],
            "checked": [s for s in checked if s not in good[:k]]}
