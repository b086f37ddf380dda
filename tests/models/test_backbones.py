"""Contract tests of the backbone registry (models/backbones.py), parametrised over it: a backbone
registered with `register_backbone` is built, saved, reloaded, given weights from a file and checked
for its normalisation here without a new test. Backbones marked `large` build only in the full tier."""

import keras
import numpy as np
import pytest

from neipalette_tf.models import (
    NORMALIZATIONS,
    HarmonyClassifier,
    ImageNormalizer,
    WeightsError,
    backbones,
    build_backbone,
    build_classifier,
    load_model,
)
from neipalette_tf.models.backbones import BACKBONES


def _tiered(names):
    return [pytest.param(n, marks=pytest.mark.slow) if BACKBONES[n].large else n for n in names]


EVERY = _tiered(BACKBONES)
SMALL = [n for n, spec in BACKBONES.items() if not spec.large]


def _pair(n=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(0, 255, (n, size, size, 3)).astype("float32") for k in ("top", "bottom")}


@pytest.mark.parametrize("backbone", EVERY)
@pytest.mark.parametrize("pairing", ["siamese", "stacked"])
def test_builds_predicts_and_reloads(tmp_path, backbone, pairing):
    model, used = build_classifier(backbone, 32, pairing, weights="none")
    assert used == "none"
    x = _pair()
    p = model.predict(x, verbose=0)
    assert p.shape == (2, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert isinstance(again, HarmonyClassifier)
    assert (again.image_size, again.backbone_name, again.pairing) == (32, backbone, pairing)
    assert again.normalization == model.normalization
    np.testing.assert_allclose(again.predict(x, verbose=0), p, atol=1e-6)


@pytest.mark.parametrize("name", EVERY)
def test_weights_from_a_weights_file(tmp_path, name):
    source, _ = build_backbone(name, "none")
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    loaded, used = build_backbone(name, str(path))
    assert used == f"file:{path}"
    for a, b in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(source(x)), atol=1e-5)


@pytest.mark.parametrize("name", EVERY)
def test_preset_folders_load_for_kerashub_backbones_and_are_refused_for_the_others(tmp_path, name):
    spec = BACKBONES[name]
    source, _ = build_backbone(name, "none")
    folder = tmp_path / "preset"
    if spec.loads_preset_folders:
        source.save_to_preset(str(folder))
        loaded, used = build_backbone(name, str(folder))
        assert used.startswith("preset:")
        np.testing.assert_array_equal(source.weights[0].numpy(), loaded.weights[0].numpy())
    else:
        folder.mkdir()
        with pytest.raises(WeightsError, match=f"preset folder works for the KerasHub backbones .*for {name}"):
            build_backbone(name, str(folder))


@pytest.mark.parametrize("name", EVERY)
def test_normalisation_travels_with_the_model_not_inside_the_backbone(name):
    """The ImageNormalizer is the model's one normalisation op: no backbone rescales inside itself unless
    its registered normalisation is the identity (keras.applications models that normalise inside)."""
    source, _ = build_backbone(name, "none")
    rescaling = [layer for layer in source.layers if isinstance(layer, keras.layers.Rescaling)]
    identity = NORMALIZATIONS[name] == {"scale": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    assert identity or not rescaling, f"{name}: rescales inside the backbone and in the ImageNormalizer"


def test_a_weights_file_of_another_backbone_is_refused_in_one_line(tmp_path):
    first, second = SMALL[:2]
    other, _ = build_backbone(first, "none")
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(WeightsError, match=f"does not fit the {second} backbone"):
        build_backbone(second, str(tmp_path / "other.weights.h5"))
    with pytest.raises(WeightsError, match="weights not found"):
        build_backbone(first, str(tmp_path / "nope.weights.h5"))
    with pytest.raises(WeightsError, match="unknown backbone 'nope'"):
        build_backbone("nope", "none")


def test_auto_falls_back_to_random_in_one_line(monkeypatch):
    real = backbones._build
    name = SMALL[0]

    def offline(name, source):
        if source == "imagenet":
            raise ConnectionError("no network\nsecond line")
        return real(name, source)

    monkeypatch.setattr(backbones, "_build", offline)
    lines = []
    _, used = build_backbone(name, "auto", log=lines.append)
    assert used == "none (imagenet unavailable)"
    assert len(lines) == 1 and "random initialisation" in lines[0] and "\n" not in lines[0]
    with pytest.raises(WeightsError, match=f"ImageNet weights for {name} could not be loaded"):
        build_backbone(name, "imagenet")


@pytest.mark.parametrize("name", sorted(NORMALIZATIONS))
def test_normalizer_is_the_configured_affine_map_in_one_tflite_op(name):
    """`(x[..., order] * scale - mean) / std` for every backbone's constants, on image batches and
    on other ranks; in a TFLite graph it is one op (a depthwise 1 x 1 convolution; a 1 x 1
    convolution that also reverses the channels for BGR; none for the identity), not a broadcast
    SUB and MUL (two requantised ops in the int8 files)."""
    import tensorflow as tf

    from neipalette_tf.export.flatbuffer import op_names

    config = NORMALIZATIONS[name]
    layer = ImageNormalizer(**config)
    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    order = slice(None, None, -1) if config.get("channel_order") == "bgr" else slice(None)
    expected = (x[..., order] * config["scale"] - np.array(config["mean"])) / np.array(config["std"])
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer(x[:, 0, 0])), expected[:, 0, 0], rtol=1e-5, atol=1e-4)

    model = keras.Sequential([keras.Input((8, 8, 3)), ImageNormalizer(**config)])
    ops = op_names(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    identity = config["scale"] == 1.0 and not any(config["mean"]) and set(config["std"]) == {1.0}
    expected_ops = [] if identity and config.get("channel_order") != "bgr" else \
        ["CONV_2D"] if config.get("channel_order") == "bgr" else ["DEPTHWISE_CONV_2D"]
    assert ops == expected_ops, name


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_is_documented(name):
    """docs/how_it_works.md's backbone list and docs/cli.md's `train --backbone` name each registered one."""
    from conftest import ROOT

    how = (ROOT / "docs" / "how_it_works.md").read_text(encoding="utf-8")
    listed = how.split("- **Backbones**", 1)[1].split("\n- **", 1)[0]
    assert f"`{name}`" in listed, f"{name}: add it to docs/how_it_works.md's Backbones"
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    choices = cli.split("[--backbone ", 1)[1].split("]", 1)[0].split("\\|")
    assert name in choices, f"{name}: add it to `train --backbone` in docs/cli.md"
