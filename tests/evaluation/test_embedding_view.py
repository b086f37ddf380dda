"""`neipalette_tf.evaluation.embedding_view`: the garments of a split, their display colours, the hue
neighbour agreement and the t-SNE view, on hand-made manifests, images and embeddings.

A stand-in encoder (a garment's "embedding" is a function of its hue, or
noise) replaces the model. The view of a trained model's encoder is drawn
in tests/training/test_multiworker.py (a run's metrics carry it).
"""

import types

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.evaluation import embedding_view as ev


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """t-SNE's 1,000 tiny gradient steps on OpenMP threads: on a busy 2-core machine their spin-waits took
    5-11 s for 20 points instead of 0.05 s on one thread (measured on a loaded machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def manifest(n_rows, colours=True, shared_bottom=False, chroma=0.15):
    """`n_rows` rows, top i and bottom i (or one shared bottom), hues spread round the wheel."""
    rows = []
    for i in range(n_rows):
        row = {"top": f"t{i}.png", "bottom": "b.png" if shared_bottom else f"b{i}.png", "label": "1"}
        if colours:
            for kind, hue in (("top", 360.0 * i / n_rows), ("bottom", (360.0 * i / n_rows + 180) % 360)):
                row.update({f"{kind}_L": "0.6", f"{kind}_C": str(chroma), f"{kind}_h": f"{hue:.3f}"})
        rows.append(row)
    return types.SimpleNamespace(rows=rows)


def images_of(n_rows, offset):
    """uint8 images `[n, 4, 4, 3]` whose first pixel tells which row (and which kind) they are."""
    out = np.zeros((n_rows, 4, 4, 3), np.uint8)
    out[:, 0, 0, 0] = np.arange(n_rows) + offset
    return out


def test_split_garments_lists_each_garment_once_with_its_colour_and_image():
    m = manifest(3, shared_bottom=True)
    tops, bottoms = images_of(3, 0), images_of(3, 100)
    paths, kinds, lch, images = ev.split_garments(m, tops, bottoms)
    assert paths == ["t0.png", "b.png", "t1.png", "t2.png"] and kinds == ["top", "bottom", "top", "top"]
    assert lch.shape == (4, 3) and lch.dtype == np.float64
    np.testing.assert_allclose(lch[:, 2], [0, 180, 120, 240], atol=1e-3)  # the shared bottom: its first row's colour
    assert [int(img[0, 0, 0]) for img in images] == [0, 100, 1, 2]  # each garment's image from its first row
    assert ev.split_garments(m)[3] == [None] * 4  # without decoded images: nothing decoded here


@pytest.mark.parametrize("spoil", ["missing column", "empty value", "not a number"])
def test_split_garments_is_none_when_any_row_lacks_its_colours(spoil):
    m = manifest(4)
    row = m.rows[3]
    if spoil == "missing column":
        del row["bottom_h"]
    else:
        row["bottom_h"] = "" if spoil == "empty value" else "teal"
    assert ev.split_garments(m) is None
    assert ev.split_garments(manifest(4, colours=False)) is None


def test_display_colours_show_hue_only_and_neutrals_grey():
    lch = np.array([[0.3, 0.20, 30.0],    # chromatic red-orange, dark and vivid
                    [0.9, 0.13, 30.0],    # same hue, light and softer: drawn the same
                    [0.6, 0.15, 150.0],   # green
                    [0.5, 0.02, 150.0],   # achromatic: grey
                    [0.3, 0.08, 250.0]])  # navy (rule v1's denim zone): grey
    rgb, neutral = ev.display_colours(lch)
    assert neutral.tolist() == [False, False, False, True, True]
    np.testing.assert_allclose(rgb[0], rgb[1])
    assert np.abs(rgb[0] - rgb[2]).max() > 0.2  # another hue, another colour
    assert rgb[0][0] > rgb[0][2] and rgb[2][1] > rgb[2][0]  # red-ish is red, green is green
    np.testing.assert_allclose(rgb[3], ev.NEUTRAL_GREY) and np.testing.assert_allclose(rgb[4], ev.NEUTRAL_GREY)
    assert rgb.min() >= 0 and rgb.max() <= 1


def hue_circle(n, seed=0):
    rng = np.random.default_rng(seed)
    hue = rng.uniform(0, 360, n)
    lch = np.stack([np.full(n, 0.6), np.full(n, 0.15), hue], 1)
    return hue, lch


def test_agreement_is_near_chance_for_embeddings_that_ignore_hue():
    hue, lch = hue_circle(120)
    noise = np.random.default_rng(1).normal(size=(120, 16))
    a = ev.hue_neighbour_agreement(noise, lch)
    assert a["k"] == ev.NEIGHBOURS and a["garments"] == 120
    assert abs(a["agreement"] - a["chance"]) < 0.08, a
    assert a["chance"] == pytest.approx(60 / 360, abs=0.05)  # +-30 degrees of a uniform wheel
    circle = np.stack([np.cos(np.radians(hue)), np.sin(np.radians(hue))], 1)
    assert ev.hue_neighbour_agreement(circle, lch)["agreement"] > 0.95


def test_agreement_weighs_every_feature_alike_and_leaves_neutrals_out():
    hue, lch = hue_circle(60)
    circle = np.stack([np.cos(np.radians(hue)), np.sin(np.radians(hue))], 1)
    scaled = circle * [1000.0, 0.001]  # standardised per feature: the scale of a feature does not matter
    assert ev.hue_neighbour_agreement(scaled, lch) == pytest.approx(ev.hue_neighbour_agreement(circle, lch))
    grey = np.concatenate([lch, np.stack([np.full(30, 0.5), np.full(30, 0.01), np.linspace(0, 350, 30)], 1)])
    with_grey = np.concatenate([circle, np.random.default_rng(2).normal(size=(30, 2))])
    a = ev.hue_neighbour_agreement(with_grey, grey)
    assert a == pytest.approx(ev.hue_neighbour_agreement(circle, lch))  # the 30 neutrals neither count nor crowd
    assert a["garments"] == 60 and a["agreement"] > 0.8


def test_agreement_needs_k_plus_two_chromatic_garments():
    _, lch = hue_circle(12)
    emb = np.random.default_rng(0).normal(size=(12, 3))
    assert ev.hue_neighbour_agreement(emb, lch, k=10) is not None
    assert ev.hue_neighbour_agreement(emb[:11], lch[:11], k=10) is None
    lch[:2, 1] = 0.01  # two of them neutral: 10 chromatic left
    assert ev.hue_neighbour_agreement(emb, lch, k=10) is None
    assert ev.hue_neighbour_agreement(emb, lch, k=3)["k"] == 3


def test_tsne_places_every_garment_in_2d_the_same_way_each_time():
    emb = np.random.default_rng(0).normal(size=(20, 5))  # few points: the perplexity is clamped below 30
    a, b = ev.tsne_2d(emb, seed=3), ev.tsne_2d(emb, seed=3)
    assert a.shape == (20, 2) and np.isfinite(a).all() and np.ptp(a, axis=0).min() > 0
    np.testing.assert_allclose(a, b)


def recording_encoder(seen):
    """An encoder whose embedding of an image is its first pixel (row number), recording its batches."""
    def predict(images):
        seen.append(np.array(images))
        x = images[:, 0, 0, 0].astype(np.float64)
        return np.stack([np.cos(x), np.sin(x), x / 100], 1)

    return predict


def test_write_embedding_view_embeds_each_garment_once_and_draws_the_map(tmp_path):
    m = manifest(6)
    seen = []
    out = tmp_path / "tsne.png"
    view = ev.write_embedding_view(recording_encoder(seen), m, out, images_of(6, 0), images_of(6, 100), "Title")
    assert len(seen) == 1 and [int(x) for x in seen[0][:, 0, 0, 0]] == [0, 100, 1, 101, 2, 102, 3, 103, 4, 104,
                                                                        5, 105]
    assert view["garments"] == 12 and view["hue_neighbour_agreement"]["garments"] == 12
    assert 0 <= view["hue_neighbour_agreement"]["agreement"] <= 1
    with Image.open(out) as img:
        assert img.format == "PNG" and min(img.size) > 300


def test_write_embedding_view_samples_at_most_max_garments_with_a_fixed_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "MAX_GARMENTS", 8)
    m, tops, bottoms = manifest(10), images_of(10, 0), images_of(10, 100)
    first, second = [], []
    view = ev.write_embedding_view(recording_encoder(first), m, tmp_path / "a.png", tops, bottoms, "A", seed=5)
    ev.write_embedding_view(recording_encoder(second), m, tmp_path / "b.png", tops, bottoms, "B", seed=5)
    assert view["garments"] == 8 and len(first[0]) == 8
    np.testing.assert_array_equal(first[0], second[0])  # the same sample
    order = [int(x) for x in first[0][:, 0, 0, 0]]
    everyone = [int(x) for pair in zip(range(10), range(100, 110)) for x in pair]
    assert order == [x for x in everyone if x in order]  # kept in manifest order
    assert view["hue_neighbour_agreement"] is None  # 8 garments: too few for 10 neighbours, but still drawn
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_write_embedding_view_draws_nothing_without_colours_or_with_under_five_garments(tmp_path):
    never = lambda images: pytest.fail("embedded although there is no view")  # noqa: E731
    assert ev.write_embedding_view(never, manifest(4, colours=False), tmp_path / "x.png", images_of(4, 0),
                                   images_of(4, 100), "T") is None
    assert ev.write_embedding_view(never, manifest(2), tmp_path / "x.png", images_of(2, 0), images_of(2, 100),
                                   "T") is None  # 4 garments
    assert not (tmp_path / "x.png").exists()


def test_keras_encoder_predict_feeds_float32_to_the_models_encoder():
    calls = []

    class Encoder:
        def predict(self, x, batch_size, verbose):
            calls.append((x.dtype, x.shape, batch_size, verbose))
            return x.reshape(len(x), -1)[:, :2] * 2

    model = types.SimpleNamespace(encoder=lambda: Encoder())
    predict = ev.keras_encoder_predict(model, batch_size=7)
    out = predict(images_of(3, 1))
    assert calls == [(np.float32, (3, 4, 4, 3), 7, 0)]
    assert isinstance(out, np.ndarray) and out[:, 0].tolist() == [2.0, 4.0, 6.0]
