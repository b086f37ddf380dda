"""`neipalette_tf.evaluation.evaluate`: everything `evaluate` checks before any model work, which split
it picks, and how its folder is published (staged, replacing only an earlier evaluation).

The model work (`_evaluate`: TensorFlow, the model, the metrics) is
replaced by a stand-in that writes what an evaluation writes, so these
tests run without TensorFlow. Real evaluations: tests/training/test_train_e2e.py
(Keras), tests/training/test_classic.py (classic models), tests/evaluation/test_human.py.
"""

import json
import os

import pytest

from neipalette_tf.core import cli
from neipalette_tf.core.errors import NeiPaletteError
from neipalette_tf.evaluation import evaluate as ev


def manifest(folder, rows, header="top,bottom,label,split"):
    """A pairs.csv whose images exist (their bytes are never decoded here)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = [header]
    for i, fields in enumerate(rows):
        for kind in ("top", "bottom"):
            (folder / "img" / f"{i}_{kind}.png").write_bytes(b"x")
        lines.append(",".join([f"img/{i}_top.png", f"img/{i}_bottom.png", *fields]))
    path = folder / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def setup(tmp_path):
    """(model path, manifest with 2 test / 1 val / 1 train pairs)."""
    run = tmp_path / "run"
    run.mkdir()
    model = run / "model.keras"
    model.write_bytes(b"a model")
    data = manifest(tmp_path / "data", [("harmonious", "test"), ("clashing", "test"), ("1", "val"),
                                        ("0", "train")])
    return model, data


@pytest.fixture
def work(monkeypatch):
    """The model work replaced: records its arguments, writes metrics.json and report.md, returns the metrics."""
    calls = []

    def fake(model_path, manifest, split, subset, out, batch_size, on_bad_input, final):
        calls.append({"split": split, "pairs": len(subset), "skipped": subset.skipped, "out": out, "final": final,
                      "batch_size": batch_size})
        metrics = {"roc_auc": 0.5, "split": split, "n": len(subset)}
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f)
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write("# report\n")
        return metrics

    monkeypatch.setattr(ev, "_evaluate", fake)
    return calls


def test_default_out_is_beside_the_model_named_after_the_data(tmp_path):
    model = tmp_path / "runs" / "a" / "model.keras"
    assert ev.default_out(model, "/data/real-pairs/pairs.csv") == str(tmp_path / "runs" / "a" / "eval-real-pairs")
    assert ev.default_out(model, "/data/real-pairs") == str(tmp_path / "runs" / "a" / "eval-real-pairs")
    assert ev.default_out("model.keras", "d/pairs.csv") == os.path.join(os.getcwd(), "eval-d")


def test_an_evaluation_is_written_staged_and_returns_its_metrics(setup, work, tmp_path, capsys):
    model, data = setup
    out = tmp_path / "eval"
    metrics = ev.evaluate(str(model), str(data), out=str(out), batch_size=7)
    assert metrics == {"roc_auc": 0.5, "split": "test", "n": 2}  # a split column: the test split by default
    (call,) = work
    assert call["pairs"] == 2 and call["batch_size"] == 7 and call["final"] == str(out)
    assert call["out"] != str(out) and os.path.basename(call["out"]).startswith(".")  # written in a hidden sibling
    assert sorted(os.listdir(out)) == ["metrics.json", "report.md"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # the staging folder is gone
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"output: {out}"


def test_without_out_the_evaluation_goes_beside_the_model(setup, work):
    model, data = setup
    ev.evaluate(str(model), str(data), split="val")
    assert work[0]["split"] == "val" and work[0]["pairs"] == 1
    assert json.loads((model.parent / "eval-data" / "metrics.json").read_text())["split"] == "val"


def test_a_manifest_without_splits_is_evaluated_whole(tmp_path, setup, work):
    model, _ = setup
    data = manifest(tmp_path / "nosplit", [("1",), ("0",), ("1",)], header="top,bottom,label")
    ev.evaluate(str(model), str(data), out=str(tmp_path / "e"))
    assert work[0]["split"] == "all" and work[0]["pairs"] == 3
    with pytest.raises(cli.UserError, match="has no split column; use --split all"):
        ev.evaluate(str(model), str(data), split="test", out=str(tmp_path / "e2"))


def test_skipped_rows_of_other_splits_are_not_this_evaluations(setup, tmp_path, work):
    model, _ = setup
    data = manifest(tmp_path / "bad", [("1", "test"), ("maybe", "test"), ("0", "test"), ("what", "train")])
    ev.evaluate(str(model), str(data), out=str(tmp_path / "e"), on_bad_input="skip")
    (call,) = work
    assert call["pairs"] == 2 and [s["line"] for s in call["skipped"]] == [3]  # the train row's is left out
    with pytest.raises(NeiPaletteError, match="line 3: unknown label 'maybe'"):
        ev.evaluate(str(model), str(data), out=str(tmp_path / "e3"))  # on_bad_input "error": the first bad row


@pytest.mark.parametrize("case,message", [
    ("batch size", "--batch-size must be at least 1, got 0"),
    ("out is a file", "--out exists and is a file"),
    ("empty split", "no pairs in split 'val'"),
    ("missing model", "model not found"),
    ("missing data", "file not found"),
    ("foreign out", "holds files this evaluation did not write"),
])
def test_bad_arguments_are_refused_before_any_work_and_touch_nothing(setup, tmp_path, monkeypatch, case, message):
    monkeypatch.setattr(ev, "_evaluate", lambda *a: pytest.fail("the model work started"))
    model, data = setup
    out = tmp_path / "out"
    kwargs = {"model_path": str(model), "data": str(data), "out": str(out)}
    if case == "batch size":
        kwargs["batch_size"] = 0
    elif case == "out is a file":
        out.write_text("mine")
    elif case == "empty split":
        kwargs["data"] = str(manifest(tmp_path / "d2", [("1", "test"), ("0", "train")]))
        kwargs["split"] = "val"
    elif case == "missing model":
        kwargs["model_path"] = str(tmp_path / "none.keras")
    elif case == "missing data":
        kwargs["data"] = str(tmp_path / "none.csv")
    elif case == "foreign out":
        out.mkdir()
        (out / "metrics.json").write_text("{}")
        (out / "holiday.jpg").write_text("mine")
    before = sorted(os.listdir(tmp_path))
    snapshot = {p: open(p, "rb").read() for p in (out, out / "metrics.json", out / "holiday.jpg") if p.is_file()}
    with pytest.raises(NeiPaletteError) as e:  # what `core.cli.run` prints as one line
        ev.evaluate(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == before  # no folder made, no staging left
    assert {p: open(p, "rb").read() for p in snapshot} == snapshot


def test_an_earlier_evaluation_is_replaced_whole_and_kept_when_the_new_one_fails(setup, tmp_path, work, monkeypatch):
    model, data = setup
    out = tmp_path / "eval"
    ev.evaluate(str(model), str(data), out=str(out))
    (out / "samples.png").write_bytes(b"an earlier figure")  # a file an evaluation writes, from an earlier one
    ev.evaluate(str(model), str(data), out=str(out), split="val")
    assert sorted(os.listdir(out)) == ["metrics.json", "report.md"]  # replaced whole: no stale figure
    assert json.loads((out / "metrics.json").read_text())["split"] == "val"

    def failing(model_path, manifest, split, subset, out_, *rest):
        with open(os.path.join(out_, "metrics.json"), "w") as f:
            f.write('{"half": true}')
        raise RuntimeError("the model failed")

    monkeypatch.setattr(ev, "_evaluate", failing)
    with pytest.raises(RuntimeError):
        ev.evaluate(str(model), str(data), out=str(out))
    assert json.loads((out / "metrics.json").read_text())["split"] == "val"  # the complete one stays
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_a_run_stopped_by_bad_rows_is_published_with_its_skipped_list(setup, tmp_path, monkeypatch):
    model, data = setup

    def all_rows_bad(model_path, manifest, split, subset, out, *rest):
        with open(os.path.join(out, "skipped.csv"), "w") as f:
            f.write("line,reason\n2,unreadable\n")
        raise cli.UserError("no usable pairs")

    monkeypatch.setattr(ev, "_evaluate", all_rows_bad)
    out = tmp_path / "eval"
    with pytest.raises(cli.UserError, match="no usable pairs"):
        ev.evaluate(str(model), str(data), out=str(out), on_bad_input="skip")
    assert sorted(os.listdir(out)) == ["FAILED.txt", "skipped.csv"]  # the user can read why
    assert ev.eval_owned(out) is None  # and a later evaluation may replace it


def test_eval_owned_accepts_only_an_earlier_evaluations_files(tmp_path):
    folder = tmp_path / "e"
    folder.mkdir()
    (folder / "report.md").write_text("x")
    assert "no metrics.json or FAILED.txt" in ev.eval_owned(folder)
    (folder / "metrics.json").write_text("[1, 2]")  # JSON, but not an object: not ours
    assert ev.eval_owned(folder) is not None
    (folder / "metrics.json").write_text('{"roc_auc": 0.5}')
    for name in sorted(ev.EVAL_NAMES):
        (folder / name).write_text("x") if name != "metrics.json" else None
    (folder / ".report.md.tmp123").write_text("an interrupted atomic write")
    assert ev.eval_owned(folder) is None
    (folder / "model.keras").write_text("not an evaluation's")
    assert ev.eval_owned(folder) == "model.keras"


def test_the_weights_a_run_started_from_are_read_from_its_metrics(tmp_path):
    path = tmp_path / "metrics.json"
    assert ev._weights_of(str(path)) == "unknown"
    path.write_text('{"weights": "imagenet"}')
    assert ev._weights_of(str(path)) == "imagenet"
    path.write_text('{"roc_auc": 0.5}')
    assert ev._weights_of(str(path)) == "unknown"
    path.write_text("{broken")
    assert ev._weights_of(str(path)) == "unknown"
