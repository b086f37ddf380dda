"""Staged result folders (neipalette_tf/core/staging.py): the target holds the old complete result or
the new one, whatever happens in between (moved from tests/test_robustness.py, issue 17's class 2)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT

from neipalette_tf.core import cli, staging


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
        from neipalette_tf.core import staging
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
