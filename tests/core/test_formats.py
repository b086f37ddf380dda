"""Contract tests of the export-format registry (neipalette_tf/core/formats.py), parametrised over
`list_formats()`: a format registered there is checked here without a new test, and each test names
what a new format still lacks (its rules, its builder, its runtime, its docs)."""

import pytest
from conftest import ROOT

from neipalette_tf.core import formats
from neipalette_tf.core.formats import FormatSpec, format_of, get_format, list_formats, register_format

ALL = list_formats()
TF_FREE = list_formats(tf_free=True)


def test_the_registry_holds_the_shipped_formats_in_order():
    assert ALL[0] == "savedmodel" and set(TF_FREE) == set(ALL) - {"savedmodel"}
    assert list_formats(precision="int8") == ("tflite_int8", "onnx_int8")
    assert list_formats(family="tflite") == ("tflite", "tflite_fp16", "tflite_int8")


def test_registering_twice_or_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_format(get_format("onnx"))
    with pytest.raises(ValueError, match="unknown"):
        register_format(FormatSpec("x", "coreml", "float32", ".mlmodel", tf_free=False))
    with pytest.raises(KeyError, match="registered: savedmodel"):
        get_format("coreml")
    assert "x" not in list_formats()


def test_no_two_formats_share_a_file():
    files = [(name, get_format(name).file_name(part)) for name in ALL for part in formats.PARTS]
    by_file = {}
    for name, file in files:
        by_file.setdefault(file, set()).add(name)
    assert all(len(names) == 1 for names in by_file.values()), by_file


@pytest.mark.parametrize("name", TF_FREE)
def test_a_tf_free_format_is_read_back_from_its_file_names(name):
    from neipalette_tf.predictors.runtime import GRAPH_TYPES

    spec = get_format(name)
    assert spec.suffix in GRAPH_TYPES, f"{name}: add a graph type for {spec.suffix} to predictors/runtime.GRAPHS"
    assert [format_of(f"x/{spec.file_name(part)}") for part in formats.PARTS] == [name] * len(formats.PARTS)


@pytest.mark.parametrize("name", ALL)
def test_every_format_has_its_parity_attention_and_rating_rules(name):
    from neipalette_tf.export import parity

    for table in ("RULES", "ATTENTION_RULES", "RATING_RULES"):
        assert name in getattr(parity, table), f"{name}: no entry in export/parity.{table}"
        assert getattr(parity, table)[name], f"{name}: an empty parity.{table} rule checks nothing"


def test_the_parity_tables_hold_no_unregistered_format():
    from neipalette_tf.export import parity

    for table in ("RULES", "ATTENTION_RULES", "RATING_RULES"):
        assert set(getattr(parity, table)) == set(ALL), table


@pytest.mark.parametrize("name", ALL)
def test_every_format_has_a_builder_and_a_converter_of_its_family(name):
    from neipalette_tf.export import exporter

    spec = get_format(name)
    assert callable(getattr(exporter.Builder, spec.family, None)), f"{name}: add Builder.{spec.family}"
    assert (ROOT / "neipalette_tf" / "export" / f"{spec.family}.py").is_file()
    paths = exporter.final_paths(name, "OUT")
    assert paths and all(p.startswith("OUT") for p in paths.values())
    names, _ = exporter.export_names()  # what an export folder may hold: a published file is never refused
    assert {p.split("/")[1] for p in paths.values()} <= names


def test_the_derived_lists_follow_the_registry():
    from neipalette_tf.export import arm64, bench, exporter, tflite

    assert exporter.FORMATS == ALL and exporter.INT8_FORMATS == list_formats(precision="int8")
    assert bench.RUNTIME_FORMATS == TF_FREE and arm64.FORMATS == TF_FREE
    assert set(arm64.INT8_FORMATS) == {n for n in TF_FREE if get_format(n).int8}
    assert tflite.PRECISIONS == {n: get_format(n).precision for n in list_formats(family="tflite")}


@pytest.mark.parametrize("name", ALL)
def test_every_format_is_documented(name):
    """docs/deployment.md's table of the files an export holds has a row for each format's model file."""
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    table = text.split("| file | format | inputs | outputs |", 1)[1].split("\n\n", 1)[0]
    file = get_format(name).file_name("model")
    assert f"| `{file}`" in table or f"| `{file}/`" in table, f"{name}: no row for {file} in docs/deployment.md"
