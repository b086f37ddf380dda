"""Reproducibility and interrupted training, with real processes.

One tiny pretrained-path training (a backbone weights file -> one warm-up
epoch, then two fine-tuning epochs; 32 synthetic pairs plus 3 bad rows,
`--on-bad-input skip`, `--deterministic`) is run:

A. uninterrupted;
B. again, the same command: metrics.json, history.csv and predictions.csv
   must be byte-identical to A's;
C. again, killed with SIGKILL during epoch 3 (after the backup of epoch 2),
   then the same command with `--resume`: it continues with epoch 3 and must
   end with A's metrics.json, byte for byte.

Every run writes to the same --out path (the finished one is moved aside),
so that even the path fields of metrics.json are comparable.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from neipalette_tf import cli, train
from neipalette_tf.resume import read_state

pytestmark = pytest.mark.slow
COMPARED = ("metrics.json", "history.csv", "predictions.csv", "report.md")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from neipalette_tf.data import synth
    from neipalette_tf.models import build_backbone

    root = tmp_path_factory.mktemp("repro")
    data = root / "data"
    synth.generate(data, pairs=32, seed=5, image_size=40, workers=1, progress=False)
    (data / "images" / "broken.jpg").write_bytes((data / "images" / "000000_top.jpg").read_bytes()[:200])
    with open(data / "pairs.csv", encoding="utf-8") as f:
        header = next(csv.reader(f))
    extra = [dict(zip(header, [""] * len(header)), **row) for row in (
        {"top": "images/missing.jpg", "bottom": "images/000001_bottom.jpg", "label": "harmonious", "split": "train"},
        {"top": "images/broken.jpg", "bottom": "images/000002_bottom.jpg", "label": "clashing", "split": "train"},
        {"top": "images/000003_top.jpg", "bottom": "images/000004_bottom.jpg", "label": "perhaps", "split": "train"},
    )]
    with open(data / "pairs.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([[r[h] for h in header] for r in extra])
    backbone, _ = build_backbone("resnet18", "none")
    weights = root / "r18.weights.h5"
    backbone.save_weights(weights)
    args = ["--data", str(data), "--out", str(root / "out"), "--image-size", "32", "--epochs", "3",
            "--batch-size", "4", "--weights", str(weights), "--seed", "1", "--deterministic",
            "--on-bad-input", "skip"]
    return {"root": root, "out": root / "out", "args": args}


def _train(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "neipalette_tf.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _finish(process):
    output, _ = process.communicate(timeout=400)
    assert process.returncode == 0, output[-3000:]
    return output


def _run_to(setup, name):
    output = _finish(_train(setup["args"]))
    shutil.move(setup["out"], setup["root"] / name)
    return output


@pytest.fixture(scope="module")
def reference(setup):
    _run_to(setup, "A")
    return setup["root"] / "A"


def test_the_same_command_twice_gives_identical_metrics(setup, reference):
    a = reference
    metrics = json.loads((a / "metrics.json").read_text())
    # metrics.json: what was made, with what, from which data -- and no timings (those are in timing.json).
    assert metrics["deterministic"] is True and metrics["seed"] == 1
    assert {"tensorflow_version", "keras_version", "keras_hub_version", "git_commit", "data_sha256"} <= set(metrics)
    assert metrics["keras_version"] and metrics["tensorflow_version"] and len(metrics["data_sha256"]) == 64
    assert not {"train_seconds", "resumed_at_epoch", "epoch_seconds"} & set(metrics)
    assert set(json.loads((a / "timing.json").read_text())) == {"train_seconds", "resumed_at_epoch", "epoch_seconds"}
    # --on-bad-input skip: training went on without the 3 bad rows, each listed with its reason.
    assert metrics["skipped_pairs"] == 3 and metrics["on_bad_input"] == "skip"
    skipped = list(csv.DictReader(open(a / "skipped.csv", encoding="utf-8")))
    assert [int(r["line"]) for r in skipped] == [34, 35, 36]
    assert "top image not found" in skipped[0]["reason"] and "top image unreadable" in skipped[1]["reason"]
    assert "unknown label 'perhaps'" in skipped[2]["reason"]
    assert not (a / "backup").exists()  # removed once every output is written

    _run_to(setup, "B")
    for name in COMPARED:
        assert (a / name).read_bytes() == (setup["root"] / "B" / name).read_bytes(), name


def test_kill_during_an_epoch_then_resume_reaches_the_uninterrupted_result(setup, reference):
    out, backup = setup["out"], setup["out"] / "backup"
    epoch_seconds = json.loads((reference / "timing.json").read_text())["epoch_seconds"]
    process = _train(setup["args"], start_new_session=True)
    deadline = time.time() + 400
    while (read_state(backup) or {}).get("epoch", 0) < 2:  # epochs 1 (warm-up) and 2 are backed up
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.3 * epoch_seconds["3"])
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    state = read_state(backup)
    assert state["epoch"] == 2 and state["phase"] == 1 and not state["phase_done"]  # killed inside epoch 3
    for name in ("model.keras", "metrics.json", "predictions.csv", "report.md", "history.csv"):
        assert not (out / name).exists(), name  # nothing final before the run finished
    assert (backup / state["weights"]).is_file() and (backup / state["early_stopping"]["weights"]).is_file()

    # Without --resume the interrupted run is not overwritten; with another config it is not resumed.
    with pytest.raises(SystemExit) as e:
        cli.run(train.main, setup["args"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.run(train.main, [*setup["args"], "--resume", "--learning-rate", "0.5"])
    assert e.value.code == 2

    output = _finish(_train([*setup["args"], "--resume"]))
    assert "continuing" in output and "from epoch 3" in output
    assert json.loads((out / "timing.json").read_text())["resumed_at_epoch"] == 3
    assert len(json.loads((out / "timing.json").read_text())["epoch_seconds"]) == 1  # only epoch 3 ran again
    for name in COMPARED:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not backup.exists()
