"""The palette reading (neipalette_tf.colour.palette, neipalette_tf.models.palette)."""

import numpy as np
import pytest

from neipalette_tf.colour import palette
from neipalette_tf.colour.space import srgb_to_oklab

NAVY, WHITE, RED = srgb_to_oklab(np.array([[31, 45, 84], [245, 245, 240], [200, 30, 40]]))


def _pixels(colours, counts, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.repeat(c[None], n, 0) for c, n in zip(colours, counts)])
    return (x + rng.normal(0, noise, x.shape))[None].astype(np.float32)


def _read(pixels, weights=None):
    weights = np.full(pixels.shape[:2], 1.0 / pixels.shape[1], np.float32) if weights is None else weights
    return palette.read_palette(palette.soft_kmeans(pixels, weights)[0])


@pytest.mark.parametrize("counts", [(50, 50), (70, 30), (85, 15)])
def test_two_colours_are_read_with_their_shares(counts):
    read = _read(_pixels([WHITE, NAVY], counts, noise=0.01))
    assert len(read) == 2
    for colour, share in zip((WHITE, NAVY), (counts[0] / 100, counts[1] / 100)):
        lab, got = min(read, key=lambda e: np.linalg.norm(e[0] - colour))
        assert np.linalg.norm(lab - colour) < 0.01 and abs(got - share) < 0.02
    assert read[0][1] >= read[1][1]


def test_three_colours_and_largest_first():
    read = _read(_pixels([RED, WHITE, NAVY], (25, 50, 25), noise=0.005))
    assert [round(s, 2) for _, s in read] == [0.5, 0.25, 0.25]
    assert np.linalg.norm(read[0][0] - WHITE) < 0.01


def test_a_shaded_plain_garment_is_one_colour_at_its_mean():
    x = _pixels([RED], (200,))
    x[0, :, 0] *= np.linspace(0.9, 1.1, 200)  # light to shadow along L
    read = _read(x)
    assert len(read) == 1 and read[0][1] == 1.0
    assert np.linalg.norm(read[0][0] - x[0].mean(axis=0)) < 1e-3


def test_edge_blend_goes_to_the_two_colours_it_mixes():
    mixed = 0.5 * (WHITE + NAVY)
    read = _read(_pixels([WHITE, NAVY, mixed], (45, 40, 15)))
    assert len(read) == 2
    assert [round(s, 3) for _, s in read] == [0.525, 0.475]


def test_weights_decide_the_shares_and_unweighted_pixels_are_ignored():
    x = _pixels([WHITE, NAVY, RED], (40, 40, 20))
    w = np.concatenate([np.full(40, 1.0), np.full(40, 3.0), np.zeros(20)])[None].astype(np.float32)
    read = _read(x, w / w.sum())
    assert len(read) == 2 and np.linalg.norm(read[0][0] - NAVY) < 1e-3 and abs(read[0][1] - 0.75) < 1e-3


def test_support_counts_every_attended_pixel_about_once():
    a = np.zeros((1, 1000), np.float32)  # a uniform map's weight: 1e-3; the threshold 6e-6
    a[0, :4] = (0.9, 0.0999, 3e-5, 1e-12)
    s = palette.support(a)
    assert s[0, 3] < 1e-6 and abs(s[0, 0] - s[0, 1]) < 1e-3 and s[0, 2] > 0.9 * s[0, 0]
    assert abs(float(s.sum()) - 1.0) < 1e-5


def test_json_and_hex():
    out = palette.as_json(np.array([[*WHITE, 0.7], [*NAVY, 0.3], [*NAVY, 0.0]]))
    assert out == [{"hex": "#f5f5f0", "share": 0.7}, {"hex": "#1f2d54", "share": 0.3}]


def test_keras_layer_computes_what_numpy_does():
    from neipalette_tf.models.palette import ColourPalette

    rng = np.random.default_rng(1)
    images = np.zeros((3, 16, 16, 3), np.float32)
    images[:, :8] = (245, 245, 240)
    images[:, 8:] = (31, 45, 84)
    images[1, :, :5] = (200, 30, 40)
    images[2] = rng.uniform(0, 255, (16, 16, 3))
    attention = rng.uniform(0, 1, (3, 64)).astype(np.float32) ** 8
    attention /= attention.sum(axis=1, keepdims=True)
    keras_raw = np.asarray(ColourPalette()(images, attention))
    numpy_raw = palette.palettes_from_attention(images, attention)
    assert keras_raw.shape == (3, palette.K, 4)
    np.testing.assert_allclose(keras_raw, numpy_raw, atol=2e-4)
    np.testing.assert_allclose(keras_raw[..., 3].sum(axis=1), 1.0, atol=1e-5)


def test_a_saved_model_loads_with_its_palette_and_exports_keep_the_signature(tmp_path):
    """The layer has no weights and no config of its own: a saved model (any age) loads and has it."""
    from neipalette_tf.models import build_classifier, load_model
    from neipalette_tf.predictors.keras import KerasPredictor

    model, _ = build_classifier("resnet18", image_size=32, weights="none", log=lambda *a: None)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    out = KerasPredictor(again).attend_details(images)
    assert out["palette"].shape == (2, palette.K, 4)
    np.testing.assert_allclose(out["palette"], palette.palettes_from_attention(images, out["attention"]), atol=2e-4)
    assert not [w for w in again.weights if "palette" in w.path]
