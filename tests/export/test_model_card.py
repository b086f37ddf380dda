"""`model_card.json` (neipalette_tf/export/model_card.py) of the tiny export."""

import json

import pytest
from helpers import SIZE


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


def test_model_card(exported, run):
    out, report = exported
    card = json.loads((out / "model_card.json").read_text())
    assert card["labels"] == ["clashing", "harmonious"]
    assert (card["image_size"], card["pairing"], card["backbone"]) == (SIZE, "siamese", "resnet18")
    assert "pad" in card["preprocessing"]["resize"] and "border" in card["preprocessing"]["resize"]
    assert card["preprocessing"]["value_range"] == [0, 255]
    assert card["source"]["model"] == str(run / "model.keras") and card["source"]["metrics"]["n"] == 160
    assert card["parity"] == json.loads(json.dumps(report))
    assert set(card["artifacts"]) == {"savedmodel", "tflite", "tflite_fp16", "tflite_int8", "onnx", "onnx_int8"}
    int8 = card["artifacts"]["tflite_int8"]
    assert {p: e["file"] for p, e in int8.items()} == {
        "model": "model_int8.tflite", "encoder": "encoder_int8.tflite", "head": "head_int8.tflite",
        "attention": "attention_int8.tflite"}
    top = next(t for t in int8["model"]["inputs"] if t["name"] == "top")
    assert top["dtype"] == "uint8" and top["shape"] == [-1, SIZE, SIZE, 3] and top["value_range"] == [0, 255]
    assert top["quantization"]["scale"] == 1.0 and top["quantization"]["zero_point"] == 0
    onnx_outputs = {t["name"]: t for t in card["artifacts"]["onnx"]["model"]["outputs"]}
    assert onnx_outputs["probabilities"]["shape"] == ["batch", 2] and onnx_outputs["harmony"]["meaning"]
    assert card["artifacts"]["savedmodel"]["head"]["signature"] == "head"
    assert card["artifacts"]["onnx"]["model"]["graph_rewrites"]["small_convs_as_gemm"] > 0
    onnx_int8 = card["artifacts"]["onnx_int8"]
    assert {p: e["file"] for p, e in onnx_int8.items()} == {
        "model": "model_int8.onnx", "encoder": "encoder_int8.onnx", "head": "head_int8.onnx",
        "attention": "attention_int8.onnx"}
    assert [t["dtype"] for t in onnx_int8["model"]["inputs"]] == ["float32", "float32"]  # quantised inside
    assert onnx_int8["model"]["int8"]["int8_nodes"] > 0 and onnx_int8["model"]["graph_rewrites"]
