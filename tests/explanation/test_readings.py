"""What the model read, in words (neipalette_tf.explanation.readings): colours, the rule, people."""

import numpy as np
import pytest

from neipalette_tf.colour import harmony, people, space
from neipalette_tf.explanation import readings


def test_colour_info_names_and_round_trips_a_colour():
    lab = space.srgb_to_oklab(np.array([200.0, 30.0, 40.0]))
    info = readings.colour_info(lab)
    assert info["hex"] == "#c81e28" and info["name"] == "red"
    assert np.allclose(info["oklab"], lab, atol=1e-4)
    assert np.allclose(space.oklch_to_oklab(np.array(info["oklch"])), lab, atol=1e-3)


def test_embedding_colours_are_the_last_three_values_unscaled():
    labs = np.array([[0.5, 0.1, -0.05], [0.8, -0.02, 0.03]])
    embeddings = np.concatenate([np.ones((2, 5)), labs * space.OKLAB_SCALE], axis=1).astype(np.float32)
    assert np.allclose(readings.embedding_colours(embeddings), labs, atol=1e-6)


@pytest.mark.parametrize("lch,zone", [((0.5, 0.01, 30.0), "achromatic"), ((0.3, 0.08, 260.0), "navy_denim"),
                                      ((0.5, 0.06, 70.0), "earth"), ((0.6, 0.2, 30.0), None),
                                      ((0.3, 0.15, 260.0), None)])
def test_neutral_zone_follows_the_rule(lch, zone):
    found = readings.neutral_zone(lch)
    assert (found and found[0]) == zone if zone else found is None
    assert bool(harmony.is_neutral(*np.array(lch))) == (zone is not None)


@pytest.mark.parametrize("top_h,bottom_h,clause,ok", [
    (30.0, 45.0, "analogous", True), (30.0, 210.0, "complementary", True), (30.0, 120.0, "neither", False)])
def test_rule_reading_names_the_clause_that_decided(top_h, bottom_h, clause, ok):
    top, bottom = np.array([0.6, 0.15, top_h]), np.array([0.6, 0.15, bottom_h])
    verdict, sentence = readings.rule_reading(top, bottom, ("red", "blue"))
    assert verdict == ok == bool(harmony.harmonious(top, bottom))
    assert clause in sentence and sentence.startswith("harmonious" if ok else "clashing")
    assert "the red top and the blue bottom are" in sentence


def test_rule_reading_of_a_neutral_says_which_garment():
    ok, sentence = readings.rule_reading(np.array([0.6, 0.2, 30.0]), np.array([0.3, 0.08, 260.0]), ("red", "navy"))
    assert ok and "the navy bottom is a navy / denim neutral" in sentence and "red top is" not in sentence


def test_people_reading_is_the_people_models_rating_with_its_largest_terms():
    model = people.default()
    red, green = space.srgb_to_oklab(np.array([[200.0, 30, 40], [40, 150, 60]]))
    r = readings.people_reading(red, green, ("red", "green"), model)
    assert r["rating"] == pytest.approx(float(model.rate(red, green)), abs=1e-4)
    assert r["harmonious"] == (r["rating"] >= people.RATING_THRESHOLD)
    # the terms explain the rating: they sum to the unclipped rating less an average theme's
    assert sum(r["terms"].values()) + r["average_theme"] == pytest.approx(
        float(model.rate(red, green, clip=False)), abs=1e-3)
    assert r["reading"].startswith(f"people would rate this pair about {r['rating']:.1f} / 5")


def test_read_garments_and_the_colour_shown_with_and_without_an_attention_graph():
    from explain_stand_ins import NAVY, RED, MeanBackend, striped

    from neipalette_tf.core.errors import ArtifactError

    images = np.stack([striped(NAVY, RED), striped(RED, NAVY)])
    embeddings, means, attention, raw = readings.read_garments(MeanBackend(), images, palettes=True)
    assert embeddings.shape == (2, 7) and attention.shape == (2, 16, 16) and raw.shape == (2, 3, 4)
    shown = readings.shown_colours(means, raw)
    want = space.srgb_to_oklab(np.array([NAVY, RED], np.float64))  # the 2/3 stripes of each
    assert np.linalg.norm(shown - want, axis=-1).max() < 0.01 < np.linalg.norm(means - want, axis=-1).min()

    class Old(MeanBackend):  # an export made before the attention graph: embeddings only
        def attend_batch(self, images):
            raise ArtifactError("no attention graph")

        def embed_batch(self, images):
            return MeanBackend.attend_batch(self, images)[0]

    embeddings, means_old, attention, raw = readings.read_garments(Old(), images, palettes=True)
    assert attention is None and raw is None and np.allclose(means_old, means, atol=1e-6)
    assert (readings.shown_colours(means_old, raw) == means_old).all()
