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
        register_format(FormatSpec("x", "coreml", "float32", ".mlmodel", False, {}, {}, {}))
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
def test_every_bound_of_a_format_is_a_measure_parity_computes(name):
    """Identical outputs pass every rule, each rule's keys are measured (a misspelt bound would
    silently check nothing), and outputs off by more than a bound fail it."""
    import numpy as np

    from neipalette_tf.export import parity

    spec = get_format(name)
    assert spec.parity and spec.attention and spec.rating, f"{name}: a rule of no bounds checks nothing"
    rng = np.random.default_rng(0)
    labels, p = np.array([0, 1] * 32), rng.uniform(0.05, 0.95, 64)
    same = parity.compare(p, p, labels, spec.parity)
    measured = {"max_abs_diff": "max_abs_diff", "min_agreement": "decision_agreement", "max_auc_diff": "roc_auc_diff"}
    assert same["passed"] and set(spec.parity) <= set(measured), sorted(set(spec.parity) - set(measured))
    assert all(measured[key] in same for key in spec.parity)
    assert not parity.compare(p, 1 - p, labels, spec.parity)["passed"]
    seen = (rng.normal(size=(64, 3)), rng.dirichlet(np.ones(16), 64), rng.uniform(size=(64, 3, 4)))
    same = parity.compare_attention(seen, seen, spec.attention)
    assert same["passed"] and set(spec.attention) <= set(same), sorted(set(spec.attention) - set(same))
    moved = (seen[0] + 1.0, seen[1][::-1], seen[2])
    assert not parity.compare_attention(seen, moved, spec.attention)["passed"]
    rating = rng.uniform(1, 5, 64)
    same = parity.compare_rating(rating, rating, spec.rating)
    assert same["passed"] and set(spec.rating) <= set(same)
    assert not parity.compare_rating(rating, rating + 1.0, spec.rating)["passed"]


def test_the_parity_tables_are_the_registry_s_bounds():
    from neipalette_tf.export import parity

    for table, field in (("RULES", "parity"), ("ATTENTION_RULES", "attention"), ("RATING_RULES", "rating")):
        assert getattr(parity, table) == {n: getattr(get_format(n), field) for n in ALL}, table


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
