"""The TFLite files (neipalette_tf/export/tflite.py): inputs, float scopes of the int8 and float16 files, XNNPACK partitions, `export-tflite`."""

import re

import numpy as np
import pytest
from helpers import SIZE, TFLITE_FILES, rejects_unreadable_tflite_files


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


def test_tflite_files_take_float_or_camera_pixels(exported):
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    for name in TFLITE_FILES:
        runner = Interpreter(model_path=str(out / name)).get_signature_runner()
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        assert sorted(inputs) == ["bottom", "top"] and sorted(outputs) == ["harmony", "probabilities"]
        assert list(inputs["top"]["shape_signature"]) == [-1, SIZE, SIZE, 3]  # dynamic batch
        if name == "model_int8.tflite":
            for d in inputs.values():  # uint8 RGB 0..255 goes in as it is
                assert d["dtype"] == np.uint8 and d["quantization"] == (1.0, 0)
            for d in outputs.values():  # the colour path and head stay float (export.tflite)
                assert d["dtype"] == np.float32
        else:
            assert all(d["dtype"] == np.float32 for d in (*inputs.values(), *outputs.values()))


def test_int8_files_keep_the_colours_float(exported, keras_model):
    """No 8-bit tensor in `model_int8.tflite` or `head_int8.tflite` carries a garment's main
    colour or whole embedding.

    TF's quantiser propagates one 8-bit scale through slices even where they are
    deny-listed; a slice of the embedding once gave the colours the step of the
    backbone features (`head._columns`, the `embedding` scope in `export.savedmodel`).
    """
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    dim = keras_model.encoder().output_shape[-1]

    def eight_bit(name):
        return [(t["name"], list(t["shape"])) for t in Interpreter(model_path=str(out / name)).get_tensor_details()
                if t["dtype"] in (np.int8, np.uint8)]

    model, head = eight_bit("model_int8.tflite"), eight_bit("head_int8.tflite")
    assert any("resnet" in name for name, _ in model)  # the backbone is int8 ...
    assert any("key1" in name for name, _ in model)  # ... and so are the attention's key convolutions
    assert any("hidden" in name for name, _ in head)  # and the head's embedding MLP
    # the attention graph (what explanations draw) keeps its key convolutions float32
    attention = eight_bit("attention_int8.tflite")
    assert any("resnet" in name for name, _ in attention) and not any("key1" in name for name, _ in attention)
    for tensors in (model, head):  # nor the probabilities or p(harmonious)
        assert not [(name, shape) for name, shape in tensors if len(shape) == 2 and shape[-1] in (1, 2, 3, dim)]
    # the head's inputs are the encoders' float32 embeddings
    inputs = Interpreter(model_path=str(out / "head_int8.tflite")).get_input_details()
    assert [d["dtype"] for d in inputs] == [np.float32, np.float32]
    # the hidden layer's weights are int8 (a quarter of their float32 bytes); the projection
    # (`head/projection`, 515 x 64) and the colour MLP stay float32, so the file shrinks by ~45 %
    assert (out / "head_int8.tflite").stat().st_size * 1.5 < (out / "head.tflite").stat().st_size


def test_float16_files_keep_small_constants_float32(exported):
    """The float16 files store the big weights as float16 and every constant of <= 1,024 values
    (biases, the colour path's sRGB / OKLab constants, the normalisation) as exact float32: the
    float32 file's values, and no DEQUANTIZE left for them."""
    from ai_edge_litert import schema_py_generated as schema

    from neipalette_tf.export.flatbuffer import load, opcodes
    from neipalette_tf.export.tflite import SMALL_CONSTANT, keep_small_constants_float32

    out, _ = exported
    for part in ("model", "encoder", "head"):
        data = (out / f"{part}_fp16.tflite").read_bytes()
        model = load(data)
        graph = model.subgraphs[0]
        sizes = [int(np.prod(graph.tensors[op.inputs[0]].shape)) for op, code in zip(graph.operators, opcodes(model))
                 if code == schema.BuiltinOperator.DEQUANTIZE]
        assert sizes and min(sizes) > SMALL_CONSTANT, (part, sorted(sizes)[:5])  # big ones float16, small ones not
        assert len(data) < 0.55 * (out / f"{part}.tflite").stat().st_size
    # every small float32 constant of a float16 file is one of the float32 file's, bit for bit

    def small_constants(data):
        model = load(data)
        graph = model.subgraphs[0]
        read = {int(t) for op in graph.operators for t in op.inputs}
        return {bytes(model.buffers[t.buffer].data) for i, t in enumerate(graph.tensors)
                if i in read and t.type == schema.TensorType.FLOAT32 and model.buffers[t.buffer].data is not None
                and 0 < len(model.buffers[t.buffer].data) <= 4 * SMALL_CONSTANT}

    for part in ("model", "head"):
        half, full = (small_constants((out / f"{part}{s}.tflite").read_bytes()) for s in ("_fp16", ""))
        assert len(half) > 5 and half <= full, part
    # graphs that do not align op for op are left as they are
    fp16, other = (out / "model_fp16.tflite").read_bytes(), (out / "head.tflite").read_bytes()
    assert keep_small_constants_float32(fp16, other) == (fp16, 0)


def test_tflite_graphs_run_in_one_xnnpack_partition(exported):
    """Every exported .tflite file runs in one XNNPACK subgraph: no op outside it but the int8
    files' uint8 input QUANTIZE and the last reshape to `harmony` (before, 47 ops of 193 split
    `model_int8.tflite` into 15 partitions; docs/deployment.md)."""
    from ai_edge_litert.interpreter import Interpreter

    from neipalette_tf.export.tflite import xnnpack_coverage

    out, _ = exported
    for path in sorted(out.glob("*.tflite")):
        partitions, outside, total = xnnpack_coverage(path)
        outputs = {d["name"] for d in Interpreter(model_path=str(path)).get_output_details()}
        stray = [(op, name) for op, name in outside
                 if not (op == "QUANTIZE" and path.stem.endswith("_int8")) and not (op == "RESHAPE" and name in outputs)]
        assert partitions == 1 and not stray and total > 20, (path.name, partitions, outside, total)


def test_tflite_coverage_cli(exported, tmp_path, capsys):
    from neipalette_tf.commands import export_tflite
    from neipalette_tf.core import cli

    out, _ = exported
    assert cli.run(export_tflite.main, [str(out / "model_int8.tflite")]) == 0
    assert re.search(r"1 XNNPACK partition\(s\); 3 of \d+ op\(s\) outside: QUANTIZE, QUANTIZE, RESHAPE$",
                     capsys.readouterr().out.strip())
    rejects_unreadable_tflite_files(export_tflite.main, tmp_path, capsys)
