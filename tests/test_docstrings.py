"""Every docstring example in the library runs and prints what it says."""

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "neipalette_tf").rglob("*.py")
    if ">>>" in path.read_text(encoding="utf-8"))


def test_examples_are_found():
    assert {"neipalette_tf.colour.harmony", "neipalette_tf.export.onnx_optimize"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
