"""The TensorFlow-free runtime on a tiny hand-built ONNX model (no TensorFlow needed).

The real exported models are tested in tests/predictors/test_runtime_exports.py; here a 3-node ONNX
graph with the exported models' names stands in: harmony = sigmoid(mean(top)
- mean(bottom)) over pixels scaled to 0..1.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.predictors.runtime import (
    ArtifactError,
    HarmonyRuntime,
    _dequantize,
    _quantize,
)

SIZE = 8


def _tiny_onnx(path, size=SIZE):
    import onnx
    from onnx import TensorProto, helper

    image = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size, size, 3])  # noqa: E731
    nodes = [
        helper.make_node("ReduceMean", ["top", "axes"], ["m_top"], keepdims=0),
        helper.make_node("ReduceMean", ["bottom", "axes"], ["m_bottom"], keepdims=0),
        helper.make_node("Sub", ["m_top", "m_bottom"], ["diff"]),
        helper.make_node("Mul", ["diff", "scale"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["harmony"]),
        helper.make_node("Unsqueeze", ["harmony", "one"], ["h_col"]),
        helper.make_node("Sub", ["ones", "h_col"], ["c_col"]),
        helper.make_node("Concat", ["c_col", "h_col"], ["probabilities"], axis=1),
    ]
    init = [helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
            helper.make_tensor("scale", TensorProto.FLOAT, [], [1 / 255.0]),
            helper.make_tensor("one", TensorProto.INT64, [1], [1]),
            helper.make_tensor("ones", TensorProto.FLOAT, [1, 1], [1.0])]
    graph = helper.make_graph(nodes, "tiny", [image("top"), image("bottom")],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2]),
                               helper.make_tensor_value_info("harmony", TensorProto.FLOAT, ["batch"])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _png(colour, size=(12, 20)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_predict_from_bytes_paths_and_arrays(tmp_path):
    rt = HarmonyRuntime(_tiny_onnx(str(tmp_path / "model.onnx")))
    assert rt.card is None and rt.image_size == SIZE  # no card: the input shape says it
    light, dark = _png((255, 255, 255)), _png((0, 0, 0))
    assert rt.predict(light, dark) == pytest.approx(1 / (1 + np.exp(-1.0)), abs=1e-6)
    (tmp_path / "dark.png").write_bytes(dark)
    assert rt.predict(tmp_path / "dark.png", light) == pytest.approx(1 / (1 + np.exp(1.0)), abs=1e-6)
    array = np.full((SIZE, SIZE, 3), 255, np.uint8)
    assert rt.predict(array, array) == pytest.approx(0.5)
    with pytest.raises(ArtifactError, match="expected"):
        rt.predict(np.zeros((4, 4, 3), np.uint8), array)
    with pytest.raises(ArtifactError, match="no encoder"):
        rt.embed(array)


def test_card_gives_image_size_and_parts(tmp_path):
    _tiny_onnx(str(tmp_path / "model.onnx"))
    card = {"image_size": SIZE, "artifacts": {"onnx": {"model": {"file": "model.onnx"}}},
            "notes": {"encoder": "a stacked model has no encoder"}}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    rt = HarmonyRuntime(tmp_path)  # a folder means its model.onnx
    assert rt.format == "onnx" and rt.image_size == SIZE
    with pytest.raises(ArtifactError, match="stacked model has no encoder"):
        rt.embed(np.zeros((SIZE, SIZE, 3), np.uint8))


def test_format_of_a_file_name():
    from neipalette_tf.predictors.runtime import format_of

    names = ("model.onnx", "model_int8.onnx", "head.tflite", "encoder_fp16.tflite", "model_int8.tflite")
    assert [format_of(f"x/{n}") for n in names] == ["onnx", "onnx_int8", "tflite", "tflite_fp16", "tflite_int8"]


def test_bad_paths(tmp_path):
    with pytest.raises(ArtifactError, match="model not found"):
        HarmonyRuntime(tmp_path / "none.tflite")
    with pytest.raises(ArtifactError, match=".onnx or .tflite"):
        HarmonyRuntime(tmp_path / "model.keras")


def test_quantize_roundtrip():
    pixels = np.arange(256, dtype=np.float32)
    q = _quantize(pixels, np.uint8, 1.0, 0)  # the int8 model's image input
    assert q.dtype == np.uint8 and np.array_equal(q, np.arange(256))
    p = _dequantize(np.array([0, 128, 255], np.uint8), np.uint8, 1 / 256, 0)
    np.testing.assert_allclose(p, [0.0, 0.5, 255 / 256])
    e = np.array([-3.0, 0.0, 0.26, 100.0])
    q = _quantize(e, np.int8, 0.1, -5)
    assert q.tolist() == [-35, -5, -2, 127]  # rounded, clipped to int8
    np.testing.assert_allclose(_dequantize(q, np.int8, 0.1, -5)[:3], [-3.0, 0.0, 0.3], atol=1e-6)
    assert _quantize(e, np.float32, 0.0, 0).dtype == np.float32
