"""The people model (neipalette_tf.colour.people), its fit (people_fit) and the shipped parameters."""

import json

import numpy as np
import pytest

from neipalette_tf.colour import people, people_fit
from neipalette_tf.colour.space import srgb_to_oklab
from neipalette_tf.data.themes import fold_of, read_themes
from tests.helpers import shared_path

RNG = np.random.default_rng(7)


def _random_labs(n):
    return srgb_to_oklab(RNG.integers(0, 256, size=(n, 3)))


def test_the_pair_function_is_symmetric_and_on_the_scale():
    model = people.default()
    a, b = _random_labs(200), _random_labs(200)
    ab, ba = model.rate(a, b), model.rate(b, a)
    assert np.allclose(ab, ba)
    assert ab.min() >= 1.0 and ab.max() <= 5.0
    assert np.ptp(ab) > 0.5  # not a constant


def test_the_terms_add_up_to_the_rating():
    model = people.default()
    a, b = _random_labs(1)[0], _random_labs(1)[0]
    terms = model.contributions(a, b)
    assert set(terms) == {"average", "like_a", "like_b"} | {g for g, _ in people.PAIR_GROUPS}
    assert sum(terms.values()) == pytest.approx(float(model.rate(a, b, clip=False)), abs=1e-9)
    swapped = model.contributions(b, a)
    assert swapped["like_a"] == pytest.approx(terms["like_b"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_colour_scores_are_the_features_times_the_weights(dtype):
    """The candidate search's fast path (`colour_scores`, used by `rate_against`) sums the same
    columns as `colour_features`: any weights, colours all over OKLab (greys included)."""
    rng = np.random.default_rng(4)
    lab = np.concatenate([rng.uniform([0.0, -0.3, -0.3], [1.0, 0.3, 0.3], (500, 3)),
                          np.c_[np.linspace(0, 1, 20), np.zeros(20), np.zeros(20)]]).astype(dtype)
    for weights in (rng.normal(size=people.COLOUR_DIM), people.default().colour_weights):
        weights = weights.astype(dtype)
        expected = people.colour_features(lab) @ weights
        got = people.colour_scores(lab, weights)
        assert got.dtype == np.dtype(dtype) and got.shape == (len(lab),)
        np.testing.assert_allclose(got, expected, rtol=0, atol=(2e-5 if dtype == "float32" else 1e-12) * np.abs(expected).max())
    model, other = people.default(), np.array([0.45, -0.03, -0.09])
    np.testing.assert_allclose(model.rate_against(lab, other), model.rate(lab.astype("float64"), other), atol=1e-4)


def test_a_theme_is_the_mean_of_its_pairs_and_a_palette_the_weighted_mean():
    model = people.default()
    theme = _random_labs(5)
    pairs = [model.rate(theme[i], theme[j], clip=False) for i, j in people.THEME_PAIRS]
    assert model.rate_themes(theme[None])[0] == pytest.approx(np.mean(pairs))
    assert model.palette_rating(theme) == pytest.approx(np.clip(np.mean(pairs), 1, 5))
    # a colour of weight 0 drops out; two colours are their pair
    assert model.palette_rating(theme[:3], [1, 1, 0]) == pytest.approx(float(model.rate(theme[0], theme[1])))
    with pytest.raises(ValueError):
        model.palette_rating(theme[:1])


def test_the_fit_recovers_a_pair_function_it_can_express():
    """Themes rated by a known people model: the ridge fit gets their ranking back."""
    truth = people.default()
    labs = srgb_to_oklab(RNG.integers(0, 256, size=(600, 5, 3)))
    ratings = truth.rate_themes(labs)
    fitted = people_fit.fit(labs[:500], ratings[:500], alpha=1e-3)
    assert people_fit.spearman(fitted.rate_themes(labs[500:]), ratings[500:]) > 0.97


def test_metrics_on_small_cases():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert people_fit.spearman(y, y) == pytest.approx(1.0)
    assert people_fit.spearman(-y, y) == pytest.approx(-1.0)
    assert people_fit.pairwise_accuracy(-y, y, min_gap=0.5) == 0.0
    assert people_fit.pairwise_accuracy(np.zeros(4), y, min_gap=0.5) == 0.5  # ties count half
    assert np.isnan(people_fit.spearman(np.ones(4), y))


def test_the_shipped_file_names_its_source_and_licence():
    data = json.loads(open(people.MODEL_FILE, encoding="utf-8").read())
    assert "O'Donovan" in data["source"] and "CC BY-NC-SA" in data["licence"]
    assert data["features"] == people.FEATURES_VERSION
    assert data["fitted_on"]["heldout_themes"] > 0


def test_the_shipped_model_is_the_fit_of_the_shared_themes():
    """`fit-harmony` on ../shared's themes reproduces the packaged parameters (same data, same fit)."""
    themes = read_themes(shared_path("human-colour-ratings", "themes.csv"))
    fitting = themes.fitting()
    refit = people_fit.fit(fitting.lab, fitting.ratings)
    shipped = people.default()
    assert refit.bias == pytest.approx(shipped.bias, abs=1e-6)
    assert np.allclose(refit.colour_weights, shipped.colour_weights, atol=1e-6)
    assert np.allclose(refit.pair_weights, shipped.pair_weights, atol=1e-6)
    # and it meets the goal on the themes it never saw
    held = themes.heldout()
    m = people_fit.rank_metrics(shipped.rate_themes(held.lab), held.ratings)
    assert m["spearman"] >= 0.72 and m["mae"] <= 0.18
    assert set(fold_of(held.ids)) == {4}
