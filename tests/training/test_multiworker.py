"""Two training workers on localhost (MultiWorkerMirroredStrategy, CPU) against one worker.

Both workers run `python -m neipalette_tf.train --strategy multiworker` as
real subprocesses with TF_CONFIG naming two free local ports, reading
TFRecord shards (`neipalette_tf.data.to_tfrecord`, image bytes decoded by
`load_image`); the chief then calibrates and draws the embedding view, so
this one run also covers training from shards. The data is
tiny (24 train pairs at 32 px) and the global batch holds the whole train
split, so the epoch is one step and the comparison isolates the
distributed step itself: same seed, same initial weights, same 24 pairs,
split 12 + 12 between the workers, gradients all-reduced, BatchNorm on
global-batch statistics (`distribute.synchronize_batch_norm`), dropout 0,
and the default label-preserving augmentation: each pair draws its own warp
before batching (`pipeline._finish`), so a pair is warped the same whichever
worker it lands on, and the strategy's shape probe reads no batch
(`distribute.install_keras_workarounds`), so the first epoch gets the same
shuffle and augmentation draws as without a strategy.

Tolerance: the loss of that step (computed before the update) must match
the single worker's to 1e-4 relative (only the order of floating-point
sums differs), and the trained weights must stay within 10 % of the
distance training moved them (Adam divides each gradient by its own
running magnitude, so a weight whose gradient is ~0 can step by ±lr on
float noise alone; that bounds the difference, it does not vanish).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow
CONFIG = """
model: {dropout: 0.0}
train: {all_pairs_loss_weight: 0.0, colour_loss_weight: 0.0, epochs: 1, batch_size: 24}
"""


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _manifest(folder, tiny_synth):
    """24 train / 6 val / 6 test pairs of the tiny synthetic set, with their colours."""
    import csv

    with open(tiny_synth / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out, counts = [], {"train": 24, "val": 6, "test": 6}
    for split, n in counts.items():
        for label in ("harmonious", "clashing"):
            picked = [r for r in rows if r["split"] == split and r["label"] == label][: n // 2]
            if len(picked) < n // 2:  # tiny_synth's val/test are small: borrow train rows
                picked += [r for r in rows if r["split"] == "train" and r["label"] == label
                           and r not in out][: n // 2 - len(picked)]
            out += [dict(r, split=split) for r in picked]
    for r in out:
        for k in ("top", "bottom"):
            r[k] = str(tiny_synth / r[k])
    path = folder / "pairs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    return path


def load_model(path):
    from neipalette_tf.models import load_model as load

    return load(path)


def _weights(path):
    model = load_model(path)
    return np.concatenate([np.ravel(v.numpy()) for v in model.trainable_weights])


def test_two_workers_match_one_worker(tiny_synth, tmp_path):
    import keras

    from neipalette_tf.data.tfrecord import write_tfrecords
    from neipalette_tf.evaluation.metrics import METRIC_KEYS
    from neipalette_tf.models import build_classifier
    from neipalette_tf.training import config, run

    shards = tmp_path / "shards"
    write_tfrecords(_manifest(tmp_path, tiny_synth), shards, shards=2)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    args = ["--config", tmp_path / "cfg.yaml", "--data", shards, "--image-size", "32", "--weights", "none"]
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    workers = [subprocess.Popen(
        [sys.executable, "-m", "neipalette_tf.train", *map(str, args), "--strategy", "multiworker",
         "--out", str(tmp_path / "multi")],
        env=dict(env, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        outputs = [w.communicate(timeout=420)[0] for w in workers]
    finally:
        for w in workers:  # never leave a worker behind
            if w.poll() is None:
                w.kill()
                w.wait()
    for i, (w, out) in enumerate(zip(workers, outputs)):
        assert w.returncode == 0, f"worker {i}:\n{out[-3000:]}"
    assert "2 replicas (multiworker)" in outputs[0] and "not the chief" in outputs[1]
    multi = tmp_path / "multi"
    assert {"model.keras", "metrics.json", "history.csv", "report.md", "reliability.png",
            "embedding_tsne.png"} <= set(os.listdir(multi))
    # Only the chief wrote: worker 1 used a temporary folder, removed at the end.
    assert not [p for p in os.listdir(multi) if ".tmp" in p]
    m = json.loads((multi / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(m) and m["n"] == 6  # the exact keys stay; calibration keys are added
    fitted = m["calibration"]["fitted"]
    assert fitted["split"] == "val" and fitted["nll_after"] <= fitted["nll_before"] + 1e-9
    assert {"temperature", "ece_before", "ece_after"} <= set(m) and m["embedding_view"]["garments"] == 12
    report = (multi / "report.md").read_text()
    assert "(reliability.png)" in report and "(embedding_tsne.png)" in report

    # The same training on one worker, in this process.
    cfg = config.resolve(str(tmp_path / "cfg.yaml"), {"data.path": str(shards), "model.image_size": 32,
                                                      "model.weights": "none"})
    run.train(cfg, str(tmp_path / "single"))
    history = {name: np.genfromtxt(tmp_path / name / "history.csv", delimiter=",", names=True)
               for name in ("multi", "single")}
    assert history["multi"]["loss"] == pytest.approx(history["single"]["loss"], rel=1e-4)
    assert history["multi"]["val_loss"] != pytest.approx(0.0)

    keras.utils.set_random_seed(0)
    initial, _ = build_classifier("resnet18", 32, weights="none", dropout=0.0, log=lambda *_: None)
    w0 = np.concatenate([np.ravel(v.numpy()) for v in initial.trainable_weights])
    w_multi, w_single = _weights(multi / "model.keras"), _weights(tmp_path / "single" / "model.keras")
    assert load_model(multi / "model.keras").temperature == pytest.approx(m["temperature"])
    moved = np.linalg.norm(w_single - w0)
    assert moved > 0
    assert np.linalg.norm(w_multi - w_single) <= 0.10 * moved
