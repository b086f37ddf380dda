"""Every command: `--help` works, prints nothing on stderr (no TensorFlow start-up chatter),
and the TF-free ones never load TensorFlow."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from neipalette_tf.__main__ import COMMANDS, main

TF_FREE = ("neipalette_tf.predict", "neipalette_tf.recommend", "neipalette_tf.data.synth",
           "neipalette_tf.export.profile")


def _spawn(args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


@pytest.mark.slow
def test_every_command_helps_quietly():
    procs = {module: _spawn(["-m", module, "--help"]) for module, _ in COMMANDS.values()}
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "usage:" in out, (module, err[-2000:])
        assert err == "", (module, err[-2000:])


def test_train_help_prints_no_tensorflow_chatter():
    out, err = _spawn(["-m", "neipalette_tf.train", "--help"]).communicate(timeout=300)
    assert "--set KEY=VALUE" in out and err == "", err[-2000:]


def test_tf_free_commands_never_import_tensorflow():
    code = ("import sys, runpy\nfor m in %r:\n    sys.argv = [m, '--help']\n    try:\n"
            "        runpy.run_module(m, run_name='__main__')\n    except SystemExit:\n        pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'free')" % (TF_FREE,))
    out, err = _spawn(["-c", code]).communicate(timeout=300)
    assert out.strip().endswith("free"), err[-2000:]


def test_the_neipalette_command_lists_and_dispatches(capsys):
    assert main(["--help"]) == 0 and "portability" in capsys.readouterr().out
    assert main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_training_commands_choose_onednn_unless_the_user_did():
    """train (and cv, bench_input, peer_bench) ask for oneDNN before TensorFlow loads; a user's value wins."""
    import platform

    code = ("import os; import neipalette_tf.train; import tensorflow; "
            "from neipalette_tf.core.cpu_info import cpu_summary; "
            "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS')); print(cpu_summary())")
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    for given, expected in ((None, "1" if x86 else None), ("0", "0")):
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        env["PYTHONPATH"] = str(ROOT)
        if given is not None:
            env["TF_ENABLE_ONEDNN_OPTS"] = given
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        value, summary = done.stdout.splitlines()[-2:]
        assert value == str(expected), done.stdout
        assert ("train's default" in summary) == (expected == "1" and given is None), summary
