"""Reproducibility and interrupted training, with real processes.

One tiny pretrained-path training (a backbone weights file -> one warm-up
epoch, then two fine-tuning epochs; 32 synthetic pairs plus 3 bad rows,
`--on-bad-input skip`, `--deterministic`) is run:

A. uninterrupted;
C. the same command, killed with SIGKILL during epoch 3 (after the backup
   of epoch 2), then the same command with `--resume`: it continues with
   epoch 3 and must end with A's files (metrics.json, history.csv,
   predictions.csv, report.md), byte for byte (tolerance: none).

C's first process trains epochs 1 and 2 on its own and its second one epoch
3, so C equal to A is also the same command run twice giving the same bytes
(a separate uninterrupted run B, compared with A, was dropped as redundant
to keep the suite short). A and C run at the same time, each in its own
working folder with the same relative `--out run`, so even the path fields
of metrics.json are the same string.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from neipalette_tf.commands import train
from neipalette_tf.core import cli
from neipalette_tf.training.resume import read_state

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
    args = ["--data", str(data), "--out", "run", "--image-size", "32", "--epochs", "3", "--batch-size", "4",
            "--weights", str(weights), "--seed", "1", "--deterministic", "--on-bad-input", "skip"]
    return {"root": root, "args": args}


def _train(cwd, args, **kw):
    cwd.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "neipalette_tf.train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _finish(process):
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def runs(setup):
    """A uninterrupted and C killed in epoch 3, at the same time (2 cores: tracing is single-threaded).

    Each runs in its own working folder with `--out run`, so the path fields
    of metrics.json are the same string in all of them.
    """
    root, args = setup["root"], setup["args"]
    a = _train(root / "A", args)
    c = _train(root / "C", args, start_new_session=True)
    staged = root / "C" / f".run.staging-{c.pid}"  # a run is written here and swapped in when complete
    backup = staged / "backup"
    deadline = time.time() + 600
    while (read_state(backup) or {}).get("epoch", 0) < 2:  # epochs 1 (warm-up) and 2 are backed up
        assert c.poll() is None, c.communicate()[0][-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # into epoch 3: its 6 steps, validation and backup take several seconds
    os.kill(c.pid, signal.SIGKILL)
    c.communicate()
    killed = {"returncode": c.returncode, "state": read_state(backup), "files": sorted(os.listdir(staged)),
              "staged": staged, "target_exists": (root / "C" / "run").exists()}
    _finish(a)
    return {name: root / name / "run" for name in "AC"} | {"killed": killed}


def test_metrics_record_what_was_made_and_the_skipped_rows(runs):
    a = runs["A"]
    metrics = json.loads((a / "metrics.json").read_text())
    # metrics.json: what was made, with what, from which data -- and no timings (those are in timing.json).
    assert metrics["deterministic"] is True and metrics["seed"] == 1
    assert {"tensorflow_version", "keras_version", "keras_hub_version", "git_commit", "data_sha256"} <= set(metrics)
    assert metrics["keras_version"] and metrics["tensorflow_version"] and len(metrics["data_sha256"]) == 64
    timing_keys = {"train_seconds", "resumed_at_epoch", "epoch_seconds", "cpu"}
    assert not timing_keys & set(metrics)  # what varies between runs stays out of metrics.json
    timing = json.loads((a / "timing.json").read_text())
    assert set(timing) == timing_keys and timing["cpu"].startswith("CPU: ")
    # --on-bad-input skip: training went on without the 3 bad rows, each listed with its reason.
    assert metrics["skipped_pairs"] == 3 and metrics["on_bad_input"] == "skip"
    with open(a / "skipped.csv", encoding="utf-8") as f:
        skipped = list(csv.DictReader(f))
    assert [int(r["line"]) for r in skipped] == [34, 35, 36]
    assert "top image not found" in skipped[0]["reason"] and "top image unreadable" in skipped[1]["reason"]
    assert "unknown label 'perhaps'" in skipped[2]["reason"]
    assert not (a / "backup").exists()  # removed once every output is written


def test_kill_during_an_epoch_then_resume_reaches_the_uninterrupted_result(setup, runs, capsys):
    killed, run = runs["killed"], runs["C"]
    assert killed["returncode"] == -signal.SIGKILL
    state = killed["state"]
    assert state["epoch"] == 2 and state["phase"] == 1 and not state["phase_done"]  # killed inside epoch 3
    for name in ("model.keras", "metrics.json", "predictions.csv", "report.md", "history.csv", "timing.json"):
        assert name not in killed["files"], name  # nothing final before the run finished
    assert not killed["target_exists"]  # the target appears only when the run is complete
    staged = killed["staged"]
    assert (staged / "backup" / state["weights"]).is_file() and (staged / "backup" / state["early_stopping"]["weights"]).is_file()

    # Without --resume the interrupted run is not overwritten; with another config it is not resumed.
    args = [a if a != "run" else str(run) for a in setup["args"]]
    for extra, message in (([], "holds an interrupted run (backed up after epoch 2); add --resume"),
                           (["--resume", "--learning-rate", "0.5"], "config differs")):
        with pytest.raises(SystemExit) as e:
            cli.run(train.main, [*args, *extra])
        assert e.value.code == 2 and message in capsys.readouterr().err

    output = _finish(_train(setup["root"] / "C", [*setup["args"], "--resume"]))
    assert "continuing" in output and "from epoch 3" in output
    assert not staged.exists()  # adopted, finished and swapped in
    timing = json.loads((run / "timing.json").read_text())
    assert timing["resumed_at_epoch"] == 3 and list(timing["epoch_seconds"]) == ["3"]  # only epoch 3 ran again
    for name in COMPARED:
        assert (run / name).read_bytes() == (runs["A"] / name).read_bytes(), name
    assert not (run / "backup").exists()
