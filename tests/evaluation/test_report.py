"""Tests of the evaluation output: report, plots, colour estimate, atomic I/O."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.core.io_utils import atomic_write, write_json
from neipalette_tf.evaluation.plots import pick_samples, plot_curves
from neipalette_tf.evaluation.report import (
    format_metrics_table,
    read_predictions,
    write_evaluation,
)

META = {"weights": "runs/r1/best.keras", "backbone": "mobilenet_v3_small",
        "pairing": "stacked", "image_size": 96, "split": "test"}
HISTORY = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.6],
           "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.5, 0.6, 0.7]}


def garment(path, size, colour):
    """A coloured block on a light background, like a product photo."""
    img = np.full((size[1], size[0], 3), 240, dtype=np.uint8)
    img[size[1] // 5 : -size[1] // 5, size[0] // 5 : -size[0] // 5] = colour
    Image.fromarray(img).save(path)
    return str(path)


@pytest.fixture
def records(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    out = []
    for i in range(12):
        label = i % 2
        record = {
            "top": garment(images / f"top{i}.png", (60, 80), (200, 40, 40)),
            "bottom": garment(images / f"bottom{i}.jpg", (50, 90), (30, 40, 120)),
            "label": label,
            "p_harmonious": float(np.clip(0.3 * label + rng.random() * 0.7, 0, 1)),
        }
        if i < 6:  # half the records carry their OKLCH main colours
            record.update(top_L=0.55, top_C=0.18, top_h=25.0,
                          bottom_L=0.35, bottom_C=0.12, bottom_h=265.0)
        out.append(record)
    return out


def assert_png(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width > 200 and img.height > 200
        img.verify()


def test_write_evaluation_writes_every_file(tmp_path, records):
    out = tmp_path / "eval"
    metrics = write_evaluation(out, records, META, history=HISTORY)
    assert sorted(os.listdir(out)) == [  # and no temporary files left behind
        "confusion.png", "curves.png", "metrics.json", "predictions.csv",
        "report.md", "roc.png", "samples.png",
    ]
    for name in ("confusion.png", "curves.png", "roc.png", "samples.png"):
        assert_png(out / name)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert {k: saved[k] for k in META} == META
    assert saved["n"] == 12 and saved["per_class"]["harmonious"]["support"] == 6
    report = (out / "report.md").read_text()
    for text in ("mobilenet_v3_small", "runs/r1/best.keras", "](roc.png)",
                 "](curves.png)", "| harmonious", "true clashing", "95% CI"):
        assert text in report


def test_without_history_no_curves(tmp_path, records):
    out = tmp_path / "eval"
    write_evaluation(out, records, META)
    assert not (out / "curves.png").exists()
    assert "curves.png" not in (out / "report.md").read_text()


def test_predictions_round_trip(tmp_path, records):
    write_evaluation(tmp_path, records, META, threshold=0.6)
    header = (tmp_path / "predictions.csv").read_text().splitlines()[0]
    assert header == ("top,bottom,label,p_harmonious,predicted,"
                      "top_L,top_C,top_h,bottom_L,bottom_C,bottom_h")
    assert read_predictions(tmp_path) == records


def test_meta_may_not_overwrite_metrics(tmp_path, records):
    with pytest.raises(ValueError, match="accuracy"):
        write_evaluation(tmp_path, records, {"accuracy": 1.0})


def test_format_metrics_table():
    metrics = {"accuracy": 0.75, "accuracy_ci95": [0.5, 0.875], "precision": 2 / 3,
               "recall": 1.0, "f1": 0.8, "roc_auc": None, "roc_auc_ci95": None,
               "n": 4, "threshold": 0.5}
    table = format_metrics_table(metrics)
    assert "| Accuracy  | 0.750 | [0.500, 0.875] |" in table
    assert "| Precision | 0.667 |" in table
    assert "| ROC-AUC   | n/a   | n/a" in table
    assert "n = 4 pairs" in table


def test_pick_samples_balanced_and_deterministic():
    records = [{"label": i % 2, "p_harmonious": (i % 10) / 10} for i in range(40)]
    picked = pick_samples(records, 8)
    assert picked == pick_samples(records, 8)
    assert len(set(picked)) == 8
    wrong = [(records[i]["p_harmonious"] >= 0.5) != bool(records[i]["label"]) for i in picked]
    assert sum(wrong) == 4
    assert len(pick_samples(records[:3], 16)) == 3


def test_plot_curves_tolerates_missing_keys(tmp_path):
    plot_curves({"loss": [1.0, 0.5]}, tmp_path / "a.png")
    plot_curves({}, tmp_path / "b.png")
    assert_png(tmp_path / "a.png")
    assert_png(tmp_path / "b.png")


def test_estimate_main_colour_ignores_background():
    img = np.full((48, 48, 3), (250, 250, 245), dtype=np.uint8)
    img[10:40, 12:36] = (40, 120, 60)
    img[20:24, 20:24] = (250, 250, 245)  # a background-coloured hole
    assert estimate_main_colour(img).tolist() == [40, 120, 60]
    flat = np.full((8, 8, 3), 128, dtype=np.uint8)  # nothing stands out
    assert estimate_main_colour(flat).tolist() == [128, 128, 128]


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"auc": float("nan"), "values": np.array([1.5, 2.0])})
    assert json.loads(target.read_text()) == {"auc": None, "values": [1.5, 2.0]}
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert json.loads(target.read_text())["values"] == [1.5, 2.0]
    assert os.listdir(tmp_path) == ["m.json"]
