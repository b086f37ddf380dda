"""The matmul gradients of small-map convolutions (neipalette_tf.training.conv_gradients): exact, and only in the block."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from neipalette_tf.training.conv_gradients import conv2d, matmul_conv_gradients

# (input H, W, kernel, stride, padding): the ResNet18 shapes at 48 px and odd ones around them.
SHAPES = [
    (2, 2, 3, 1, "SAME"),   # stage 4, stride 1
    (5, 5, 3, 2, "VALID"),  # stage 4, stride 2 after ZeroPadding2D
    (3, 3, 1, 2, "VALID"),  # stage 4 shortcut
    (3, 4, 3, 1, "SAME"),   # not square
    (4, 3, 3, 2, "SAME"),   # stride 2 with SAME padding: uneven padding
    (6, 5, 2, 1, "SAME"),   # an even kernel: TF's input gradient
    (7, 7, 7, 2, "VALID"),  # a 7 x 7 stem-like kernel
    (3, 3, 3, 1, "VALID"),
]


@pytest.mark.parametrize("h,w,k,stride,padding", SHAPES)
def test_values_and_gradients_equal_tensorflows(h, w, k, stride, padding):
    rng = np.random.default_rng(h * 100 + w * 10 + k)
    x = tf.constant(rng.normal(size=(3, h, w, 5)), tf.float32)
    kernel = tf.constant(rng.normal(size=(k, k, 5, 6)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        ours = conv2d(x, kernel, (stride, stride), padding)
        reference = tf.nn.conv2d(x, kernel, stride, padding)
        dy = tf.constant(rng.normal(size=reference.shape), tf.float32)
        loss_ours, loss_ref = tf.reduce_sum(ours * dy), tf.reduce_sum(reference * dy)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(tape.gradient(loss_ours, [x, kernel]), tape.gradient(loss_ref, [x, kernel])):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def _model():
    """Two convolutions on a 2 x 2 map (eligible), one on 8 x 8 (too large), a depthwise and a dilated one (not plain)."""
    image = keras.Input((8, 8, 3))
    big = keras.layers.Conv2D(4, 3, padding="same", name="big")(image)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(big)
    dilated = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2, name="dilated")(depthwise)
    small = keras.layers.Conv2D(8, 3, strides=4, padding="same", name="small")(dilated)  # 2 x 2
    small = keras.layers.Conv2D(8, 1, name="small_1x1")(small)
    return keras.Model(image, keras.layers.GlobalAveragePooling2D()(small))


def _ops(fn, *args):
    return {op.type for op in fn.get_concrete_function(*args).graph.get_operations()}


def test_the_block_changes_small_plain_convolutions_only_and_restores_them():
    model = _model()
    x = tf.random.normal((2, 8, 8, 3), seed=0)

    def step(images):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(images) ** 2)
        return tape.gradient(loss, model.trainable_weights)

    with matmul_conv_gradients(model) as changed:
        inside = _ops(tf.function(step), x)
    assert changed == 3  # big, small, small_1x1: plain Conv2D layers (big keeps TF's gradient: its map is 8 x 8)
    assert "ExtractImagePatches" in inside and "Conv2DBackpropFilter" in inside  # small's matmul, big's own
    outside = _ops(tf.function(step), x)
    assert "ExtractImagePatches" not in outside and "IdentityN" not in _ops(tf.function(model), x)
    assert all("convolution_op" not in vars(layer) for layer in model.layers)
    with matmul_conv_gradients(model, enabled=False) as changed:
        assert changed == 0


def test_a_training_step_inside_the_block_gives_the_same_weights():
    def trained(use_block):
        keras.utils.set_random_seed(3)
        model = _model()
        model.compile(keras.optimizers.SGD(0.1), "mse")
        x, y = np.random.default_rng(0).normal(size=(4, 8, 8, 3)), np.ones((4, 8))
        with matmul_conv_gradients(model, enabled=use_block):
            model.train_on_batch(x, y)
        model.train_on_batch(x, y)  # the function traced inside keeps the gradients
        return model.get_weights()

    for a, b in zip(trained(True), trained(False)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # fits a ResNet18
def test_train_fits_with_the_matmul_gradients_unless_told_otherwise(tiny_synth, monkeypatch):
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.models import build_classifier
    from neipalette_tf.training import conv_gradients
    from neipalette_tf.training.config import DEFAULTS
    from neipalette_tf.training.loop import TrainingSetup, fit

    traced = []
    native = conv_gradients.conv2d
    monkeypatch.setattr(conv_gradients, "conv2d", lambda x, *a: traced.append(tuple(x.shape[1:])) or native(x, *a))
    m = read_manifest(tiny_synth)
    data = {s: PairData(m.subset(s), 32) for s in ("train", "val")}
    train = dict(DEFAULTS["train"], epochs=1, batch_size=8)
    model, _ = build_classifier("resnet18", 32, weights="none")
    fit(model, data, train, pretrained=False)
    # at 32 px the last stage's maps are 1 x 1 and the third stage's 2 x 2 (augmented batches keep their size)
    assert {(4, 4, 128), (2, 2, 256), (1, 1, 512)} <= set(traced), traced
    with TrainingSetup(model, data, dict(train, matmul_conv_gradients=False)).gradients() as changed:
        assert changed == 0
