"""Tests of the comparison command, neipalette_tf/commands/compare.py (`python -m neipalette_tf.compare`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.commands.compare import main
from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.evaluation.metrics import classification_metrics
from neipalette_tf.evaluation.report import write_predictions

REPO = Path(__file__).resolve().parents[2]


def _status(argv):
    """The exit status of the command as `python -m` gives it (a one-line error is exit 2)."""
    try:
        return cli.run(main, argv)
    except SystemExit as e:
        return e.code


def fake_run(directory, backbone, pairing, skill, seed):
    """A run folder as write_evaluation leaves it (metrics + predictions)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    p = np.clip(skill * labels + rng.random(40) * (1 - skill), 0, 1)
    records = [
        {"top": f"t{i}.jpg", "bottom": f"b{i}.jpg", "label": int(y), "p_harmonious": float(q)}
        for i, (y, q) in enumerate(zip(labels, p))
    ]
    directory.mkdir(parents=True)
    metrics = classification_metrics(labels, p, n_bootstrap=50)
    metrics.update(backbone=backbone, pairing=pairing)
    write_json(directory / "metrics.json", metrics)
    write_predictions(directory / "predictions.csv", records)
    return str(directory)


@pytest.fixture
def runs(tmp_path):
    return [
        fake_run(tmp_path / "run_a", "mobilenet_v3_small", "stacked", 0.5, 0),
        fake_run(tmp_path / "run_b", "efficientnet_b0", "siamese", 0.2, 1),
    ]


def table_rows(markdown, heading):
    """The data rows of the table under a `## heading`, as lists of cells."""
    section = markdown.split(f"## {heading}")[1].split("##")[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_compare_two_runs(tmp_path, runs, capsys):
    out = tmp_path / "cmp"
    assert main(runs + ["--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["compare.json", "compare.md", "roc.png"]
    markdown = (out / "compare.md").read_text()
    assert capsys.readouterr().out == markdown

    header_line = markdown.split("## Overall")[1].splitlines()[2]
    header = [c.strip() for c in header_line.strip("|").split("|")]
    assert header == ["Model", "Accuracy", "Precision", "Recall", "F1-score", "ROC-AUC",
                      "ROC-AUC 95% CI", "n"]
    overall = table_rows(markdown, "Overall")
    assert [row[0] for row in overall] == ["mobilenet_v3_small-stacked", "efficientnet_b0"]
    metrics_a = json.loads((Path(runs[0]) / "metrics.json").read_text())
    assert overall[0][1] == f"{metrics_a['accuracy']:.3f}"
    assert overall[0][-1] == "40"

    per_class = table_rows(markdown, "Per class")
    assert [row[:2] for row in per_class] == [
        ["mobilenet_v3_small-stacked", "harmonious"], ["mobilenet_v3_small-stacked", "clashing"],
        ["efficientnet_b0", "harmonious"], ["efficientnet_b0", "clashing"],
    ]
    assert per_class[1][5] == str(metrics_a["per_class"]["clashing"]["support"])

    with Image.open(out / "roc.png") as img:
        assert img.format == "PNG"
        img.verify()
    saved = json.loads((out / "compare.json").read_text())
    assert [m["name"] for m in saved["models"]] == [row[0] for row in overall]


def test_names_option_and_disambiguation(tmp_path, runs, capsys):
    assert main(runs + ["--out", str(tmp_path / "o1"), "--names", "small,big"]) == 0
    assert [r[0] for r in table_rows(capsys.readouterr().out, "Overall")] == ["small", "big"]

    twin = fake_run(tmp_path / "run_c", "mobilenet_v3_small", "stacked", 0.4, 2)
    assert main([runs[0], twin, "--out", str(tmp_path / "o2")]) == 0
    assert [r[0] for r in table_rows(capsys.readouterr().out, "Overall")] == [
        "mobilenet_v3_small-stacked (run_a)", "mobilenet_v3_small-stacked (run_c)"]

    assert _status(runs + ["--out", str(tmp_path / "o3"), "--names", "only_one"]) == 2


def test_missing_metrics_is_a_one_line_error(tmp_path, runs, capsys):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert _status([runs[0], str(empty), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(empty) in err and "metrics.json" in err
    assert not (tmp_path / "cmp").exists()


def test_cli_exit_status(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "neipalette_tf.compare", str(tmp_path / "nowhere"),
         "--out", str(tmp_path / "cmp")],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere'}: no metrics.json here; "
        "pass a run or evaluation folder written by write_evaluation"
    ]
