"""End to end on a handful of synthetic pairs: train -> evaluate -> compare -> predict."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from neipalette_tf.commands import compare, evaluate, train
from neipalette_tf.evaluation.metrics import METRIC_KEYS
from neipalette_tf.models import build_backbone, load_model
from neipalette_tf.training import prepare

pytestmark = pytest.mark.slow  # trains or exports a model: the full suite, not the fast tier

RUN_FILES = ("model.keras", "config.yaml", "history.csv", "metrics.json", "report.md", "roc.png",
             "confusion.png", "curves.png", "predictions.csv", "samples.png")
FAST = ["--image-size", "32", "--epochs", "2", "--batch-size", "16", "--weights", "none"]


def _cli(module, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def run(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train.main(["--data", str(tiny_synth), "--out", str(out), *FAST]) == 0
    return out


def _metrics(folder):
    with open(os.path.join(folder, "metrics.json")) as f:
        return json.load(f)


def test_train_writes_every_output(run):
    for name in RUN_FILES:
        assert (run / name).stat().st_size > 0, name
    assert (run / "logs").is_dir()  # TensorBoard
    m = _metrics(run)
    assert set(METRIC_KEYS) <= set(m)
    assert {"weights", "backbone", "pairing", "image_size"} <= set(m)
    assert (m["backbone"], m["pairing"], m["image_size"], m["weights"]) == ("resnet18", "siamese", 32, "none")
    assert m["n"] == 12 and sum(map(sum, m["confusion_matrix"])) == 12
    assert set(m["per_class"]) == {"harmonious", "clashing"}
    assert len(m["roc_auc_ci95"]) == 2 and len(m["accuracy_ci95"]) == 2
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and "val_auc" in history[0] and len(history) == 3
    assert not [p for p in os.listdir(run) if ".tmp" in p]


def test_predictions_match_the_saved_model(run):
    import csv

    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    model = load_model(run / "model.keras")
    from neipalette_tf.predictors import predict_pair

    p = predict_pair(model, rows[0]["top"], rows[0]["bottom"])
    assert p == pytest.approx(float(rows[0]["p_harmonious"]), abs=1e-5)


def test_evaluate_compare_and_predict_cli(run, tiny_synth, tmp_path):
    assert evaluate.main(["--model", str(run / "model.keras"), "--data", str(tiny_synth / "pairs.csv"),
                          "--split", "all", "--out", str(tmp_path / "eval")]) == 0
    m = _metrics(tmp_path / "eval")
    assert m["n"] == 80 and m["split"] == "all"
    for name in ("roc.png", "confusion.png", "samples.png", "predictions.csv", "report.md"):
        assert (tmp_path / "eval" / name).exists()

    assert compare.main([str(run), str(tmp_path / "eval"), "--names", "test-split,all",
                         "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows.count("test-split") == 3 and rows.count("all") == 3  # Table 2 once, Table 3 twice
    assert (tmp_path / "cmp" / "roc.png").exists()

    top, bottom = sorted((tiny_synth / "images").iterdir())[:2]
    done = _cli("neipalette_tf.predict", "--model", run / "model.keras", top, bottom, "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0.0 <= answer["p_harmonious"] <= 1.0
    assert answer["label"] == ("harmonious" if answer["p_harmonious"] >= 0.5 else "clashing")


def test_cli_bad_input_is_one_line(run, tmp_path):
    done = _cli("neipalette_tf.predict", "--model", run / "model.keras", tmp_path / "no.jpg", tmp_path / "no2.jpg")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "no.jpg" in done.stderr
    assert "Traceback" not in done.stderr
    done = _cli("neipalette_tf.evaluate", "--model", run / "model.keras", "--data", tmp_path / "none.csv")
    assert done.returncode == 2 and "none.csv: file not found" in done.stderr and "Traceback" not in done.stderr
    done = _cli("neipalette_tf.train", "--data", tmp_path / "typo", "--out", tmp_path / "never")
    assert done.returncode == 2 and "manifest not found" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "never").exists() and not (tmp_path / "typo").exists()


def test_init_from_starts_at_the_trained_weights(run, tiny_synth, tmp_path):
    from neipalette_tf.training import config

    cfg = config.resolve(None, {"model.image_size": 64})
    model, used = prepare.build_model(cfg, str(run / "model.keras"))
    assert used == f"init-from:{run / 'model.keras'}"
    assert cfg["model"]["image_size"] == 32  # taken from the model, not the config
    saved = load_model(run / "model.keras")
    for a, b in zip(model.weights, saved.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    out = tmp_path / "finetune"
    assert train.main(["--data", str(tiny_synth), "--out", str(out), "--epochs", "1", "--batch-size", "16",
                       "--init-from", str(run / "model.keras")]) == 0
    assert _metrics(out)["weights"] == used


def test_train_with_backbone_weights_file(tiny_synth, tmp_path):
    backbone, _ = build_backbone("resnet18", "none")
    path = tmp_path / "r18.weights.h5"
    backbone.save_weights(path)
    out = tmp_path / "run"
    args = ["--data", str(tiny_synth), "--out", str(out), "--image-size", "32", "--epochs", "1",
            "--batch-size", "16", "--weights", str(path)]
    assert train.main(args) == 0
    assert _metrics(out)["weights"] == f"file:{path}"
