"""Every path on TensorFlow's portable CPU kernels, whichever CPU runs the suite.

TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512
VNNI / BF16 / AMX; everywhere else Eigen's run, and the two sets do not
support the same ops. `conftest.py` runs the whole suite with
`TF_ENABLE_ONEDNN_OPTS=0` (the kernels of most users' CPUs) unless the
environment says otherwise; the tiny end-to-end run here takes the other
set in a subprocess, so both are covered on any host.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT


def _run(code, onednn, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)


GRADIENT = """
import numpy as np, tensorflow as tf
from neipalette_tf.models.colour_pooling import ColourAttentionPooling
layer = ColourAttentionPooling(channels=8, context=True)
images = tf.random.uniform((2, 16, 16, 3), 0, 255, seed=1)
with tf.GradientTape() as tape:
    tape.watch(images)
    out = layer(images, tf.ones((2, 4)))
grads = tape.gradient(out, [images, *layer.trainable_weights])
print(all(g is not None and bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads))
"""


@pytest.mark.parametrize("onednn", ["0", pytest.param("1", marks=pytest.mark.slow)])  # "0": the crash of issue 16
def test_dilated_key_convolutions_train_on_both_kernel_sets(onednn):
    done = _run(GRADIENT, onednn)
    assert done.returncode == 0 and done.stdout.strip().endswith("True"), done.stderr[-2000:]


def test_dilated_gradients_equal_the_space_to_batch_form():
    import tensorflow as tf

    from neipalette_tf.models.colour_pooling import dilated_conv2d

    rng = np.random.default_rng(0)
    for k, d in ((3, 2), (3, 4), (5, 3)):
        x = tf.constant(rng.normal(size=(2, 11, 9, 4)), tf.float32)
        w = tf.constant(rng.normal(size=(k, k, 4, 5)), tf.float32)
        dy = tf.constant(rng.normal(size=(2, 11, 9, 5)), tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, w])
            ours = dilated_conv2d(x, w, (d, d))
            reference = tf.nn.convolution(x, w, padding="SAME", dilations=d)  # SpaceToBatchND form
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-4)
        for a, b in zip(tape.gradient(ours, [x, w], dy), tape.gradient(reference, [x, w], dy)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-3)


def test_the_suite_runs_on_the_portable_kernels_unless_told_otherwise():
    from neipalette_tf.core.cpu_info import cpu_info

    if "TF_ENABLE_ONEDNN_OPTS" in os.environ and os.environ["TF_ENABLE_ONEDNN_OPTS"] != "0":
        pytest.skip("TF_ENABLE_ONEDNN_OPTS was set for this run")
    assert cpu_info()["onednn"] is False


@pytest.mark.slow
# its export peaks at several GB: under pytest-xdist it runs in the worker of the session's export, not beside it
@pytest.mark.xdist_group("tiny_model")
def test_train_evaluate_export_predict_on_the_other_kernel_set(tmp_path):
    other = "1" if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0") == "0" else "0"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_ENABLE_ONEDNN_OPTS=other, TF_CPP_MIN_LOG_LEVEL="2")
    report = tmp_path / "portability.json"
    done = subprocess.run([sys.executable, "-m", "neipalette_tf.portability", "--out", str(tmp_path / "work"),
                           "--only", "train,evaluate,export,predict (keras),predict (saved_model)",
                           "--json", str(report),
                           # The paths that run TensorFlow's kernels, the set under test here: LiteRT and
                           # ONNX Runtime run their own (and `recommend` reads an export's model.onnx), so
                           # those formats and paths are left to the rest of the suite. int8 / float16
                           # conversion also peaks at several GB: beside the suite's own process it was once
                           # OOM-killed on a 24 GiB machine.
                           "--formats", "savedmodel"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["cpu"]["onednn"] is (other == "1")
    assert {"train", "evaluate", "export", "predict (keras)", "predict (saved_model)"} == set(result["paths"])
    assert all(r["ok"] for r in result["paths"].values())
