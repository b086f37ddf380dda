"""People-trained models: `PeopleRating`, the `rating` output, and its place in the head."""

import numpy as np
import pytest

from neipalette_tf.colour import people
from neipalette_tf.colour.space import OKLAB_SCALE, srgb_to_oklab
from neipalette_tf.models import build_classifier, load_model
from neipalette_tf.models.people_rating import PeopleRating
from neipalette_tf.predictors.keras import KerasPredictor

SIZE = 32


def _pairs(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, SIZE, SIZE, 3)).astype("uint8"), rng.integers(0, 256, (n, SIZE, SIZE, 3)).astype("uint8")


def test_the_layer_is_the_people_model():
    rng = np.random.default_rng(1)
    a, b = srgb_to_oklab(rng.integers(0, 256, (64, 3))), srgb_to_oklab(rng.integers(0, 256, (64, 3)))
    scale = np.asarray(OKLAB_SCALE)
    got = np.asarray(PeopleRating()([(a * scale).astype("float32"), (b * scale).astype("float32")]))
    assert np.allclose(got, people.default().rate(a, b), atol=2e-4)


@pytest.fixture(scope="module")
def people_model():
    model, _ = build_classifier("resnet18", SIZE, weights="none", log=lambda *a: None, harmony="people")
    return model


def test_a_people_model_rates_pairs_symmetrically(people_model):
    predictor = KerasPredictor(people_model)
    tops, bottoms = _pairs()
    assert predictor.has_rating
    rating = predictor.rate_batch(tops, bottoms)
    assert rating.shape == (4,) and ((rating >= 1) & (rating <= 5)).all()
    assert np.allclose(predictor.rate_batch(bottoms, tops), rating, atol=1e-4)  # a top and bottom swapped
    details = predictor.predict_details(tops, bottoms)
    assert np.allclose(details["rating"], rating) and np.allclose(details["p"], predictor.predict_batch(tops, bottoms))
    # the rating is the people model on the colours the model reads
    e_t, e_b = predictor.embed_batch(tops), predictor.embed_batch(bottoms)
    scale = np.asarray(OKLAB_SCALE)
    assert np.allclose(rating, people.default().rate(e_t[:, -3:] / scale, e_b[:, -3:] / scale), atol=2e-3)


def test_the_head_sees_the_rating(people_model):
    """Moving the people model's bias moves p: the rating is one of the head's colour relations."""
    predictor = KerasPredictor(people_model)
    tops, bottoms = _pairs(seed=2)
    before = predictor.predict_batch(tops, bottoms)
    bias = people_model.people_rating.bias
    original = float(np.asarray(bias))
    try:
        bias.assign(original + 1.0)
        after = KerasPredictor(people_model).predict_batch(tops, bottoms)
    finally:
        bias.assign(original)
    assert not np.allclose(before, after)


def test_saving_keeps_the_label_source_and_the_rating(people_model, tmp_path):
    path = tmp_path / "m.keras"
    people_model.save(path)
    loaded = load_model(path)
    assert loaded.harmony == "people"
    tops, bottoms = _pairs(seed=3)
    assert np.allclose(KerasPredictor(loaded).rate_batch(tops, bottoms),
                       KerasPredictor(people_model).rate_batch(tops, bottoms), atol=1e-5)


def test_a_rule_model_has_no_rating_and_no_people_weights(tmp_path):
    model, _ = build_classifier("resnet18", SIZE, weights="none", log=lambda *a: None, harmony="rule-v1")
    assert model.people_rating is None and not KerasPredictor(model).has_rating
    assert not any("people_rating" in w.path for w in model.weights)  # nothing of the CC BY-NC-SA fit
    with pytest.raises(Exception, match="no rating output"):
        KerasPredictor(model).rate_batch(*_pairs())
    assert KerasPredictor(model).predict_details(*_pairs())["rating"] is None
    with pytest.raises(ValueError, match="harmony"):
        build_classifier("resnet18", SIZE, weights="none", log=lambda *a: None, harmony="rule-v9")


def test_a_rating_of_another_people_features_version_is_refused():
    with pytest.raises(ValueError, match="retrain"):
        PeopleRating(features="people-features-v0")
