"""The vocabulary (neipalette_tf/core/vocabulary.py) is the one home of the names and constants
modules share: no module of the package writes its own copy of one, as a module-level constant or
as a function default (the copies this module replaced had started to drift)."""

import ast

import pytest
from conftest import ROOT

from neipalette_tf.core import vocabulary

SHARED = {name: value for name, value in vars(vocabulary).items()
          if name.isupper() and isinstance(value, (tuple, str)) and name != "THRESHOLD"}


def _norm(value):
    return tuple(value) if isinstance(value, list) else value


def _literals(tree):
    """(line, value) of every module-level constant and every function default given as a literal."""
    for node in ast.walk(tree):
        values = []
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node in tree.body:
            values = [node.value]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            values = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
        for value in values:
            try:
                yield value.lineno, _norm(ast.literal_eval(value))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue


MODULES = sorted(p for p in (ROOT / "neipalette_tf").rglob("*.py") if p.name != "vocabulary.py")


def test_the_scan_finds_a_copy():
    tree = ast.parse('SPLITS = ("train", "val", "test")\ndef f(fractions=[0.7, 0.15, 0.15]): pass\n')
    found = [v for _, v in _literals(tree) if v in SHARED.values()]
    assert found == [vocabulary.SPLITS, vocabulary.SPLIT_FRACTIONS]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_keeps_its_own_copy_of_the_vocabulary(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    copies = [f"line {line}: {value!r} (core.vocabulary.{name})" for line, value in _literals(tree)
              for name, shared in SHARED.items() if value == shared]
    assert not copies, f"{path.relative_to(ROOT)}: import these from neipalette_tf.core.vocabulary: {copies}"


def test_fractions_sum_to_one_and_name_every_split():
    assert len(vocabulary.SPLIT_FRACTIONS) == len(vocabulary.SPLITS)
    assert abs(sum(vocabulary.SPLIT_FRACTIONS) - 1) < 1e-9
    assert vocabulary.LABEL_NAMES[vocabulary.POSITIVE_LABEL] == "harmonious"
