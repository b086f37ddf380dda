"""A calibrated model through export (parity, softmax(logits / T + shift) in every graph) and wardrobe ranking.

One tiny siamese model (32 px, random weights, temperature 0.3 so its
outputs spread, shift 0.4) is saved and exported to ONNX once per module
and shared by the tests.
"""

import json
import shutil

import numpy as np
import pytest
from helpers import make_pairs

pytestmark = pytest.mark.slow  # trains or exports a model: the full suite, not the fast tier

SIZE = 32
TEMPERATURE = 0.3
SHIFT = 0.4


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    import keras

    from neipalette_tf.models import build_classifier

    keras.utils.set_random_seed(1)
    model, _ = build_classifier("resnet18", SIZE, weights="none", log=lambda *_: None)
    model.set_calibration(TEMPERATURE, SHIFT)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def exported(calibrated, tmp_path_factory):
    from neipalette_tf.export.exporter import export_model

    pairs = make_pairs(tmp_path_factory.mktemp("pairs"), splits=(("test", 64),))
    out = tmp_path_factory.mktemp("artifacts") / "X"
    report = export_model(str(calibrated), str(out), formats=["onnx"], parity_data=str(pairs),
                          log=lambda *_: None)
    return out, report, pairs


def test_temperature_round_trips_and_is_in_every_export(calibrated, exported):
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import load_images
    from neipalette_tf.evaluation.calibration import probabilities, softmax
    from neipalette_tf.models import load_model
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    out, report, pairs = exported
    assert report["passed"], json.dumps(report["formats"])[:2000]
    card = json.loads((out / "model_card.json").read_text())
    assert card["calibration"]["temperature"] == pytest.approx(TEMPERATURE)
    assert card["calibration"]["shift"] == pytest.approx(SHIFT)
    model = load_model(calibrated)
    assert model.temperature == pytest.approx(TEMPERATURE) and model.get_config()["temperature"] == pytest.approx(TEMPERATURE)
    assert model.calibration_shift == pytest.approx(SHIFT)
    rows = read_manifest(pairs)
    tops, bottoms = (load_images(rows.column(k)[:16], SIZE).astype("float32") for k in ("top", "bottom"))
    x = {"top": tops, "bottom": bottoms}
    logits = model.logits_model().predict(x, verbose=0)
    p = model.predict(x, verbose=0)[:, 1]
    np.testing.assert_allclose(p, probabilities(logits, TEMPERATURE, SHIFT)[:, 1], atol=1e-5)
    assert np.abs(p - softmax(logits)[:, 1]).max() > 1e-2  # T = 0.3 really changes the outputs
    assert np.abs(p - softmax(logits / TEMPERATURE)[:, 1]).max() > 1e-3  # and so does the shift
    for name in ("model.onnx",):
        rt = HarmonyRuntime(out / name)
        np.testing.assert_allclose(rt.predict_batch(tops, bottoms), p, atol=1e-4, err_msg=name)
        composed = rt.score_batch(rt.embed_batch(tops), rt.embed_batch(bottoms))
        np.testing.assert_allclose(composed, p, atol=1e-4, err_msg=name)


@pytest.fixture(scope="module")
def wardrobe(tiny_synth, tmp_path_factory):
    """12 bottoms and 8 tops of the tiny synthetic set in a folder, and a query top outside it."""
    from neipalette_tf.data.manifest import read_manifest

    rows = read_manifest(tiny_synth).rows
    folder = tmp_path_factory.mktemp("wardrobe")
    for i, row in enumerate(rows[:12]):
        shutil.copy(row["bottom"], folder / f"bottom_{i:02d}.png")
    tops = tmp_path_factory.mktemp("tops")
    for i, row in enumerate(rows[12:20]):
        shutil.copy(row["top"], tops / f"top_{i:02d}.png")
    return folder, tops, rows[30]["top"], rows[31]["bottom"]


def test_keras_and_onnx_rank_the_wardrobe_alike_and_the_cache_is_hit(calibrated, exported, wardrobe, tmp_path):
    from neipalette_tf.ranking import rank as wardrobe_lib

    out, _, _ = exported
    folder, _, query, _ = wardrobe
    keras_scorer, onnx_scorer = wardrobe_lib.load_scorer(calibrated), wardrobe_lib.load_scorer(out / "model.onnx")
    assert keras_scorer.identity != onnx_scorer.identity  # separate cache entries
    ranking, store = wardrobe_lib.rank(keras_scorer, query, folder)
    assert store.misses == 13 and store.hits == 0 and len(ranking) == 12
    ranking_onnx, _ = wardrobe_lib.rank(onnx_scorer, query, folder)
    names = [f for f, _ in ranking]
    assert [f for f, _ in ranking_onnx] == names
    np.testing.assert_allclose([p for _, p in ranking_onnx], [p for _, p in ranking], atol=1e-4)
    scores = np.array([p for _, p in ranking])
    assert np.all(np.diff(scores) <= 0) and scores[0] - scores[-1] > 1e-3  # sorted, and not all alike

    # Second call: every embedding comes from the disk cache, and the answer is the same.
    again, store = wardrobe_lib.rank(keras_scorer, query, folder)
    assert store.misses == 0 and store.hits == 13 and again == ranking
    # A renamed file keeps its cached embedding (content-keyed); an edited one is embedded anew.
    (folder / "bottom_00.png").rename(folder / "renamed.png")
    _, store = wardrobe_lib.rank(keras_scorer, query, folder)
    assert store.misses == 0
    shutil.copy(query, folder / "bottom_01.png")  # now the query itself: left out of the ranking
    ranked, store = wardrobe_lib.rank(keras_scorer, query, folder)
    assert len(ranked) == 11 and store.misses == 0


def test_recommend_cli_ranks_tops_for_a_bottom_and_draws_the_grid(exported, wardrobe, tmp_path, capsys):
    from neipalette_tf.commands import recommend
    from neipalette_tf.core.errors import UserError

    out, _, _ = exported
    _, tops, _, bottom = wardrobe
    grid, cache = tmp_path / "grid.png", tmp_path / "cache"
    args = ["--model", str(out), "--bottom", bottom, "--wardrobe", str(tops),
            "--k", "3", "--out", str(grid), "--cache", str(cache), "--json"]
    assert recommend.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["ranking"]) == 8 and first["cache"]["misses"] == 9
    assert grid.stat().st_size > 5000 and any(cache.glob("embeddings-*.npy"))
    assert recommend.main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cache"] == dict(first["cache"], hits=9, misses=0) and second["ranking"] == first["ranking"]
    with pytest.raises(UserError, match="wardrobe folder not found"):
        recommend.main(["--model", str(out / "model.onnx"), "--top", bottom, "--wardrobe", str(tmp_path / "none")])


def test_calibrate_cli_refits_and_saves_the_temperature(calibrated, tmp_path, capsys):
    from neipalette_tf.commands import calibrate
    from neipalette_tf.models import load_model

    pairs = make_pairs(tmp_path / "pairs", splits=(("val", 24),))
    target = tmp_path / "refit.keras"
    assert calibrate.main(["--model", str(calibrated), "--data", str(pairs), "--save-to", str(target),
                           "--out", str(tmp_path / "cal")]) == 0
    result = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert result["previous_temperature"] == pytest.approx(TEMPERATURE) and result["n"] == 24
    assert result["previous_shift"] == pytest.approx(SHIFT)
    assert result["nll_after"] <= result["nll_before"] + 1e-3  # NLL at the model's (T, s) vs at the fitted ones
    assert 0 <= result["ece_after_leave_one_out"] <= 1
    assert load_model(target).temperature == pytest.approx(result["temperature"])
    assert load_model(target).calibration_shift == pytest.approx(result["shift"])
    assert load_model(calibrated).temperature == pytest.approx(TEMPERATURE)  # --save-to left it alone
    assert (tmp_path / "cal" / "reliability.png").stat().st_size > 5000
    assert "T = " in capsys.readouterr().out
    # a user's own labelled photos: a manifest without splits is calibrated on all its pairs
    no_split = pairs.parent / "nosplit.csv"
    no_split.write_text("top,bottom,label\n" + "\n".join(
        ",".join(line.split(",")[:3]) for line in pairs.read_text().splitlines()[1:]) + "\n")
    assert calibrate.main(["--model", str(calibrated), "--data", str(no_split), "--save-to", str(tmp_path / "b.keras"),
                           "--out", str(tmp_path / "cal-all")]) == 0
    assert json.loads((tmp_path / "cal-all" / "calibration.json").read_text())["split"] == "all"
    with pytest.raises(calibrate.cli.UserError, match="no split column"):
        calibrate.main(["--model", str(calibrated), "--data", str(no_split), "--split", "val"])
    # an --out folder holding someone else's files is refused, untouched, and the model is not rewritten
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "calibration.json").write_text("mine")
    (theirs / "notes.txt").write_text("mine")
    before = (tmp_path / "b.keras").stat().st_mtime_ns
    with pytest.raises(calibrate.cli.UserError, match="did not write"):
        calibrate.main(["--model", str(calibrated), "--data", str(no_split), "--save-to", str(tmp_path / "b.keras"),
                        "--out", str(theirs)])
    assert (theirs / "calibration.json").read_text() == "mine" and sorted(p.name for p in theirs.iterdir()) == [
        "calibration.json", "notes.txt"]
    assert (tmp_path / "b.keras").stat().st_mtime_ns == before
    # an earlier calibration's folder is replaced whole
    assert calibrate.main(["--model", str(calibrated), "--data", str(no_split), "--save-to", str(tmp_path / "b.keras"),
                           "--out", str(tmp_path / "cal-all")]) == 0
    assert sorted(p.name for p in (tmp_path / "cal-all").iterdir()) == ["calibration.json", "reliability.png"]


def test_bench_times_ranking_end_to_end_and_the_head_alone(exported, capsys):
    """`recommend --bench` on a small wardrobe: every timing is measured and the head's share is printed."""
    from neipalette_tf.commands import recommend
    from neipalette_tf.core import cli
    from neipalette_tf.ranking.bench import bench
    from neipalette_tf.ranking.rank import load_scorer

    out, _, _ = exported
    r = bench(load_scorer(str(out / "model.onnx")), n=20, queries=3)
    assert r["garments"] == 20 and r["queries"] == 3 and r["first_pass_s"] > 0
    assert 0 < r["score_p50_ms"] and 0 < r["p50_ms"] <= r["p90_ms"] <= r["max_ms"]
    assert r["score_p50_ms"] < r["max_ms"]  # the head alone is part of a ranking
    assert cli.run(recommend.main, ["--model", str(out / "model.onnx"), "--bench", "--garments", "12",
                                    "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "CPU: " in printed and "of which the head scoring 12 pairs: p50" in printed
