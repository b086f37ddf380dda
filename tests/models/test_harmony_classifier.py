"""The harmony classifier (models/harmony_classifier.py) and its head; every backbone's build, weights and
normalisation: tests/models/test_backbones.py."""

import numpy as np
import pytest

from neipalette_tf.models import HarmonyClassifier, build_classifier


def _pair(n=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(0, 255, (n, size, size, 3)).astype("float32") for k in ("top", "bottom")}


def test_encoder_and_head_compose_to_the_full_model():
    model, _ = build_classifier("resnet18", 32, weights="none")
    x = _pair(3)
    encoder, head = model.encoder(), model.head_model()
    p = head.predict({"top_embedding": encoder.predict(x["top"], verbose=0),
                      "bottom_embedding": encoder.predict(x["bottom"], verbose=0)}, verbose=0)
    np.testing.assert_allclose(p, model.predict(x, verbose=0), atol=1e-6)
    # the model embeds both garments in one pass and splits it: the halves keep their roles
    swapped = model.predict({"top": x["bottom"], "bottom": x["top"]}, verbose=0)
    assert not np.allclose(p, swapped, atol=1e-4)
    stacked, _ = build_classifier("resnet18", 32, "stacked", weights="none")
    with pytest.raises(ValueError, match="only siamese"):
        stacked.encoder()


def test_siamese_is_symmetric_in_weights_not_in_roles():
    # One shared backbone: the top and the bottom go through the same weights.
    model, _ = build_classifier("resnet18", 32, weights="none")
    assert len([layer for layer in model.layers if layer is model.backbone]) == 1
    enc = model.encoder()
    x = _pair(1)
    e1 = enc.predict(x["top"], verbose=0)
    e2 = enc.predict(x["top"], verbose=0)
    np.testing.assert_array_equal(e1, e2)


def test_models_saved_before_the_colour_options_load_as_they_were_built():
    # A config from before `colour_context` / `hue_softness` existed rebuilds
    # the original layers (two-conv attention keys, unit hue vectors), so
    # its saved weights still fit.
    model, _ = build_classifier("resnet18", 32, weights="none")
    assert (model.colour_context, model.hue_softness) == (True, 0.1)
    config = model.get_config()
    del config["colour_context"], config["hue_softness"]
    old = HarmonyClassifier.from_config(config)
    assert (old.colour_context, old.hue_softness, old.head.hue_softness) == (False, 1e-3, 1e-3)
    assert not hasattr(old.colour_pooling, "saliency")
    assert len(old.weights) < len(model.weights)


def test_projected_head_is_the_default_and_old_heads_load_without_it(tmp_path):
    """The head projects each embedding to 64 values; a config from before the option has no projection."""
    from neipalette_tf.models import load_model
    from neipalette_tf.training.config import DEFAULTS

    model, _ = build_classifier("resnet18", 32, weights="none", log=lambda *_: None)
    assert model.head_projection == DEFAULTS["model"]["head_projection"] == 64 == model.head.projection
    assert tuple(model.head.hidden.kernel.shape) == (4 * 64, 256)
    config = model.get_config()
    del config["head_projection"]
    old = HarmonyClassifier.from_config(config)
    assert old.head_projection == 0 and old.head.project is None
    assert tuple(old.head.hidden.kernel.shape) == (4 * 515, 256)
    # Saved and loaded, the projected head gives the same probabilities, through the full model and
    # through encoder + head (what ranking and explanations run).
    rng = np.random.default_rng(0)
    x = {k: rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32") for k in ("top", "bottom")}
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    assert back.head_projection == 64
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(back.predict(x, verbose=0), p, atol=1e-6)
    enc, head = back.encoder(), back.head_model()
    e = {f"{k}_embedding": enc.predict(x[k], verbose=0) for k in ("top", "bottom")}
    np.testing.assert_allclose(head.predict(e, verbose=0), p, atol=1e-5)


def test_hue_vectors_fade_out_for_greys():
    from neipalette_tf.models.head import colour_relations

    grey, red = np.array([[0.5, 0.004, -0.004]], "float32"), np.array([[0.6, 0.8, 0.4]], "float32")
    rel = np.asarray(colour_relations(grey, red, hue_softness=0.1))[0]
    hue_grey, hue_red = rel[8:10], rel[10:12]
    assert np.linalg.norm(hue_grey) < 0.06  # a grey has (almost) no hue direction
    assert np.linalg.norm(hue_red) == pytest.approx(1.0, abs=0.01)
    # The unsoftened form (old models) gives a grey a full unit hue vector.
    old = np.asarray(colour_relations(grey, red, hue_softness=1e-3))[0]
    assert np.linalg.norm(old[8:10]) > 0.95


def test_head_reads_the_colours_exactly():
    from neipalette_tf.models.head import _columns

    rng = np.random.default_rng(0)
    e = (rng.normal(size=(5, 515)) * 20).astype("float32")
    e[:, -6:] = rng.normal(size=(5, 6)) * 1e-3  # colours far smaller than the features
    assert np.array_equal(np.asarray(_columns(e, -3, 3)), e[:, -3:])
    assert np.array_equal(np.asarray(_columns(e, -6, 3)), e[:, -6:-3])
    assert np.array_equal(np.asarray(_columns(e, 2, 4)), e[:, 2:6])


@pytest.mark.parametrize("projection", [4, None])
def test_all_pairs_logits_and_gradients_are_the_tiled_heads(projection):
    """`PairHead.all_pairs` (training's all-pairs objective, per-garment work once) is the
    head on the B*B repeated / tiled embeddings, in its values and its weight gradients."""
    import tensorflow as tf

    from neipalette_tf.models.head import PairHead

    head = PairHead(units=8, projection=projection, dropout=0.0)
    rng = np.random.default_rng(0)
    e_t, e_b = (tf.constant(rng.normal(size=(5, 9)).astype("float32")) for _ in range(2))
    head([e_t, e_b])
    tiled = [tf.repeat(e_t, 5, axis=0), tf.tile(e_b, [5, 1])]
    weights = [rng.normal(size=(25, 2)).astype("float32")]  # a loss that weights every logit differently
    results = []
    for fn in (lambda: head(tiled), lambda: head.all_pairs([e_t, e_b])):
        with tf.GradientTape() as tape:
            logits = fn()
            loss = tf.reduce_sum(logits * weights[0])
        results.append((logits.numpy(), [g.numpy() for g in tape.gradient(loss, head.trainable_weights)]))
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-5)
    for got, expected in zip(results[1][1], results[0][1], strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-4)
    with pytest.raises(ValueError, match="siamese"):
        PairHead(units=8, pair_features=False).all_pairs([e_t, e_b])
