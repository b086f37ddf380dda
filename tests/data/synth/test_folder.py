"""The data set folder (neipalette_tf.data.synth.folder): when an existing folder is reused as it is,
when it may be replaced (absent, empty, or provably this generator's), and which temporaries of
interrupted runs are cleared.

`generate` end to end (reuse, refusal of a user's folder, no temporaries left) is in
tests/data/test_synth.py; here each rule on folders written by hand, so every case is tested alone."""

import csv
import json
import os
import subprocess

import pytest

from helpers import snapshot
from neipalette_tf.colour.harmony import RULE_VERSION
from neipalette_tf.data.synth import folder

PARAMS = {"pairs": 2, "seed": 0, "image_size": 32, "split_fractions": (0.7, 0.15, 0.15)}


def _dataset(out, params=PARAMS, **ds_overrides):
    """A folder as this generator writes it: images/, pairs.csv naming them, dataset.json."""
    (out / "images").mkdir(parents=True)
    rows = []
    for i in range(params["pairs"]):
        names = [f"images/{i:06d}_{role}.jpg" for role in ("top", "bottom")]
        for name in names:
            (out / name).write_bytes(b"\xff\xd8 not really a jpeg")
        rows.append(names + ["harmonious", "train"])
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["top", "bottom", "label", "split"], *rows])
    ds = {"generator": folder.GENERATOR_NAME, "version": folder.GENERATOR_VERSION, "rule_version": RULE_VERSION,
          "parameters": json.loads(json.dumps(params)), **ds_overrides}
    (out / "dataset.json").write_text(json.dumps(ds), encoding="utf-8")
    return out


def _refused(out, *words):
    """check_replaceable(out) refuses with one line naming the folder (and `words`), touching nothing."""
    before = snapshot(out) if out.is_dir() else out.read_bytes()
    with pytest.raises(ValueError) as e:
        folder.check_replaceable(out)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{out}: ") and "refusing" in message
    for word in words:
        assert word in message, message
    assert (snapshot(out) if out.is_dir() else out.read_bytes()) == before
    return message


def _dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- reusable -------------------------------------------------------------


def test_a_complete_set_with_the_same_parameters_is_reused(tmp_path):
    out = _dataset(tmp_path / "d")
    assert folder.reusable(out, PARAMS)
    assert folder.reusable(out, {**PARAMS, "split_fractions": [0.7, 0.15, 0.15]})  # compared as JSON


@pytest.mark.parametrize("change", [
    {"seed": 1}, {"image_size": 48}, {"extra": 0.5},
])
def test_other_parameters_are_not_reused(tmp_path, change):
    out = _dataset(tmp_path / "d")
    assert not folder.reusable(out, {**PARAMS, **change})


@pytest.mark.parametrize("ds", [
    {"generator": "someone.else"}, {"version": "0.0.1"}, {"rule_version": "rule-v0"},
])
def test_a_set_of_another_generator_version_or_rule_is_not_reused(tmp_path, ds):
    assert not folder.reusable(_dataset(tmp_path / "d", **ds), PARAMS)


def test_an_incomplete_or_unreadable_set_is_not_reused(tmp_path):
    out = _dataset(tmp_path / "a")
    (out / "images/000001_bottom.jpg").unlink()
    assert not folder.reusable(out, PARAMS)  # an image missing

    out = _dataset(tmp_path / "b")
    (out / "images/000001_bottom.jpg").unlink()
    (out / "images/000001_bottom.jpg").mkdir()
    assert not folder.reusable(out, PARAMS)  # a folder where an image should be

    out = _dataset(tmp_path / "c")
    assert not folder.reusable(out, {**PARAMS, "pairs": 3})  # fewer rows than pairs asked for

    out = _dataset(tmp_path / "d")
    (out / "dataset.json").write_text("{not json", encoding="utf-8")
    assert not folder.reusable(out, PARAMS)

    out = _dataset(tmp_path / "e")
    (out / "dataset.json").write_text("[1, 2]", encoding="utf-8")  # JSON, but not an object
    assert not folder.reusable(out, PARAMS)

    out = _dataset(tmp_path / "f")
    (out / "pairs.csv").write_bytes(b"top,bottom\n\xff\xfe,x\n")  # not UTF-8
    assert not folder.reusable(out, PARAMS)

    out = _dataset(tmp_path / "g")
    (out / "pairs.csv").write_text("top,bottom\nimages/000000_top.jpg,\nimages/000001_top.jpg,x\n")
    assert not folder.reusable(out, PARAMS)  # an empty cell

    assert not folder.reusable(tmp_path / "absent", PARAMS)


# --- check_replaceable ------------------------------------------------------


def test_absent_empty_and_own_folders_may_be_replaced(tmp_path):
    assert folder.check_replaceable(tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    assert folder.check_replaceable(tmp_path / "empty") is None
    assert folder.check_replaceable(_dataset(tmp_path / "ours")) is None
    # an older version's set is still provably this generator's
    assert folder.check_replaceable(_dataset(tmp_path / "old", version="0.9.0", parameters={})) is None


def test_a_file_or_a_dangling_link_is_not_replaced(tmp_path):
    (tmp_path / "file").write_text("mine")
    assert "is not a folder" in _refused(tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="is not a folder"):
        folder.check_replaceable(tmp_path / "link")
    assert os.path.islink(tmp_path / "link")


def test_a_users_own_pairs_and_images_are_refused(tmp_path):
    out = _dataset(tmp_path / "user")
    (out / "dataset.json").unlink()  # pairs.csv + images/ of the user's own
    _refused(out, "no dataset.json of this generator", "--out")
    (out / "dataset.json").write_text(json.dumps({"generator": "my.tool", "version": "1"}))
    _refused(out, "no dataset.json of this generator")
    (out / "dataset.json").write_text(json.dumps({"generator": folder.GENERATOR_NAME}))  # no version
    _refused(out, "no dataset.json of this generator")


def test_own_set_with_anything_else_in_it_is_refused(tmp_path):
    out = _dataset(tmp_path / "notes")
    (out / "notes.txt").write_text("mine")
    _refused(out, "notes.txt")

    out = _dataset(tmp_path / "extra-image")
    (out / "images" / "holiday.jpg").write_bytes(b"mine")
    _refused(out, "holiday.jpg", "does not name")

    out = _dataset(tmp_path / "images-file")
    for p in (out / "images").iterdir():
        p.unlink()
    (out / "images").rmdir()
    (out / "images").write_text("mine")
    _refused(out, "images is not a folder")


# --- check_writable_parent ----------------------------------------------------


def test_the_parent_is_created_before_rendering(tmp_path):
    out = tmp_path / "a" / "b" / "data"
    folder.check_writable_parent(out)
    assert (tmp_path / "a" / "b").is_dir() and not out.exists()


@pytest.mark.parametrize("where", ["file/data", "file/below/data"])
def test_a_parent_that_cannot_be_a_folder_is_one_line_naming_it(tmp_path, where):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError) as e:
        folder.check_writable_parent(tmp_path / where)
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / "file") in message
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_parent_is_refused(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="not writable"):
            folder.check_writable_parent(parent / "data")
    finally:
        parent.chmod(0o755)


# --- remove_stale -----------------------------------------------------------


def test_only_temporaries_of_finished_runs_of_this_name_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = [f".data.tmp-{dead}", f".data.old-{dead}"]
    kept = [f".data.tmp-{alive}", f".data.old-{alive}",  # a run still going
            ".data.tmp-abc", f".data.new-{dead}",        # not a temporary's name
            f".other.tmp-{dead}", f".data.x.tmp-{dead}",  # another data set's
            "data"]                                      # the data set itself
    for name in stale + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    (tmp_path / f".data.tmp-{dead}1").write_text("a file, not a folder")
    folder.remove_stale(tmp_path, "data")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == set(kept) | {f".data.tmp-{dead}1"}
