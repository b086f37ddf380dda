"""Where a .tflite / .onnx file's time goes (neipalette_tf/export/profile.py, `export-profile`)."""

import re

import numpy as np
import pytest
from helpers import rejects_unreadable_tflite_files


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


@pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors")
def test_profile_cuts_keep_every_op_and_compute_what_the_full_graph_does(exported):
    """A cut of the graph outputs every tensor it produces and does not read (no dead op for the
    delegate to skip), and its values are the full graph's; the last cut has the graph's outputs."""
    from ai_edge_litert.interpreter import Interpreter

    from neipalette_tf.export.profile import _interpreter, cut, runs_of_ops

    out, _ = exported
    model_bytes = (out / "model_int8.tflite").read_bytes()
    runs = runs_of_ops(model_bytes)
    scopes = [s for s, _, _ in runs]
    assert runs[0][1] == 0 and all(a[2] + 1 == b[1] for a, b in zip(runs, runs[1:]))  # every op, in order
    assert {"encoder/colour_pooling", "encoder/preprocessor", "encoder/pooling"} <= set(scopes)
    assert any(s.startswith("encoder/") and s.split("/")[-1].startswith(("stack", "block")) for s in scopes)
    full = Interpreter(model_content=model_bytes, experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    part = _interpreter(cut(model_bytes, runs[len(runs) // 2][2]), 1)  # random inputs
    inputs = {d["name"]: d["index"] for d in full.get_input_details()}
    for d in part.get_input_details():
        full.set_tensor(inputs[d["name"]], part.get_tensor(d["index"]))
    full.invoke()
    part.invoke()
    by_name = {t["name"]: t["index"] for t in full.get_tensor_details()}
    assert len(part.get_output_details()) >= 1
    for d in part.get_output_details():
        np.testing.assert_array_equal(part.get_tensor(d["index"]), full.get_tensor(by_name[d["name"]]), d["name"])
    last = Interpreter(model_content=cut(model_bytes, runs[-1][2]))
    original = Interpreter(model_path=str(out / "model_int8.tflite"))
    assert {d["name"] for d in last.get_output_details()} == {d["name"] for d in original.get_output_details()}


def test_profile_cli_reports_every_scope(exported, tmp_path, capsys):
    from neipalette_tf.commands import export_profile
    from neipalette_tf.core import cli

    out, _ = exported
    assert cli.run(export_profile.main, [str(out / "model_int8.tflite"), "--threads", "1", "--runs", "2"]) == 0
    text = capsys.readouterr().out
    total = float(re.search(r"whole graph ([\d.]+) ms", text).group(1))
    steps = [float(v) for v in re.findall(r"^ +\d+-\d+ +\S+ +[\d.]+ +([-+][\d.]+)$", text, re.M)]
    shares = re.findall(r"^  (\S+) +[-\d.]+ ms +[-\d.]+%$", text, re.M)
    assert total > 0 and steps and sum(steps) == pytest.approx(total, abs=1e-3 * len(steps))
    assert "encoder/colour_pooling" in shares and len(shares) == len(set(shares))
    rejects_unreadable_tflite_files(export_profile.main, tmp_path, capsys)


def test_profile_of_onnx_files_by_op_type(exported, tmp_path, capsys):
    from neipalette_tf.commands import export_profile
    from neipalette_tf.core import cli
    from neipalette_tf.export import profile

    out, _ = exported
    int8 = profile.onnx_profile(str(out / "model_int8.onnx"), threads=1, runs=2, batch=3)
    fp32 = profile.onnx_profile(str(out / "model.onnx"), threads=1, runs=2, batch=3)
    assert "QLinearConv" in int8["by_op"] and not any(op.startswith("QLinear") or op == "QGemm" for op in fp32["by_op"])
    # the float32 graph runs its tiny maps as GEMMs (onnx_optimize), the int8 one as int8 convolutions
    assert "Gemm" in fp32["by_op"] and "Gather" not in int8["by_op"]
    assert all(ms > 0 for ms in fp32["by_op"].values())
    assert sum(int8["by_op"].values()) == pytest.approx(sum(int8["by_node"].values()))
    assert cli.run(export_profile.main, [str(out / "encoder_int8.onnx"), "--threads", "1", "--runs", "2", "--batch", "4"]) == 0
    text = capsys.readouterr().out
    assert "batch 4" in text and "QLinearConv" in text and "slowest 10 nodes:" in text
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    for bad in ("bad.onnx", "none.onnx"):
        with pytest.raises(SystemExit) as e:
            cli.run(export_profile.main, [str(tmp_path / bad)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith(f"error: {tmp_path / bad}: not a readable .onnx") and "\n" not in err
