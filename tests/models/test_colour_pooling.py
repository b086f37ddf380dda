import numpy as np
from keras import ops

from neipalette_tf.colour import space
from neipalette_tf.models.colour_pooling import (
    OKLAB_SCALE,
    ColourAttentionPooling,
    srgb_to_oklab,
)


def test_oklab_in_keras_ops_matches_the_rule_module():
    rgb = np.random.default_rng(0).uniform(0, 255, (1000, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(srgb_to_oklab(ops.convert_to_tensor(rgb))),
                               space.srgb_to_oklab(rgb), atol=2e-5)
    # Every 8-bit level (white, both sides of the sRGB knee at 10.3): exp(2.4 log x) and the
    # cube root as exp(log(x) / 3) stay at float32 rounding. (Pure black is L = 0.001 here: the
    # cube root's input is clamped at 1e-9.)
    levels = np.arange(1, 256, dtype="float32")
    rgb = np.concatenate([np.stack([levels, 0 * levels, 256 - levels], -1), np.stack([levels] * 3, -1)])
    np.testing.assert_allclose(np.asarray(srgb_to_oklab(ops.convert_to_tensor(rgb))),
                               space.srgb_to_oklab(rgb), atol=1e-6)
    # The same as an image batch (its matrices as 1 x 1 convolutions).
    image = rgb.reshape(2, -1, 5, 3)
    np.testing.assert_allclose(np.asarray(srgb_to_oklab(ops.convert_to_tensor(image))),
                               space.srgb_to_oklab(image), atol=1e-6)


def test_a_flat_image_pools_to_its_own_colour():
    layer = ColourAttentionPooling(channels=4)
    colour = np.array([30.0, 140.0, 90.0], "float32")
    image = np.broadcast_to(colour, (2, 24, 24, 3))
    out = np.asarray(layer(image, np.random.default_rng(1).normal(size=(2, 6)).astype("float32")))
    expected = space.srgb_to_oklab(colour) * OKLAB_SCALE
    np.testing.assert_allclose(out, np.stack([expected] * 2), atol=1e-4)


def test_stacked_image_gives_each_half_its_colour():
    layer = ColourAttentionPooling(channels=4, garments=2)
    top, bottom = np.array([200.0, 20.0, 20.0]), np.array([20.0, 20.0, 200.0])
    image = np.concatenate([np.broadcast_to(top, (1, 16, 16, 3)), np.broadcast_to(bottom, (1, 16, 16, 3))], axis=1)
    out = np.asarray(layer(image.astype("float32"), np.zeros((1, 6), "float32")))[0]
    np.testing.assert_allclose(out[:3], space.srgb_to_oklab(top) * OKLAB_SCALE, atol=1e-4)
    np.testing.assert_allclose(out[3:], space.srgb_to_oklab(bottom) * OKLAB_SCALE, atol=1e-4)


def test_a_zero_query_attends_uniformly():
    # Before training (zero query bias) the pooled colour is the image mean;
    # training moves the attention onto the garment.
    layer = ColourAttentionPooling(channels=4, stride=1)
    image = np.full((1, 16, 16, 3), 240.0, "float32")
    image[:, 4:12, 4:12] = [180.0, 30.0, 30.0]
    embedding = np.zeros((1, 2), "float32")
    flat = np.asarray(layer(image, embedding))[0]
    # Zero query: uniform attention, the mean of the whole image.
    lab = space.srgb_to_oklab(image[0]).reshape(-1, 3).mean(axis=0) * OKLAB_SCALE
    np.testing.assert_allclose(flat, lab, atol=1e-4)


def test_context_keys_keep_a_flat_image_its_colour_and_halves_apart():
    # With border-contrast features and dilated keys (the default models'
    # form), a flat garment still pools to its exact colour, per half.
    rng = np.random.default_rng(2)
    flat = ColourAttentionPooling(channels=4, context=True)
    colour = np.array([200.0, 120.0, 30.0], "float32")
    out = np.asarray(flat(np.broadcast_to(colour, (1, 32, 32, 3)), rng.normal(size=(1, 5)).astype("float32")))
    np.testing.assert_allclose(out[0], space.srgb_to_oklab(colour) * OKLAB_SCALE, atol=1e-4)
    stacked = ColourAttentionPooling(channels=4, garments=2, context=True)
    top, bottom = np.array([20.0, 150.0, 20.0]), np.array([240.0, 240.0, 240.0])
    image = np.concatenate([np.broadcast_to(top, (1, 16, 16, 3)), np.broadcast_to(bottom, (1, 16, 16, 3))], axis=1)
    out = np.asarray(stacked(image.astype("float32"), rng.normal(size=(1, 5)).astype("float32")))[0]
    np.testing.assert_allclose(out[:3], space.srgb_to_oklab(top) * OKLAB_SCALE, atol=1e-4)
    np.testing.assert_allclose(out[3:], space.srgb_to_oklab(bottom) * OKLAB_SCALE, atol=1e-4)


def test_border_mean_is_the_mean_of_the_outer_ring():
    from neipalette_tf.models.colour_pooling import _border_mean

    x = np.random.default_rng(3).normal(size=(2, 6, 5, 3)).astype("float32")
    ring = np.ones((6, 5), bool)
    ring[1:-1, 1:-1] = False
    np.testing.assert_allclose(np.asarray(_border_mean(x))[:, 0, 0], x[:, ring].mean(axis=1), atol=1e-5)
    # Also in a graph whose image size is unknown (tf.data pipelines trace so).
    import tensorflow as tf

    traced = tf.function(_border_mean, input_signature=[tf.TensorSpec([None, None, None, 3])])
    np.testing.assert_allclose(traced(x).numpy()[:, 0, 0], x[:, ring].mean(axis=1), atol=1e-5)


def test_graph_friendly_forms_compute_what_the_plain_ones_do():
    """The exported graphs' forms (`docs/deployment.md`, "One XNNPACK partition") against the
    plain ones: constant positions vs a cumulative sum, a Conv2D with `dilations` vs Keras'
    dilated Conv2D, and the layer with known vs unknown image sizes."""
    import keras
    import tensorflow as tf

    from neipalette_tf.models.colour_pooling import Conv2D, _positions

    x = np.random.default_rng(4).normal(size=(2, 6, 5, 3)).astype("float32")
    static = np.asarray(_positions(ops.convert_to_tensor(x)))
    traced = tf.function(_positions, input_signature=[tf.TensorSpec([None, None, None, 3])])(x).numpy()
    np.testing.assert_allclose(static, traced, atol=1e-6)
    np.testing.assert_allclose(static[0, :, 0, 0], np.linspace(-1, 1, 6), atol=1e-6)  # y down the rows
    np.testing.assert_allclose(static[1, 0, :, 1], np.linspace(-1, 1, 5), atol=1e-6)  # x along them

    native = Conv2D(4, 3, padding="same", dilation_rate=3)
    plain = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=3)
    images = np.random.default_rng(5).normal(size=(2, 11, 9, 3)).astype("float32")
    native.build(images.shape), plain.build(images.shape)
    plain.set_weights(native.get_weights())
    np.testing.assert_allclose(np.asarray(native(images)), np.asarray(plain(images)), atol=1e-5)

    layer = ColourAttentionPooling(channels=4, garments=2, context=True)
    images = np.random.default_rng(6).uniform(0, 255, (3, 16, 12, 3)).astype("float32")
    embedding = np.random.default_rng(7).normal(size=(3, 5)).astype("float32")
    eager = np.asarray(layer(images, embedding))
    unknown = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, 5])])
    np.testing.assert_allclose(unknown(images, embedding).numpy(), eager, atol=1e-5)


def test_dilated_keys_keep_the_weight_paths_of_earlier_model_files(tmp_path):
    """The `.keras` format files a list's layers under their class name: the dilated keys
    must stay `key_context/conv2d*` for models saved before `colour_pooling.Conv2D`."""
    import zipfile

    import h5py
    import keras

    images, embedding = keras.Input((8, 8, 3)), keras.Input((5,))
    model = keras.Model([images, embedding], ColourAttentionPooling(channels=4, context=True)(images, embedding))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        z.extract("model.weights.h5", tmp_path)
    paths = []
    with h5py.File(tmp_path / "model.weights.h5", "r") as f:
        f.visit(paths.append)
    assert {"key_context/conv2d/vars", "key_context/conv2d_1/vars"} <= {p.split("pooling/", 1)[-1] for p in paths}
