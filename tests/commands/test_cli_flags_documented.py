"""docs/cli.md's command table states every flag each command takes, and no flag it does not.

The flags come from the commands themselves (`--help`, run in this process: no command loads
TensorFlow for it), so a flag added, renamed or dropped in code without its docs row fails here.
"""

import contextlib
import io
import re
import runpy
import sys

import pytest
from conftest import ROOT

from neipalette_tf.commands import COMMANDS

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
ALWAYS = {"--help", "--debug"}  # argparse's, and `core.cli.run`'s (docs/cli.md says so once, above the table)


def _rows():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for row in table.splitlines():
        m = re.match(r"\| `python -m ([\w.]+)", row)
        if m:
            usage = re.split(r"(?<!\\)\|", row)[1]  # the command column (`\|` inside it is text)
            rows.setdefault(m.group(1), set()).update(FLAG.findall(usage))
    return rows


def _help(spelling):
    out, argv = io.StringIO(), sys.argv
    sys.argv = [spelling, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            runpy.run_module(spelling, run_name="__main__")
    finally:
        sys.argv = argv
    return set(FLAG.findall(out.getvalue()))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_docs_cli_table_states_every_flag_of(name):
    spelling = COMMANDS[name].spelling
    documented = _rows().get(spelling)
    assert documented is not None, f"docs/cli.md has no row for python -m {spelling}"
    takes = _help(spelling) - ALWAYS
    missing, extra = sorted(takes - documented), sorted(documented - takes - ALWAYS)
    assert not missing, f"python -m {spelling} takes {missing}, which docs/cli.md's row does not state"
    assert not extra, f"docs/cli.md's row for python -m {spelling} states {extra}, which the command does not take"
