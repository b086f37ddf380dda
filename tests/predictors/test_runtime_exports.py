"""The TF-free runtime (neipalette_tf/predictors/runtime.py) on the tiny export: any batch and pixel type, no TensorFlow loaded."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from helpers import RUNTIME_FILES, SIZE, keras_p


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


RUNTIME_SCRIPT = """
import json, sys
import numpy as np
from neipalette_tf.predictors.runtime import HarmonyRuntime

out = {}
for name in sys.argv[3:]:
    rt = HarmonyRuntime(sys.argv[1] + "/" + name)
    top, bottom = sys.argv[2].split(",")
    e_top, e_bottom = rt.embed(top), rt.embed(bottom)
    out[name] = {"p": rt.predict(top, bottom), "score": rt.score(e_top, np.stack([e_bottom] * 3)).tolist(),
                 "dim": int(e_top.shape[0]), "size": rt.image_size}
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "tf2onnx")]
print(json.dumps({"results": out, "heavy": heavy}))
"""


def test_runtime_answers_alike_for_any_batch_and_pixel_type(exported, sample_pairs):
    """The LiteRT runtime resizes its inputs only when a batch's shape changes: every batch
    size in any order, and uint8 or float pixels, give each pair the same p."""
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    out, _ = exported
    tops, bottoms, _ = sample_pairs
    for name in ("model.tflite", "model_int8.tflite"):
        rt = HarmonyRuntime(out / name)
        one = np.array([rt.predict_batch(tops[i:i + 1], bottoms[i:i + 1])[0] for i in range(len(tops))])
        for sizes in ((5, 3), (1, 7), (8,)):
            edges = np.cumsum((0,) + sizes)
            got = np.concatenate([rt.predict_batch(tops[a:b], bottoms[a:b]) for a, b in zip(edges, edges[1:])])
            np.testing.assert_allclose(got, one, atol=1e-5, err_msg=f"{name} {sizes}")
        floats = rt.predict_batch(tops.astype(np.float32), bottoms.astype(np.float32))
        np.testing.assert_allclose(floats, one, atol=1e-5, err_msg=name)


def test_runtime_runs_without_tensorflow(exported, keras_model, sample_pairs):
    from neipalette_tf.core.preprocessing import load_image

    out, _ = exported
    row = sample_pairs[2].rows[0]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", RUNTIME_SCRIPT, str(out), f"{row['top']},{row['bottom']}",
                           *RUNTIME_FILES], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    reference = float(keras_p(keras_model, load_image(row["top"], SIZE)[None], load_image(row["bottom"], SIZE)[None])[0])
    for name, bound in {"model.onnx": 1e-4, "model.tflite": 1e-4, "model_fp16.tflite": 1e-2,
                        "model_int8.tflite": 0.15}.items():
        r = answer["results"][name]
        assert r["size"] == SIZE and r["dim"] == keras_model.encoder().output.shape[-1]
        assert r["p"] == pytest.approx(reference, abs=bound), name
        assert r["score"] == pytest.approx([r["p"]] * 3, abs=max(bound, 1e-5)), name
