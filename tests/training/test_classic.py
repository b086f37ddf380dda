"""The classic baselines: palette model and embedding probe (train, save, load, evaluate, predict)."""

import csv
import json

import numpy as np
import pytest

from neipalette_tf.commands import evaluate, predict, train
from neipalette_tf.colour import space
from neipalette_tf.core import cli
from neipalette_tf.evaluation.metrics import METRIC_KEYS
from neipalette_tf.models.classic import linear, load_classic, palette, probe
from neipalette_tf.predictors import load_predictor, predict_pair

pytestmark = pytest.mark.slow  # trains or exports a model: the full suite, not the fast tier

# The keys of a Keras run's metrics.json (neipalette_tf.train.train): the classic runs write the same.
RUN_KEYS = set(METRIC_KEYS) | {"weights", "backbone", "pairing", "image_size", "data", "split", "model",
                               "epochs_trained", "train_seconds"}
CLASSIC_RUN_FILES = ("config.yaml", "metrics.json", "report.md", "roc.png", "confusion.png", "predictions.csv",
                     "samples.png")


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def _first_prediction(folder):
    with open(folder / "predictions.csv") as f:
        return next(csv.DictReader(f))


def test_logistic_numbers_score_like_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, 0, 0, 2]
    y = (x[:, 0] + 0.3 * x[:, 1] + rng.normal(size=60) > 1.5).astype(int)
    params = linear.fit_logistic(x, y, C=0.5)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000))
    reference.fit(x, y)
    np.testing.assert_allclose(linear.predict_logistic(json.loads(json.dumps(params)), x),
                               reference.predict_proba(x)[:, 1], atol=1e-6)


def test_palette_finds_the_garment_not_the_background():
    img = np.full((48, 48, 3), (120, 120, 125), dtype=np.uint8)  # grey floor
    img[8:40, 12:36] = (30, 60, 200)                               # blue garment ...
    img[20:24, 12:36] = (250, 250, 250)                            # ... with a white stripe
    lch, share = palette.garment_palette(img, colours=3)
    blue = space.srgb_to_oklch(np.array([30, 60, 200]))
    assert share[0] > 0.7 and abs(lch[0, 2] - blue[2]) < 3 and abs(lch[0, 1] - blue[1]) < 0.02
    grey = space.srgb_to_oklch(np.array([120, 120, 125]))
    assert all(abs(c[0] - grey[0]) > 0.05 for c, s in zip(lch, share) if s > 0)  # background dropped
    assert share.sum() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def palette_run(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("palette")
    assert train.main(["--backbone", "palette", "--data", str(tiny_synth), "--out", str(out),
                       "--image-size", "48"]) == 0
    return out


def test_palette_run_writes_a_keras_like_run_folder(palette_run):
    for name in CLASSIC_RUN_FILES + ("model.palette.json",):
        assert (palette_run / name).stat().st_size > 0, name
    m = _metrics(palette_run)
    assert set(m) == RUN_KEYS
    assert (m["backbone"], m["image_size"], m["n"]) == ("palette", 48, 12)
    saved = json.loads((palette_run / "model.palette.json").read_text())
    assert saved["format"] == "neipalette-classic" and saved["image_size"] == 48
    assert saved["feature_names"] == list(palette.FEATURE_NAMES)
    assert "palette" in (palette_run / "config.yaml").read_text()


def test_palette_reload_predict_and_evaluate(palette_run, tiny_synth, tmp_path):
    row = _first_prediction(palette_run)
    model = load_predictor(palette_run / "model.palette.json")
    assert isinstance(model, palette.PaletteModel) and model.image_size == 48
    # predict's path (load_image arrays -> predict_batch) gives the training run's probability
    assert predict_pair(model, row["top"], row["bottom"]) == pytest.approx(float(row["p_harmonious"]),
                                                                                   abs=1e-9)
    assert evaluate.main(["--model", str(palette_run / "model.palette.json"), "--data", str(tiny_synth),
                          "--split", "all", "--out", str(tmp_path / "eval")]) == 0
    m = _metrics(tmp_path / "eval")
    assert m["n"] == 80 and m["backbone"] == "palette"
    assert m["roc_auc"] > 0.8  # the colour features carry the rule: well above chance on the 80 pairs


def test_bad_classic_model_file_is_a_one_line_error(tmp_path, tiny_synth, capsys):
    bad = tmp_path / "model.palette.json"
    bad.write_text('{"format": "something-else"}')
    top, bottom = sorted((tiny_synth / "images").iterdir())[:2]
    with pytest.raises(SystemExit) as stop:
        cli.run(predict.main, ["--model", str(bad), str(top), str(bottom)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "model.palette.json" in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_keras_model(tmp_path_factory):
    from neipalette_tf.models import build_classifier

    model, _ = build_classifier("resnet18", 32, weights="none")
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(path)
    return path


def test_probe_trains_on_cached_embeddings_the_second_time(tiny_synth, tiny_keras_model, tmp_path, monkeypatch,
                                                          capsys):
    cache = tmp_path / "cache"
    args = ["--mode", "probe", "--init-from", str(tiny_keras_model), "--data", str(tiny_synth),
            "--cache-dir", str(cache)]
    assert train.main(args + ["--out", str(tmp_path / "first")]) == 0
    assert "embeddings: 160 computed, 0 from the cache" in capsys.readouterr().out
    (encoder_dir,) = list(cache.iterdir())
    assert len(list(encoder_dir.glob("*.npy"))) == 160  # one per garment image (content hash)

    def no_embedding(*_args, **_kwargs):
        raise AssertionError("the second run re-embedded an image")

    monkeypatch.setattr(probe.Embedder, "embed_images", no_embedding)
    assert train.main(args + ["--out", str(tmp_path / "second")]) == 0
    assert "embeddings: 0 computed, 160 from the cache" in capsys.readouterr().out
    monkeypatch.undo()

    first, second = _metrics(tmp_path / "first"), _metrics(tmp_path / "second")
    assert set(first) == RUN_KEYS and first["backbone"] == "probe-resnet18" and first["image_size"] == 32
    assert first["roc_auc"] == second["roc_auc"] and first["weights"] == f"init-from:{tiny_keras_model}"
    for name in CLASSIC_RUN_FILES + ("model.probe.json", "model.probe.encoder.keras"):
        assert (tmp_path / "first" / name).stat().st_size > 0, name

    # Reload: predict (embeds directly, no cache) agrees with the cached path of the run.
    monkeypatch.setenv("NEIPALETTE_CACHE_DIR", str(tmp_path / "eval-cache"))
    model = load_predictor(tmp_path / "first" / "model.probe.json")
    assert isinstance(model, probe.ProbeModel) and model.embedder.id == encoder_dir.name
    row = _first_prediction(tmp_path / "first")
    assert predict_pair(model, row["top"], row["bottom"]) == pytest.approx(float(row["p_harmonious"]),
                                                                                   abs=1e-5)
    assert evaluate.main(["--model", str(tmp_path / "first" / "model.probe.json"), "--data", str(tiny_synth),
                          "--out", str(tmp_path / "eval")]) == 0
    assert _metrics(tmp_path / "eval")["n"] == 12

    # A probe refuses an encoder file that is not the one it was trained on.
    from neipalette_tf.models import load_model

    other = load_model(tiny_keras_model)
    other.encoder().weights[0].assign(other.encoder().weights[0].numpy() + 1.0)
    other.save(tmp_path / "first" / "model.probe.encoder.keras")
    with pytest.raises(cli.UserError, match="not the encoder this probe was trained on"):
        load_classic(tmp_path / "first" / "model.probe.json")


def test_encoder_id_follows_the_weights(tiny_keras_model):
    from neipalette_tf.models import load_model

    model = load_model(tiny_keras_model)
    encoder = model.encoder()
    before = probe.encoder_id(encoder, 32)
    assert probe.encoder_id(load_model(tiny_keras_model).encoder(), 32) == before  # reload: same id
    assert probe.encoder_id(encoder, 48) != before
    w = encoder.weights[0]
    w.assign(w.numpy() + 1.0)
    assert probe.encoder_id(encoder, 32) != before
