import contextlib
import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from neipalette_tf.colour import harmony, space
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.data.pipeline import COLOUR_TARGET_SCALE, PairData, all_pairs_labels
from neipalette_tf.models import build_classifier
from neipalette_tf.models.harmony_classifier import Probabilities
from neipalette_tf.training.loop import (
    StopOnNonFiniteLoss,
    TrainingDiverged,
    fit,
    supervised_training_model,
)

TRAIN = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "weight_decay": 0.0, "warmup_epochs": 1,
         "finetune_lr_factor": 0.1, "early_stopping_patience": 3, "colour_loss_weight": 1.0,
         "all_pairs_loss_weight": 1.0, "augment": {"flip": True, "crop_scale": [0.8, 1.0], "rotation_deg": 8.0}}


def test_all_pairs_labels_follow_the_rule():
    rng = np.random.default_rng(0)
    top = np.column_stack([rng.uniform(0.3, 0.9, 6), rng.uniform(0, 0.25, 6), rng.uniform(0, 360, 6)])
    bottom = np.column_stack([rng.uniform(0.3, 0.9, 6), rng.uniform(0, 0.25, 6), rng.uniform(0, 360, 6)])
    scaled = [space.oklch_to_oklab(c) * COLOUR_TARGET_SCALE for c in (top, bottom)]
    labels = all_pairs_labels(*scaled).reshape(6, 6)
    for i in range(6):
        for j in range(6):
            assert labels[i, j] == harmony.harmonious(top[i], bottom[j])


def test_training_graph_shares_the_model_and_adds_b_squared_pairs():
    model, _ = build_classifier("resnet18", 32, weights="none")
    trainee = supervised_training_model(model)
    assert model.backbone in trainee._flatten_layers()  # shared, not copied
    x = {k: np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype("float32") for k in ("top", "bottom")}
    out = trainee.predict(x, verbose=0)
    assert out["logits"].shape == (5, 2) and out["all_pairs"].shape == (25, 2)
    assert out["top_colour"].shape == (5, 3)
    # The diagonal of the all-pairs block is the true pairs (dropout is off at inference).
    np.testing.assert_allclose(out["all_pairs"][::6], out["logits"], atol=1e-5)
    # The logits are the saved model's: its probabilities are their softmax.
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(p, keras.ops.convert_to_numpy(keras.ops.softmax(out["logits"])), atol=1e-5)


def test_colour_targets_only_when_every_row_has_colours(tiny_synth, tmp_path):
    m = read_manifest(tiny_synth).subset("val")
    data = PairData(m, 32)
    assert data.colour_targets["top_colour"].shape == (len(m), 3)
    x, y = next(iter(data.dataset(4, colour_targets=True, all_pairs=True)))
    assert set(y) == {"logits", "top_colour", "bottom_colour", "all_pairs"} and y["all_pairs"].shape == (16,)

    plain = tmp_path / "plain.csv"
    with open(tiny_synth / "pairs.csv") as f, open(plain, "w", newline="") as g:
        writer = csv.writer(g)
        writer.writerow(["top", "bottom", "label", "split"])
        for row in csv.DictReader(f):
            writer.writerow([tiny_synth / row["top"], tiny_synth / row["bottom"], row["label"], row["split"]])
    assert PairData(read_manifest(plain).subset("val"), 32).colour_targets is None


@pytest.mark.slow  # fits two models
def test_fit_with_and_without_auxiliary_targets(tiny_synth):
    m = read_manifest(tiny_synth)
    data = {s: PairData(m.subset(s), 32) for s in ("train", "val")}
    model, _ = build_classifier("resnet18", 32, weights="none")
    history = fit(model, data, TRAIN, pretrained=False)
    assert {"loss", "accuracy", "auc", "val_loss", "val_auc", "all_pairs_loss", "top_colour_loss"} <= set(history)
    assert "logits_auc" not in history

    stacked, _ = build_classifier("resnet18", 32, "stacked", weights="none")
    history = fit(stacked, data, dict(TRAIN, all_pairs_loss_weight=1.0), pretrained=True)  # warm-up path
    assert "all_pairs_loss" not in history and "top_colour_loss" in history
    assert len(history["loss"]) == 1
    assert stacked.backbone.trainable


@pytest.mark.slow  # fits two models
def test_a_strategy_trains_on_the_same_shuffle_and_augmentation_as_none(tiny_synth):
    # Keras' own shape probe under a tf.distribute strategy read one batch, so the
    # first epoch got the data's second shuffle and augmentation draws.
    from neipalette_tf.training import distribute

    m = read_manifest(tiny_synth)
    data = {s: PairData(m.subset(s), 32) for s in ("train", "val")}
    train = dict(TRAIN, batch_size=64, colour_loss_weight=0.0, all_pairs_loss_weight=0.0)
    assert len(data["train"]) <= 64  # one step: the loss of the first step, before any update

    def first_loss(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model, _ = build_classifier("resnet18", 32, weights="none", dropout=0.0, log=lambda *_: None)
            return fit(model, data, train, pretrained=False, seed=3)["loss"][0]

    assert first_loss(distribute.make_strategy("mirrored")) == pytest.approx(first_loss(None), rel=1e-4)


def test_probabilities_match_softmax_and_have_finite_gradients_at_huge_logit_gaps():
    logits = tf.Variable([[200.0, -200.0], [-300.0, 300.0], [0.3, -0.2]])
    with tf.GradientTape() as tape:
        p = Probabilities()(logits)
        loss = tf.reduce_sum(p[:, 0])
    grad = tape.gradient(loss, logits).numpy()
    assert np.isfinite(grad).all()  # uncapped: exp(400) = inf and 0 * inf = NaN
    np.testing.assert_allclose(p.numpy(), tf.nn.softmax(logits).numpy(), atol=1e-12)


def test_confidently_wrong_logits_still_get_a_gradient():
    """The training loss is computed from the logits: a prediction that is wrong by a
    logit gap of 40 (p = 4e-18) is pulled back, not clipped to a zero gradient."""
    model, _ = build_classifier("resnet18", 32, weights="none")
    trainee = supervised_training_model(model, colour=False, all_pairs=False)
    from neipalette_tf.training.loop import compile_model

    compile_model(trainee, 1e-3, 10)
    logits = tf.Variable([[40.0, -0.0]])
    with tf.GradientTape() as tape:
        loss = trainee.loss(tf.constant([1]), logits)
    assert float(loss) == pytest.approx(40.0, rel=1e-4)
    assert abs(float(tape.gradient(loss, logits).numpy()[0, 0])) > 0.99


def test_a_non_finite_loss_stops_training_with_one_clear_line():
    cb = StopOnNonFiniteLoss()
    cb.on_epoch_begin(2)
    cb.on_train_batch_end(0, {"loss": 0.7})
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 3, batch 5; try a lower --learning-rate"):
        cb.on_train_batch_end(4, {"loss": float("nan")})


def test_all_pair_logits_layer_builds_and_round_trips_its_config():
    from neipalette_tf.models.head import PairHead
    from neipalette_tf.training.loop import AllPairLogits

    layer = AllPairLogits(PairHead(units=8, projection=4), name="all_pair_logits")
    e = [np.ones((3, 7), "float32"), np.zeros((3, 7), "float32")]
    assert tuple(layer(e).shape) == (9, 2)  # builds its (unbuilt) head itself
    clone = AllPairLogits.from_config(layer.get_config())
    assert tuple(clone(e).shape) == (9, 2) and clone.head.projection == 4 and clone.name == "all_pair_logits"
