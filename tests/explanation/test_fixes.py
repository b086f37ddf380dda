"""Suggestion candidates through the head (neipalette_tf.explanation.fixes), on a rule stand-in."""

import numpy as np
import pytest
from explain_stand_ins import GREEN, RED, RuleBackend, garment

from neipalette_tf.colour import harmony, people, space
from neipalette_tf.explanation import fixes
from neipalette_tf.explanation.readings import embedding_colours


def test_candidates_are_in_gamut_at_the_garments_lightness_and_span_every_hue():
    lab = space.srgb_to_oklab(np.array(RED, np.float64))
    labs = fixes.candidate_colours(lab)
    lch = space.oklab_to_oklch(labs)
    assert np.allclose(lch[:, 0], lab[0]) and space.in_srgb_gamut(lch).all()
    assert len(np.unique(np.round(labs, 9), axis=0)) == len(labs)  # each candidate once
    assert len(set(np.round(lch[lch[:, 1] > 0.01, 2] / fixes.HUE_STEP).astype(int) % 36)) == 36
    stepped = fixes.candidate_colours(lab, fixes.PEOPLE_LIGHTNESS_STEPS)
    levels = np.unique(np.round(stepped[:, 0], 4))
    assert len(levels) > 1 and levels.min() >= fixes.LIGHTNESS_RANGE[0] and levels.max() <= fixes.LIGHTNESS_RANGE[1]


def test_with_colours_swaps_only_the_main_colour():
    e = np.arange(7, dtype=np.float32)
    labs = np.array([[0.5, 0.1, 0.0], [0.7, 0.0, -0.1]])
    out = fixes.with_colours(e, labs)
    assert out.shape == (2, 7) and (out[:, :4] == e[:4]).all()
    assert np.allclose(embedding_colours(out), labs, atol=1e-6)


def test_spaced_keeps_colours_apart():
    labs = np.array([[0.5, 0.0, 0.0], [0.5, 0.01, 0.0], [0.5, 0.05, 0.0], [0.5, 0.06, 0.0], [0.5, 0.2, 0.0]])
    assert fixes._spaced(range(5), labs, 5) == [0, 2, 4]
    assert fixes._spaced(range(5), labs, 2) == [0, 2]
    assert fixes._spaced(range(5), labs, 5, taken=[2]) == [0, 4]


def test_nearest_fixes_are_the_nearest_candidates_the_head_accepts():
    backend = RuleBackend()
    e = backend.embed_batch(np.stack([garment(RED), garment(GREEN, kind="bottom")]))
    found = fixes.nearest_fixes(backend, e[0], e[1], k=3)
    labs = embedding_colours(e)
    for i, role in enumerate(("top", "bottom")):
        assert found[role] and len(found[role]) <= 3 and found[role + "_shortlist"]
        candidates = fixes.candidate_colours(labs[i])
        ok = harmony.harmonious(space.oklab_to_oklch(candidates), space.oklab_to_oklch(labs[1 - i])[None])
        nearest = np.linalg.norm(candidates[ok] - labs[i], axis=-1).min()
        assert found[role][0]["delta_e"] == pytest.approx(nearest, abs=1e-6)
        assert all(f["p_head"] >= fixes.TARGET_P and f["role"] == role for f in found[role])


def test_nearest_fixes_for_people_models_keep_only_colours_people_rate_over_the_line():
    backend, model = RuleBackend(), people.default()
    e = backend.embed_batch(np.stack([garment(RED), garment(GREEN, kind="bottom")]))
    found = fixes.nearest_fixes(backend, e[0], e[1], target=0.5, people_model=model)
    labs = embedding_colours(e)
    shown = [(i, f) for i, role in enumerate(("top", "bottom")) for f in found[role] + found[role + "_shortlist"]]
    assert shown
    for i, f in shown:
        rating = model.rate(f["oklab"], labs[1 - i])
        assert rating >= people.RATING_THRESHOLD + fixes.PEOPLE_MARGIN - 1e-3


def test_judge_applied_reads_the_rule_and_people_on_the_applied_colour():
    labs = space.srgb_to_oklab(np.array([RED, GREEN], np.float64))
    navy = space.srgb_to_oklab(np.array([30.0, 40, 70]))
    candidates = [{"role": "bottom", "oklab": navy}, {"role": "top", "oklab": labs[0]}]
    fixes._judge_applied(candidates, labs, people.default())
    assert candidates[0]["rule_ok"] and not candidates[1]["rule_ok"]
    assert candidates[0]["rating"] == pytest.approx(float(people.default().rate(labs[0], navy)))
