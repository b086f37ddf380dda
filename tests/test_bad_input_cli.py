"""Bad input at the command line (train, evaluate, predict, export) and in
manifests: exit status 2, one line `error: ...` naming the file or row, no
traceback unless --debug; `--on-bad-input skip` goes on and lists what it
left out; writers leave nothing half-written at a final path."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from PIL import Image

from neipalette_tf.commands import evaluate, predict, train
from neipalette_tf.core import cli
from neipalette_tf.data import bad_input
from neipalette_tf.data.manifest import ManifestError, read_manifest


def _error(capsys, main, argv):
    """Run `main` through cli.run; return its one-line error."""
    with pytest.raises(SystemExit) as e:
        cli.run(main, [str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Photos (good and bad), manifests, and a tiny untrained model saved by the test."""
    from neipalette_tf.models import build_classifier

    d = tmp_path_factory.mktemp("bad")
    colours = [(200, 30, 40), (20, 40, 200), (30, 160, 60), (230, 200, 40), (90, 90, 90), (250, 250, 240)]
    for i, c in enumerate(colours):
        Image.new("RGB", (24, 30), c).save(d / f"g{i}.jpg")
    (d / "photos é").mkdir()
    Image.new("RGB", (24, 30), (120, 60, 30)).save(d / "photos é" / "brown top.png")
    (d / "cut.jpg").write_bytes((d / "g0.jpg").read_bytes()[:150])
    (d / "text.jpg").write_text("not a photo\n")
    (d / "empty.jpg").write_bytes(b"")
    model, _ = build_classifier("resnet18", 32, weights="none")
    model.save(d / "model.keras")
    (d / "corrupt.keras").write_bytes((d / "model.keras").read_bytes()[:5000])
    (d / "garbage.onnx").write_bytes(b"\x08\x07garbage" * 50)
    (d / "garbage.tflite").write_bytes(b"TFL3" + b"\0" * 100)
    return d


def _manifest(folder, name, rows, header="top,bottom,label,split"):
    path = folder / name
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


# --- manifests -----------------------------------------------------------------------------------


def test_manifest_rows_with_a_wrong_field_count_and_binary_files(folder):
    for rows, message in ((["g0.jpg,g1.jpg,1,train,extra"], "line 2: 5 fields, the header has 4"),
                          (["g0.jpg,g1.jpg"], "line 2: 2 fields, the header has 4")):
        with pytest.raises(ManifestError, match=message):
            read_manifest(_manifest(folder, "fields.csv", rows))
    (folder / "huge.csv").write_text("top,bottom,label\n\"" + "x" * 200_000 + "\",b.jpg,1\n")
    with pytest.raises(ManifestError, match="huge.csv: not a readable CSV file"):
        read_manifest(folder / "huge.csv")
    with pytest.raises(ManifestError, match="g0.jpg: not a UTF-8 CSV file"):
        read_manifest(folder / "g0.jpg")  # a photo passed as the manifest
    (folder / "latin1.csv").write_bytes("top,bottom,label\nt\xe9.jpg,b.jpg,1\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not a UTF-8 CSV file"):
        read_manifest(folder / "latin1.csv")


def test_bom_crlf_spaces_and_non_ascii_paths_work(folder):
    path = folder / "bom.csv"
    path.write_bytes("\ufefftop,bottom,label\r\nphotos é/brown top.png,g1.jpg,harmonious\r\n\r\n".encode("utf-8"))
    m = read_manifest(path)
    assert len(m) == 1 and m.rows[0]["top"] == str(folder / "photos é" / "brown top.png")


def test_skip_mode_lists_every_bad_row_with_its_reason(folder):
    rows = ["g0.jpg,g1.jpg,1,train", "missing.jpg,g1.jpg,1,train", "g2.jpg,g3.jpg,maybe,train",
            "g2.jpg,g2.jpg,0,train", "g0.jpg,g1.jpg,1,train", "g2.jpg,g3.jpg,0,dev", "g2.jpg,g3.jpg,0,train,x",
            "cut.jpg,g3.jpg,0,train", "g4.jpg,text.jpg,1,train", "g5.jpg,empty.jpg,0,train"]
    m = bad_input.drop_unreadable(bad_input.read(_manifest(folder, "mixed.csv", rows), "skip"), 32)
    assert [r["manifest_line"] for r in m.rows] == [2]
    reasons = {s["line"]: s["reason"] for s in m.skipped}
    assert sorted(reasons) == list(range(3, 12))
    assert reasons[3].startswith("top image not found")
    assert reasons[4].startswith("unknown label 'maybe'")
    assert reasons[5].startswith("the same image is both top and bottom")
    assert reasons[6] == "duplicate pair (same as line 2)"
    assert reasons[7].startswith("unknown split 'dev'")
    assert reasons[8] == "5 fields, the header has 4"
    assert reasons[9].startswith("top image unreadable") and "truncated" in reasons[9]
    assert reasons[10].startswith("bottom image unreadable") and "not a supported image" in reasons[10]
    assert reasons[11].startswith("bottom image unreadable") and "empty file" in reasons[11]
    out = folder / "skip-out"
    bad_input.write_skipped(out, m.skipped)
    with open(out / "skipped.csv", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [int(r["line"]) for r in written] == list(range(3, 12)) and written[0]["reason"] == reasons[3]


# --- train -------------------------------------------------------------------------------------


def test_train_bad_manifests_are_one_line_errors_naming_the_row(folder, capsys):
    fast = ["--image-size", "32", "--epochs", "1", "--weights", "none", "--out", folder / "never"]
    cases = [
        (_manifest(folder, "nolabel.csv", ["g0.jpg,g1.jpg,train"], "top,bottom,split"), "missing column(s) label"),
        (_manifest(folder, "empty.csv", [], ""), "empty file"),
        (_manifest(folder, "label.csv", ["g0.jpg,g1.jpg,1,train", "g2.jpg,g3.jpg,nope,val"]),
         "label.csv, line 3: unknown label 'nope'"),
        (_manifest(folder, "gone.csv", ["g0.jpg,lost.jpg,1,train"]), "gone.csv, line 2: bottom image not found"),
        (_manifest(folder, "same.csv", ["g0.jpg,g0.jpg,1,train"]), "line 2: the same image is both top and bottom"),
        (_manifest(folder, "dup.csv", ["g0.jpg,g1.jpg,1,train", "g0.jpg,g1.jpg,0,val"]),
         "dup.csv, line 3: duplicate pair (same as line 2)"),
        (_manifest(folder, "oneclass.csv", ["g0.jpg,g1.jpg,1,train", "g1.jpg,g2.jpg,0,train", "g2.jpg,g3.jpg,1,val",
                                            "g3.jpg,g4.jpg,0,val", "g4.jpg,g5.jpg,1,test", "g5.jpg,g0.jpg,1,test"]),
         "the test split needs both classes, it has harmonious"),
    ]
    for path, message in cases:
        err = _error(capsys, train.main, ["--data", path, *fast])
        assert message in err and path.name in err, err
    assert not (folder / "never").exists()

    # An image that cannot be decoded: named with its manifest line (after the model is built).
    broken = _manifest(folder, "broken.csv", ["g0.jpg,g1.jpg,1,train", "g1.jpg,g2.jpg,0,train", "g2.jpg,g3.jpg,1,val",
                                              "g3.jpg,g4.jpg,0,val", "g4.jpg,cut.jpg,1,test", "g5.jpg,g0.jpg,0,test"])
    err = _error(capsys, train.main, ["--data", broken, *fast[:-1], folder / "broken-run"])
    assert "broken.csv, line 6: " in err and "cut.jpg: corrupt or truncated" in err

    # --on-bad-input skip with nothing usable: a clear error, the reasons in skipped.csv.
    nothing = _manifest(folder, "nothing.csv", ["g0.jpg,missing.jpg,1,train", "g1.jpg,g2.jpg,what,val"])
    err = _error(capsys, train.main, ["--data", nothing, "--on-bad-input", "skip", *fast[:-1], folder / "nothing-run"])
    assert "no usable pairs, all 2 rows were skipped; first: line 2: bottom image not found" in err
    assert (folder / "nothing-run" / "skipped.csv").is_file()

    # --debug: the traceback instead of the one line.
    with pytest.raises(ManifestError):
        cli.run(train.main, ["--data", str(cases[2][0]), *map(str, fast), "--debug"])
    assert "manifest not found" in _error(capsys, train.main, ["--data", folder / "missing-dir" / "pairs.csv"])


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_bad_input_and_skip(folder, capsys):
    model = folder / "model.keras"
    rows = ["g0.jpg,g1.jpg,1,test", "g1.jpg,g2.jpg,0,test", "g2.jpg,cut.jpg,1,test", "g3.jpg,nowhere.jpg,0,test",
            "g4.jpg,g5.jpg,0,train"]
    data = _manifest(folder, "eval.csv", rows)
    err = _error(capsys, evaluate.main, ["--model", model, "--data", data])
    assert "eval.csv, line 5: bottom image not found" in err
    err = _error(capsys, evaluate.main, ["--model", folder / "corrupt.keras", "--data", _manifest(
        folder, "ok.csv", rows[:2])])
    assert "corrupt.keras: not a loadable NeiPalette model" in err
    err = _error(capsys, evaluate.main, ["--model", folder / "nope.keras", "--data", folder / "ok.csv"])
    assert "nope.keras: model not found" in err
    err = _error(capsys, evaluate.main, ["--model", model, "--data", _manifest(folder, "img.csv", rows[:3])])
    assert "img.csv, line 4: " in err and "cut.jpg" in err

    out = folder / "eval-skip"
    assert cli.run(evaluate.main, ["--model", str(model), "--data", str(data), "--on-bad-input", "skip",
                                   "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["skipped_pairs"] == 2 and metrics["split"] == "test"
    assert metrics["keras_version"] and len(metrics["data_sha256"]) == 64
    with open(out / "skipped.csv", encoding="utf-8") as f:
        assert [int(r["line"]) for r in csv.DictReader(f)] == [4, 5]


# --- predict and export ------------------------------------------------------------------------


def test_predict_bad_images_and_models(folder, capsys):
    model, good = folder / "model.keras", folder / "g0.jpg"
    for top, bottom, message in ((folder / "cut.jpg", good, "cut.jpg: corrupt or truncated"),
                                 (good, folder / "text.jpg", "text.jpg: not a supported image"),
                                 (good, folder / "empty.jpg", "empty.jpg: empty file (0 bytes)"),
                                 (good, folder / "absent.jpg", "absent.jpg: file not found")):
        assert message in _error(capsys, predict.main, ["--model", model, top, bottom])
    for bad, message in (("corrupt.keras", "not a loadable NeiPalette model"),
                         ("garbage.onnx", "garbage.onnx: cannot load the model"),
                         ("garbage.tflite", "garbage.tflite: cannot load the model"),
                         ("photos é", "not a SavedModel folder"), ("absent.onnx", "model not found")):
        assert message in _error(capsys, predict.main, ["--model", folder / bad, good, folder / "g1.jpg"])


def test_export_bad_input(folder, capsys):
    from neipalette_tf.commands.export import main as export_main

    out = folder / "artifacts"
    assert "nope.keras: model not found" in _error(capsys, export_main, ["--model", folder / "nope.keras", "--out", out])
    assert "not a loadable NeiPalette model" in _error(
        capsys, export_main, ["--model", folder / "corrupt.keras", "--out", out])
    assert "unknown format(s) gif" in _error(
        capsys, export_main, ["--model", folder / "model.keras", "--out", out, "--formats", "onnx,gif"])
    bad_labels = _manifest(folder, "label.csv", ["g0.jpg,g1.jpg,1,train", "g2.jpg,g3.jpg,nope,val"])  # own copy:
    # under xdist the test that also writes it may run in another worker
    err = _error(capsys, export_main, ["--model", folder / "model.keras", "--out", out, "--formats", "onnx",
                                       "--parity-data", bad_labels])
    assert "label.csv, line 3: unknown label 'nope'" in err
    assert not [p for p in out.rglob("*") if p.is_file()]  # nothing published


# --- atomic writes -----------------------------------------------------------------------------


def test_a_killed_writer_leaves_the_old_file_or_none_never_a_half_written_one(tmp_path):
    """SIGKILL while `atomic_write` streams a big file: the final path keeps the previous content."""
    final = tmp_path / "metrics.json"
    final.write_text('{"old": true}\n')
    script = ("import sys, time; from neipalette_tf.core.io_utils import atomic_write\n"
              "with atomic_write(sys.argv[1], 'w') as f:\n"
              "    for i in range(10**6):\n"
              "        f.write('x' * 1000); f.flush()\n"
              "        if i == 100: print('writing', flush=True)\n"
              "        time.sleep(0.001)\n")
    p = subprocess.Popen([sys.executable, "-c", script, str(final)], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert final.read_text() == '{"old": true}\n'
    leftovers = [n for n in os.listdir(tmp_path) if n != "metrics.json"]
    assert leftovers and all(n.startswith(".metrics.json.") and n.endswith(".tmp") for n in leftovers)
    from neipalette_tf.core.io_utils import remove_stale_temp_files

    assert remove_stale_temp_files(tmp_path) == leftovers and os.listdir(tmp_path) == ["metrics.json"]


def test_provenance_outside_a_git_checkout_is_null_not_an_error(tmp_path):
    from neipalette_tf.core.provenance import git_commit, provenance

    assert git_commit(str(tmp_path)) == (None, None)
    manifest = _manifest(tmp_path, "p.csv", ["a.jpg,b.jpg,1,train"])
    fields = provenance(manifest)
    if (ROOT / ".git").exists():
        assert len(fields["git_commit"]) == 40  # this repository
    assert fields["data_sha256"] == __import__("hashlib").sha256(manifest.read_bytes()).hexdigest()
