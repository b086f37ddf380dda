"""`predict` (neipalette_tf/commands/predict.py) on every exported format."""

import json

import pytest
from helpers import SIZE, run_module


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


def test_predict_cli_answers_alike_in_every_format(exported, run, sample_pairs, capsys):
    from neipalette_tf.commands import predict
    from neipalette_tf.core.preprocessing import load_image
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    out, _ = exported
    row = sample_pairs[2].rows[0]

    def answer(model):
        assert predict.main(["--model", str(model), row["top"], row["bottom"], "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    reference = answer(run / "model.keras")
    for name, bound in {"saved_model": 1e-4, "saved_model/1": 1e-4, "model.onnx": 1e-4, "model.tflite": 1e-4,
                        "model_fp16.tflite": 1e-2}.items():
        got = answer(out / name)
        assert set(got) == set(reference) and got["p_harmonious"] == pytest.approx(reference["p_harmonious"], abs=bound)
        if bound <= 1e-4:
            assert got["label"] == reference["label"], name
    # int8 parity is judged on the whole test set (parity.json); here: the CLI reads the uint8 model right.
    got = answer(out / "model_int8.tflite")
    top, bottom = (load_image(row[k], SIZE)[None] for k in ("top", "bottom"))
    expected = HarmonyRuntime(out / "model_int8.tflite").predict_batch(top, bottom)[0]
    assert got["p_harmonious"] == pytest.approx(expected, abs=1e-6)


def test_predict_cli_bad_model_is_one_line(tmp_path, sample_pairs):
    row = sample_pairs[2].rows[0]
    (tmp_path / "folder").mkdir()
    for model, message in ((tmp_path / "none.onnx", "model not found"),
                           (tmp_path / "folder", "not a SavedModel folder")):
        done = run_module("neipalette_tf.predict", "--model", model, row["top"], row["bottom"])
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
