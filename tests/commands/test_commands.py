"""The commands registry (neipalette_tf/commands/__init__.py) and every command: one module a
registered command, each through `core.cli.run`, every documented `python -m` spelling a thin
forward to it, `neipalette --help` and docs/cli.md's table in step with the registry; `--help`
works, prints nothing on stderr (no TensorFlow start-up chatter), and the TF-free ones never
load TensorFlow."""

import ast
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from neipalette_tf.__main__ import main, usage
from neipalette_tf.commands import ALSO, COMMANDS, module

TF_FREE = ("neipalette_tf.predict", "neipalette_tf.recommend", "neipalette_tf.data.synth",
           "neipalette_tf.export.profile")
SPELLINGS = {**{c.spelling: name for name, c in COMMANDS.items()}, **ALSO}


def _file(dotted):
    """The source file of a module name (a package's `__main__.py` for `python -m PACKAGE`)."""
    path = ROOT.joinpath(*dotted.split("."))
    return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")


def _spawn(args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def test_every_command_module_is_registered_and_every_entry_has_its_module():
    files = {p.stem for p in (ROOT / "neipalette_tf" / "commands").glob("*.py") if p.stem != "__init__"}
    assert files == {module(name).rpartition(".")[2] for name in COMMANDS}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_is_thin_and_runs_through_cli_run(name):
    path = _file(module(name))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mains = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert len(mains) == 1 and ast.unparse(mains[0].body[-1]) == "sys.exit(cli.run(main))", path
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), path
    # thin: argparse and a call into its workflow; the work itself lives in a library package
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 200, f"{path}: move the work into its package"


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_every_python_m_spelling_is_a_thin_forward(spelling):
    path = _file(spelling)
    text = path.read_text(encoding="utf-8")
    call = f'runpy.run_module("{module(SPELLINGS[spelling])}", run_name="__main__", alter_sys=True)'
    assert call in text, f"{path}: python -m {spelling} must forward to {module(SPELLINGS[spelling])}"
    if not (spelling in ALSO and path.name != "__main__.py"):
        # a module of its own (not a library module that also answers `python -m`): nothing but the forward
        code = [n for n in ast.parse(text).body if not isinstance(n, ast.Expr)]
        assert len(code) == 2, f"{path}: a forward holds only `import runpy` and the `__main__` call"


def test_neipalette_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == usage().strip()
    listed = [line.split()[0] for line in out.splitlines()[3:]]
    assert listed == list(COMMANDS)
    assert main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err


def _cli_md_rows():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    return [row for row in table.splitlines() if row.startswith("| `")]


def test_docs_cli_table_has_a_row_for_every_command_and_no_other():
    documented = set()
    for row in _cli_md_rows():
        m = re.match(r"\| `python -m ([\w.]+)[ `]", row) or re.match(r"\| `neipalette ([\w-]+)[ `]", row)
        if m and (m.group(1) in SPELLINGS or m.group(1) in COMMANDS):
            documented.add(SPELLINGS.get(m.group(1), m.group(1)))
        elif m:
            pytest.fail(f"docs/cli.md documents `{m.group(1)}`, which is no registered command: {row[:80]}")
    missing = sorted(set(COMMANDS) - documented)
    assert not missing, f"registered commands without a row in docs/cli.md's command table: {missing}"


def test_every_command_helps_quietly():
    procs = {spelling: _spawn(["-m", spelling, "--help"]) for spelling in SPELLINGS}
    for spelling, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "usage:" in out, (spelling, err[-2000:])
        assert err == "", (spelling, err[-2000:])


def test_train_help_prints_no_tensorflow_chatter():
    out, err = _spawn(["-m", "neipalette_tf.train", "--help"]).communicate(timeout=300)
    assert "--set KEY=VALUE" in out and err == "", err[-2000:]


def test_no_command_loads_tensorflow_for_its_help():
    """`--help` (and so every flag error argparse raises) answers before TensorFlow loads: in
    well under a second, not after TensorFlow's ~5 s start-up. The TF-free commands stay TF-free.
    (The documented spellings; `ALSO`'s `python -m neipalette_tf.export.tflite` and the like run the
    library module itself, which loads what it needs.)"""
    code = ("import contextlib, io, sys, runpy\nfor m in %r:\n    sys.argv = [m, '--help']\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        runpy.run_module(m, run_name='__main__')\n"
            "    if 'tensorflow' in sys.modules:\n        print('TF', m)\n        break\n"
            "else:\n    print('free')" % (sorted((c.spelling for c in COMMANDS.values()), key=lambda m: m not in TF_FREE),))
    out, err = _spawn(["-c", code]).communicate(timeout=300)
    assert out.strip().splitlines()[-1:] == ["free"], (out[-500:], err[-2000:])


@pytest.mark.slow
def test_training_commands_choose_onednn_unless_the_user_did():
    """train (and cv, bench_input, peer_bench) ask for oneDNN before TensorFlow loads; a user's value wins."""
    import platform

    code = ("import os; import neipalette_tf.commands.train; import tensorflow; "
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
