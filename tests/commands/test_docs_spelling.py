"""The docs spell every command one way: `python -m <spelling>`, the spelling registered in
`neipalette_tf/commands/__init__.py`'s `COMMANDS`. The installed console script (`neipalette NAME`)
and the extra forwards (`ALSO`, e.g. `python -m neipalette_tf.export`) are described once, in
docs/cli.md's "Other spellings" section, and nowhere else. Scans README.md, docs/*.md and the
command modules' docstrings; no subprocess, no TensorFlow."""

import ast
import re

import pytest
from conftest import ROOT

from neipalette_tf.commands import ALSO, COMMANDS

SPELLINGS = {c.spelling for c in COMMANDS.values()}
# `python -m` modules that are not NeiPalette commands: tools the docs tell you to run, and the
# placeholder of "`python -m MODULE --help`".
NOT_COMMANDS = {"pytest", "pip", "venv", "MODULE", "neipalette_tf"}  # `python -m neipalette_tf --help`: the command list
OTHER_SPELLINGS = "## Other spellings"  # docs/cli.md's one section on the console script and `ALSO`

PYTHON_M = re.compile(r"\bpython3? +-m +([\w.]*\w)")
# the console script: `neipalette NAME` / `neipalette --help` (not `NeiPalette`, `neipalette_tf`,
# a path, or a value such as `MODEL_NAME=neipalette`)
CONSOLE = re.compile(r"(?<![\w./=-])neipalette +(-{0,2}[A-Za-z<][\w<>-]*)")
# a command given with flags but without `python -m` (`serve --processes 2`, `export.bench --artifacts A`),
# or by its console name (`photo-shift`); a bare `explain` or `export.bench` naming the tool is fine
_SHORT = {c.spelling.rpartition(".")[2]: name for name, c in COMMANDS.items()}
SHORT_NAMES = {**_SHORT, **{name.replace("-", "_"): name for name in COMMANDS},
               **{c.spelling: name for name, c in COMMANDS.items()}}
_alternatives = "|".join(re.escape(n) for n in sorted(SHORT_NAMES, key=len, reverse=True))
SHORTHAND = re.compile(r"`((?:%s)) +-" % _alternatives)
CONSOLE_NAME = re.compile(r"`(%s)[` ]" % "|".join(re.escape(n) for n in COMMANDS if "-" in n))


def _docs():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _other_spellings_lines(text):
    """The 1-based line numbers of docs/cli.md's "Other spellings" section (heading to next heading)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == OTHER_SPELLINGS]
    assert len(starts) == 1, f"docs/cli.md needs exactly one '{OTHER_SPELLINGS}' section"
    end = next((i for i in range(starts[0] + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return set(range(starts[0] + 1, end + 1))


def misspellings(where, lines, allowed_lines=()):
    """`where:line: ...` for every command mention in `lines` ((line number, text) pairs) that is not
    spelt as the registry documents it; `allowed_lines` may also use the console script and `ALSO`."""
    bad = []
    for number, line in lines:
        extra = number in allowed_lines
        for name in PYTHON_M.findall(line):
            if name in SPELLINGS or name in NOT_COMMANDS or (extra and name in ALSO):
                continue
            hint = (f"the registry spells it `python -m {COMMANDS[ALSO[name]].spelling}`" if name in ALSO else
                    "no command has this spelling (neipalette_tf/commands/__init__.py's COMMANDS); "
                    "a tool that is no command goes into NOT_COMMANDS")
            bad.append(f"{where}:{number}: `python -m {name}`: {hint}")
        for word in CONSOLE.findall(line):
            if extra:
                continue
            hint = (f"write `python -m {COMMANDS[word].spelling}`" if word in COMMANDS else
                    "the console script is described only in docs/cli.md's 'Other spellings'")
            bad.append(f"{where}:{number}: `neipalette {word}`: {hint}")
        if not extra:
            for word in SHORTHAND.findall(line):
                spelling = COMMANDS[SHORT_NAMES[word]].spelling
                bad.append(f"{where}:{number}: `{word} -…`: write `python -m {spelling} -…`")
            for word in CONSOLE_NAME.findall(line):
                bad.append(f"{where}:{number}: `{word}`: write `python -m {COMMANDS[word].spelling}`")
    return bad


def test_docs_spell_every_command_as_the_registry_does():
    bad, checked = [], 0
    for doc in _docs():
        text = doc.read_text(encoding="utf-8")
        allowed = _other_spellings_lines(text) if doc.name == "cli.md" and doc.parent.name == "docs" else ()
        checked += len(PYTHON_M.findall(text))
        bad += misspellings(doc.relative_to(ROOT), enumerate(text.splitlines(), 1), allowed)
    assert checked > 50, "the docs should name their commands"  # the scan did read the docs
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", sorted((ROOT / "neipalette_tf" / "commands").glob("*.py")), ids=lambda p: p.name)
def test_command_docstrings_spell_commands_as_the_registry_does(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [tree.body[0]] if tree.body and ast.get_docstring(tree) is not None else []
    nodes += [n.body[0] for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))
              and ast.get_docstring(n) is not None]
    lines = [(node.lineno + i, line) for node in nodes for i, line in enumerate(node.value.value.splitlines())]
    if path.name == "__init__.py":  # the registry describes the console script that prints it
        lines = [(n, line) for n, line in lines if "neipalette --help" not in line]
    bad = misspellings(path.relative_to(ROOT), lines)
    assert not bad, "\n".join(bad)


def test_cli_md_describes_the_other_spellings_once_and_briefly():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = _other_spellings_lines(text)
    assert len(section) <= 15, "docs/cli.md's 'Other spellings' is one short paragraph, not a second reference"
    lines = text.splitlines()
    body = "\n".join(lines[n - 1] for n in section)
    assert "neipalette --help" in body and "python -m neipalette_tf.export" in body, "say once that they exist"


@pytest.mark.parametrize("line, expected, in_section", [
    ("python -m neipalette_tf.train --epochs 3", None, None),
    ("TF_ENABLE_ONEDNN_OPTS=0 python -m export.bench --artifacts A", None, None),
    ("pip install -r requirements.txt && python -m pytest -q", None, None),
    ("`python -m MODULE --help`", None, None),
    ("MODEL_NAME=neipalette tensorflow/serving", None, None),
    ("the `neipalette_tf/commands` package; NeiPalette train", None, None),
    ("`explain` and `export.bench` print the CPU; `--out runs/x/photo-shift`", None, None),
    ("(`serve --processes 2`)", "`serve -…`: write `python -m neipalette_tf.serve -…`", True),
    ("`serve_bench --attacks`", "`serve_bench -…`: write `python -m neipalette_tf.serve_bench -…`", True),
    ("`export.bench --artifacts A`", "`export.bench -…`: write `python -m export.bench -…`", True),
    ("the `photo-shift` conditions", "`photo-shift`: write `python -m neipalette_tf.photo_shift`", True),
    ("python -m neipalette_tf.export --model M",
     "`python -m neipalette_tf.export`: the registry spells it `python -m export`", True),
    ("python -m neipalette_tf.commands.train", "`python -m neipalette_tf.commands.train`: no command", False),
    ("run `python -m neipalette.train`.", "`python -m neipalette.train`: no command", False),
    ("pip install . && neipalette predict a.jpg b.jpg", "`neipalette predict`: write `python -m neipalette_tf.predict`",
     True),
    ("`neipalette COMMAND` lists them", "`neipalette COMMAND`: the console script is described only", True),
    ("`neipalette --help`", "`neipalette --help`: the console script", True),
])
def test_the_scan_finds_each_kind_of_misspelling(line, expected, in_section):
    bad = misspellings("doc.md", [(7, line)])
    if expected is None:
        assert bad == []
        return
    assert len(bad) == 1 and bad[0].startswith("doc.md:7: " + expected), bad
    # docs/cli.md's "Other spellings" may use the console script and ALSO, never an unknown module
    assert misspellings("doc.md", [(7, line)], allowed_lines={7}) == ([] if in_section else bad)
