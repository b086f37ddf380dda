"""The exporter (neipalette_tf/export/exporter.py, `python -m export`): every format published after
parity, nothing published on a failure, stacked models, bad input.

The model is the session's `tiny_run` (conftest.py): a small siamese
ResNet18 (32 px, no pretrained weights) trained for a few epochs on
generated solid-colour garment photos (`helpers.make_pairs`) so its outputs
are spread, not saturated; `tiny_export` exports it once per session for
every test that needs the files (tests/export/test_{savedmodel,tflite,onnx,
model_card,profile,bench}.py, tests/commands/test_predict.py,
tests/predictors/test_runtime_exports.py).
"""

import json
import os

import pytest
from helpers import SIZE, run_module

pytestmark = pytest.mark.slow  # trains or exports a model: the full suite, not the fast tier


# --------------------------------------------------------------------------
# The export folder
# --------------------------------------------------------------------------


def test_export_publishes_every_format_after_parity(exported):
    out, report = exported
    names = set(os.listdir(out))
    for part in ("model", "encoder", "head", "attention"):
        assert {f"{part}.onnx", f"{part}_int8.onnx", f"{part}.tflite", f"{part}_fp16.tflite",
                f"{part}_int8.tflite"} <= names
    assert (out / "saved_model" / "1" / "saved_model.pb").is_file()  # TF Serving layout
    assert {"parity.json", "model_card.json"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]  # no staging left
    parity = json.loads((out / "parity.json").read_text())
    assert parity == json.loads(json.dumps(report)) and parity["passed"]
    assert parity["pairs"] >= 64 and parity["data"]["split"] == "test"
    assert set(parity["formats"]) == {"savedmodel", "tflite", "tflite_fp16", "tflite_int8", "onnx", "onnx_int8"}
    keras = parity["keras"]
    # a fair comparison: well above parity's own warning bound (25 %); the 5-epoch tiny model has ~40 %
    assert keras["unsaturated_fraction"] >= 0.35 and "warning" not in keras
    for fmt in ("savedmodel", "onnx", "tflite"):
        for graph in ("model", "encoder+head"):
            r = parity["formats"][fmt][graph]
            assert r["max_abs_diff"] <= 1e-4 and r["decision_agreement"] == 1.0, (fmt, graph)
    assert parity["formats"]["tflite_fp16"]["model"]["max_abs_diff"] <= 1e-2
    for fmt, r in parity["formats"].items():  # the read colours and attention maps (neipalette_tf.explain)
        assert r["attention"]["passed"] and r["attention"]["images"] == 2 * parity["pairs"], fmt
    assert parity["formats"]["onnx"]["attention"]["max_colour_delta_e"] <= 1e-4
    for fmt in ("tflite_int8", "onnx_int8"):
        for graph in ("model", "encoder+head"):
            int8 = parity["formats"][fmt][graph]
            assert int8["roc_auc_diff"] <= 0.01 and int8["decision_agreement"] >= 0.97, (fmt, graph)
            assert int8["max_abs_diff"] > 0, (fmt, graph)  # really quantised: not the float graph again
    # The int8 files are about a quarter of the float32 files.
    assert (out / "model_int8.tflite").stat().st_size * 3.5 <= (out / "model.tflite").stat().st_size
    assert (out / "model_int8.onnx").stat().st_size * 3.5 <= (out / "model.onnx").stat().st_size


# --------------------------------------------------------------------------
# Failure paths, other models
# --------------------------------------------------------------------------


def test_failing_parity_publishes_nothing_and_exits_non_zero(run, monkeypatch, tmp_path, capsys):
    from neipalette_tf.commands import export as export_cli
    from neipalette_tf.export import tflite

    out = tmp_path / "X"
    out.mkdir()
    (out / "model.tflite").write_bytes(b"stale file of an earlier export")
    (out / "model_card.json").write_text('{"artifacts": {"tflite": {"model": {"file": "model.tflite"}}}}')
    real = tflite.convert
    # A converter that quietly loses precision: float16 constants, all of them, where float32 was asked for.
    monkeypatch.setattr(tflite, "keep_small_constants_float32", lambda half, full: (half, 0))
    monkeypatch.setattr(tflite, "convert", lambda src, key, precision, data=None, **kw: real(src, key, "float16", data))
    status = export_cli.main(["--model", str(run / "model.keras"), "--out", str(out), "--formats", "tflite"])
    assert status == 1
    assert "parity failed for tflite" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["model_card.json", "parity.json"]  # no artifact, no staging
    parity = json.loads((out / "parity.json").read_text())
    assert not parity["passed"] and not parity["formats"]["tflite"]["passed"]
    assert "max |dp|" in parity["formats"]["tflite"]["model"]["failures"][0]
    assert json.loads((out / "model_card.json").read_text())["artifacts"] == {}


def test_export_bad_input_is_one_line(tmp_path):
    done = run_module("export", "--model", tmp_path / "missing.keras", "--out", tmp_path / "out")
    assert done.returncode == 2 and "missing.keras: model not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_stacked_model_exports_without_encoder_and_head(pairs_csv, tmp_path):
    import tensorflow as tf

    from neipalette_tf.export.exporter import export_model
    from neipalette_tf.models import build_classifier

    model, _ = build_classifier("resnet18", SIZE, "stacked", weights="none")
    model.save(tmp_path / "model.keras")
    out = tmp_path / "out"
    report = export_model(str(tmp_path / "model.keras"), str(out), formats=["savedmodel"],
                          parity_data=str(pairs_csv), log=lambda *_: None)
    assert report["passed"] and list(report["formats"]["savedmodel"]) == ["rule", "passed", "model"]
    card = json.loads((out / "model_card.json").read_text())
    assert list(card["artifacts"]["savedmodel"]) == ["model"] and "stacked" in card["notes"]["encoder"]
    assert sorted(os.listdir(out)) == ["model_card.json", "parity.json", "saved_model"]
    assert list(tf.saved_model.load(str(out / "saved_model" / "1")).signatures) == ["serving_default"]


def test_the_exporter_clears_what_the_bench_writes():
    from neipalette_tf.export import bench, exporter

    names, _ = exporter.export_names()  # what an export folder may hold, and a re-export clears
    assert set(bench.OUTPUT_NAMES) <= names
