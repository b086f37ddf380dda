"""Issue 17: nothing a user does loses their data or ends in a traceback.

Every test builds its own hostile input. The classes: data loss (synth),
interrupted runs (staging), output paths, config values, wardrobes, model
files, memory, silent wrong decodes, calibration on tiny data.
"""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from neipalette_tf import cli, staging
from neipalette_tf.data import synth


def _cli(module, *args, cwd=ROOT, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def _one_line_error(done, status=2):
    err = done.stderr.strip().splitlines()
    err = [line for line in err if line.startswith("error:") or "error: " in line]
    assert done.returncode == status, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(err) == 1, done.stderr[-2000:]
    return err[0]


def _snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


# --------------------------------------------------------------------------
# 1. Data loss: synth only replaces what it provably wrote
# --------------------------------------------------------------------------


def _user_photos(folder):
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (20, 30), (200, 10, 10)).save(folder / "images" / "my_shirt.jpg")
    (folder / "pairs.csv").write_text("top,bottom,label\nimages/my_shirt.jpg,images/my_shirt.jpg,harmonious\n")
    return _snapshot(folder)


def test_synth_refuses_a_users_pairs_csv_and_images(tmp_path):
    before = _user_photos(tmp_path / "mine")
    done = _cli("neipalette_tf.data.synth", "--out", tmp_path / "mine", "--pairs", 20, "--image-size", 32,
                "--workers", 1, "--no-progress")
    line = _one_line_error(done)
    assert "refusing" in line and str(tmp_path / "mine") in line
    assert _snapshot(tmp_path / "mine") == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_synth_refuses_its_own_data_set_with_a_users_photo_added(tmp_path):
    out = tmp_path / "d"
    synth.generate(out, pairs=20, image_size=32, workers=1, progress=False)
    Image.new("RGB", (20, 30), (0, 0, 200)).save(out / "images" / "holiday.jpg")
    with pytest.raises(ValueError, match="holiday.jpg"):
        synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False)
    assert (out / "images" / "holiday.jpg").is_file()


def test_synth_replaces_its_own_data_set(tmp_path):
    out = tmp_path / "d"
    synth.generate(out, pairs=20, image_size=32, workers=1, progress=False)
    synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False)
    assert json.loads((out / "dataset.json").read_text())["parameters"]["seed"] == 1
    assert sorted(os.listdir(tmp_path)) == ["d"]  # no staging or old folder left


def test_train_data_path_at_a_users_folder_is_refused(tmp_path):
    before = _user_photos(tmp_path / "mine")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  path: {tmp_path / 'photos'}\n")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"mine")
    done = _cli("neipalette_tf.train", "--config", config, "--out", tmp_path / "run")
    line = _one_line_error(done)
    assert "data.path" in line and "refusing" in line
    assert (tmp_path / "photos" / "a.jpg").read_bytes() == b"mine" and _snapshot(tmp_path / "mine") == before
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------
# 2. Staging: the target holds the old complete result or the new one
# --------------------------------------------------------------------------


def _owned(folder):
    return staging.owned_by_names(folder, {"result.json", "data.bin"}, "result.json")


def _write_result(folder, value):
    (folder / "data.bin").write_bytes(value.encode() * 100)
    (folder / "result.json").write_text(json.dumps({"v": value}))


def test_staged_folder_swaps_in_and_replaces_only_its_own(tmp_path):
    target = tmp_path / "out"
    with staging.staged_folder(target, _owned) as st:
        assert not target.exists() and os.path.basename(st.path).startswith(".out.staging-")
        _write_result(tmp_path / st.path, "old")
    assert json.loads((target / "result.json").read_text()) == {"v": "old"}
    with staging.staged_folder(target, _owned) as st:
        _write_result(tmp_path / st.path, "new")
        assert json.loads((target / "result.json").read_text()) == {"v": "old"}  # untouched until the end
    assert sorted(os.listdir(target)) == ["data.bin", "result.json"]
    assert json.loads((target / "result.json").read_text()) == {"v": "new"}
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_staged_folder_refuses_foreign_files_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(cli.UserError, match="notes.txt"):
        with staging.staged_folder(target, _owned):
            raise AssertionError("not reached")
    assert os.listdir(target) == ["notes.txt"]
    with pytest.raises(RuntimeError):
        with staging.staged_folder(tmp_path / "other", _owned) as st:
            _write_result(tmp_path / st.path, "x")
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the failed staging folder is gone


def test_failed_staging_with_a_backup_is_kept_with_failed_txt(tmp_path):
    keep = lambda folder: os.path.isdir(os.path.join(folder, "backup"))  # noqa: E731
    with pytest.raises(RuntimeError):
        with staging.staged_folder(tmp_path / "out", _owned, keep_on_failure=keep) as st:
            os.mkdir(os.path.join(st.path, "backup"))
            raise RuntimeError("kernel exploded\nsecond line")
    (left,) = os.listdir(tmp_path)
    assert left.startswith(".out.staging-") and not (tmp_path / "out").exists()
    assert "kernel exploded" in (tmp_path / left / staging.FAILED).read_text()
    assert "second line" not in (tmp_path / left / staging.FAILED).read_text()


def test_kill_9_at_any_moment_leaves_the_old_or_the_new_result(tmp_path):
    """A child process swaps results in a loop; SIGKILL at random moments; the target always reads complete."""
    target = tmp_path / "out"
    code = textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from neipalette_tf import staging
        owned = lambda f: staging.owned_by_names(f, {{"result.json", "data.bin"}}, "result.json")
        i = 0
        while True:
            i += 1
            with staging.staged_folder({str(target)!r}, owned) as st:
                with open(os.path.join(st.path, "data.bin"), "wb") as f:
                    f.write(str(i).encode() * 20000)
                with open(os.path.join(st.path, "result.json"), "w") as f:
                    json.dump({{"v": i}}, f)
            print(i, flush=True)
    """)
    rng = np.random.default_rng(0)
    for round_ in range(6):
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        p.stdout.readline()  # at least one result is in
        time.sleep(float(rng.uniform(0.0, 0.3)))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        staging.recover(target)  # what the next start does
        v = json.loads((target / "result.json").read_text())["v"]
        assert (target / "data.bin").read_bytes() == str(v).encode() * 20000, round_
        assert sorted(os.listdir(target)) == ["data.bin", "result.json"]
