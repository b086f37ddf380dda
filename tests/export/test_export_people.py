"""A people-trained model's exports: every graph carries the `rating`, parity-checked like p.

An untrained 32 px people model (its rating is the people model on the colours it reads, whatever
its training) exported to SavedModel, float32 TFLite and ONNX in a subprocess.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SIZE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def people_export(tiny_pairs, tmp_path_factory):
    from neipalette_tf.core.io_utils import write_json, write_text
    from neipalette_tf.models import build_classifier
    from neipalette_tf.training import config

    run = tmp_path_factory.mktemp("people-run")
    model, _ = build_classifier("resnet18", SIZE, weights="none", log=lambda *_: None, harmony="people")
    model.save(run / "model.keras")
    write_text(run / "config.yaml", config.dump(config.resolve(None, {"data.path": str(tiny_pairs)})))
    write_json(run / "metrics.json", {"roc_auc": 0.5, "accuracy": 0.5, "n": 160})
    out = tmp_path_factory.mktemp("people-artifacts") / "X"
    done = subprocess.run([sys.executable, "-m", "export", "--model", str(run / "model.keras"), "--out", str(out),
                           "--formats", "savedmodel,tflite,onnx"], capture_output=True, text=True, cwd=ROOT,
                          timeout=900, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (out / "parity.json").is_file(), f"export failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return run, out


def test_every_format_carries_the_rating(people_export, tiny_pairs):
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import load_images
    from neipalette_tf.predictors.keras import KerasPredictor
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    run, out = people_export
    parity = json.loads((out / "parity.json").read_text())
    for fmt, r in parity["formats"].items():
        assert r["rating"]["passed"] and r["rating"]["max_abs_diff"] <= 1e-3, fmt
    card = json.loads((out / "model_card.json").read_text())
    assert card["harmony"]["source"] == "people" and "non-commercial" in card["harmony"]["licence"]
    assert "rating" in {o["name"] for o in card["artifacts"]["onnx"]["model"]["outputs"]}
    test = read_manifest(tiny_pairs).subset("test")
    tops, bottoms = (load_images(test.column(c)[:8], SIZE) for c in ("top", "bottom"))
    reference = KerasPredictor.from_file(run / "model.keras").rate_batch(tops, bottoms)
    for name in ("model.onnx", "model.tflite"):
        runtime = HarmonyRuntime(out / name)
        details = runtime.predict_details(tops, bottoms)
        assert runtime.has_rating and np.abs(details["rating"] - reference).max() <= 1e-3, name
        _, rating = runtime.rate_scores(runtime.embed_batch(tops), runtime.embed_batch(bottoms))
        assert np.abs(rating - reference).max() <= 1e-3, name
