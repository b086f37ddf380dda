"""Suggestion candidates: colours swapped into a garment's embedding and scored by the head.

For each garment, candidate colours (its lightness, or a few steps lighter and darker for people
models; chromas x hues in gamut) replace the main colour in its embedding (`with_colours`); one
head pass scores them all (`nearest_fixes`), and `_judge_applied` says what the rule and people
make of each applied to the read colours. `explain.explain_images` checks the nearest ones on
recoloured photos (`recolour`).
"""

import numpy as np

from neipalette_tf.colour import people
from neipalette_tf.colour.harmony import harmonious
from neipalette_tf.colour.space import OKLAB_SCALE, in_srgb_gamut, oklab_to_oklch, oklch_to_oklab
from neipalette_tf.explanation.readings import ROLES, embedding_colours

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
# People-trained models: a suggested colour must lift people's rating (with the other garment's
# read colour) this far over the threshold, and the rating re-read off the recoloured photo over it.
PEOPLE_MARGIN = 0.15
# People models: candidates also lighter and darker than the garment (the recolouring moves each
# pixel's lightness by the same step, so shading and texture stay).
PEOPLE_LIGHTNESS_STEPS = (-0.24, -0.16, -0.08, 0.0, 0.08, 0.16, 0.24)
LIGHTNESS_RANGE = (0.12, 0.97)


def with_colours(embeddings, labs):
    """Copies of one embedding `[D]` with its main colour replaced by each OKLab colour `[M, 3]`."""
    out = np.repeat(np.asarray(embeddings, np.float32)[None], len(labs), axis=0)
    out[:, -3:] = np.asarray(labs, np.float64) * np.asarray(OKLAB_SCALE)
    return out


_CHROMAS = np.array([c for c in CANDIDATE_CHROMAS if c > 0])


def candidate_colours(lab, lightness_steps=(0.0,)):
    """OKLab candidates: `CANDIDATE_CHROMAS` x hues every `HUE_STEP`°, in gamut, at the colour's lightness
    plus each of `lightness_steps` (people models: `PEOPLE_LIGHTNESS_STEPS`, since people care about
    lightness contrast; clipped to `LIGHTNESS_RANGE`)."""
    L0 = float(np.asarray(lab)[0])
    # the garment's own lightness exactly, the steps rounded (a step of 0 is that lightness: not a second level)
    levels = np.array(sorted({round(float(np.clip(L0 + d, *LIGHTNESS_RANGE)), 4) for d in lightness_steps if d}
                             | {L0}))
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
