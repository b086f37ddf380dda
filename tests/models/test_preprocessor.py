"""The in-model normalisation layer (neipalette_tf.models.preprocessor.ImageNormalizer).

One preprocessing function serves everything: `core.preprocessing.load_image` gives RGB uint8 at the
model's size, and this layer, inside the model, does the rest with constants from its config. Here: the
config round trip (plain numbers, by the registered name, inside a saved model), the layer on what
`load_image` returns, and its refusals. Its affine map for every registered backbone and its one TFLite
op are checked in tests/models/test_backbones.py."""

import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

from neipalette_tf.core.preprocessing import IMAGENET_MEAN, IMAGENET_STD, load_image
from neipalette_tf.models.backbones import NORMALIZATIONS
from neipalette_tf.models.preprocessor import ImageNormalizer

NAMES = sorted(NORMALIZATIONS)


def _expected(x, config):
    x = np.asarray(x, np.float64)
    if config.get("channel_order") == "bgr":
        x = x[..., ::-1]
    return (x * config["scale"] - np.asarray(config["mean"])) / np.asarray(config["std"])


def _photo_bytes():
    """A 40 x 24 PNG: three colour bands and a gradient (not square, so load_image pads it)."""
    a = np.zeros((24, 40, 3), np.uint8)
    a[:, :13] = (250, 20, 10)
    a[:, 13:26] = (10, 200, 30)
    a[:, 26:] = np.linspace(0, 255, 14, dtype=np.uint8)[None, :, None]
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_config_is_plain_data_and_rebuilds_the_same_layer(name):
    layer = ImageNormalizer(**NORMALIZATIONS[name], name="preprocessor")
    config = layer.get_config()
    spec = NORMALIZATIONS[name]
    assert config["scale"] == float(spec["scale"])
    assert config["mean"] == [float(m) for m in spec["mean"]] and config["std"] == [float(s) for s in spec["std"]]
    assert config["channel_order"] == spec.get("channel_order", "rgb")
    text = json.dumps(config)  # what model.keras stores: JSON, no arrays or objects
    clone = ImageNormalizer.from_config(json.loads(text))
    assert clone.get_config() == config and clone.name == "preprocessor"
    x = np.random.default_rng(1).uniform(0, 255, (2, 6, 5, 3)).astype("float32")
    assert np.array_equal(np.asarray(clone(x)), np.asarray(layer(x)))


def test_found_by_its_registered_name_without_custom_objects():
    layer = ImageNormalizer(**NORMALIZATIONS["resnet50"])  # BGR, caffe-style means
    saved = keras.saving.serialize_keras_object(layer)
    assert saved["registered_name"] == "neipalette>ImageNormalizer"
    back = keras.saving.deserialize_keras_object(json.loads(json.dumps(saved)))
    assert type(back) is ImageNormalizer and back.get_config() == layer.get_config()


def test_travels_inside_a_saved_model(tmp_path):
    config = {"scale": 1 / 127.5, "mean": (1.0, 0.5, 0.25), "std": (1.0, 2.0, 4.0), "channel_order": "bgr"}
    model = keras.Sequential([keras.Input((8, 8, 3)), ImageNormalizer(**config, name="pre")])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("pre").get_config() == model.get_layer("pre").get_config()
    x = np.random.default_rng(2).uniform(0, 255, (3, 8, 8, 3)).astype("float32")
    got = loaded.predict(x, verbose=0)
    np.testing.assert_allclose(got, _expected(x, config), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_on_what_load_image_gives_it_is_the_documented_map(name, tmp_path):
    """The model's input is `load_image`'s uint8 output as it is; uint8 and float give the same result."""
    path = tmp_path / "photo.png"
    path.write_bytes(_photo_bytes())
    x = load_image(path, 16)
    assert x.shape == (16, 16, 3) and x.dtype == np.uint8
    assert np.array_equal(x, load_image(path.read_bytes(), 16))  # a path or its bytes: the same pixels
    layer = ImageNormalizer(**NORMALIZATIONS[name])
    as_uint8 = np.asarray(layer(x[None]))
    as_float = np.asarray(layer(x[None].astype("float32")))
    assert as_uint8.dtype == np.float32 and as_uint8.shape == (1, 16, 16, 3)
    assert np.array_equal(as_uint8, as_float)
    np.testing.assert_allclose(as_float[0], _expected(x, NORMALIZATIONS[name]), rtol=1e-5, atol=1e-4)


def test_defaults_are_imagenets_and_a_no_op_config_passes_pixels_through():
    config = ImageNormalizer().get_config()
    assert config["scale"] == 1 / 255.0 and config["channel_order"] == "rgb"
    assert config["mean"] == list(IMAGENET_MEAN) and config["std"] == list(IMAGENET_STD)
    x = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    same = ImageNormalizer(scale=1.0, mean=(0, 0, 0), std=(1, 1, 1))
    assert np.array_equal(np.asarray(same(x)), x)
    flipped = ImageNormalizer(scale=1.0, mean=(0, 0, 0), std=(1, 1, 1), channel_order="bgr")
    assert np.array_equal(np.asarray(flipped(x)), x[..., ::-1])  # BGR alone is no no-op


def test_output_shape_is_the_input_shape():
    layer = ImageNormalizer()
    assert layer.compute_output_shape((None, 32, 32, 3)) == (None, 32, 32, 3)
    symbolic = layer(keras.Input((None, None, 3)))
    assert tuple(symbolic.shape) == (None, None, None, 3)


@pytest.mark.parametrize("order", ["RGB", "bgra", "", None])
def test_an_unknown_channel_order_is_refused_naming_it(order):
    with pytest.raises(ValueError) as e:
        ImageNormalizer(channel_order=order)
    assert repr(order) in str(e.value) and "\n" not in str(e.value)
