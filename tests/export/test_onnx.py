"""The ONNX files (neipalette_tf/export/onnx.py): exactly the declared inputs, float colours in the int8 files, every backbone converts."""

import json

import numpy as np
import pytest
from helpers import SIZE, keras_p

from neipalette_tf.models.backbones import BACKBONES

pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


def test_onnx_graphs_have_exactly_the_declared_inputs(exported, keras_model, sample_pairs):
    import onnx
    import onnxruntime as ort

    from neipalette_tf.export.onnx_optimize import METADATA_KEY

    out, _ = exported
    expected = {"model": (["top", "bottom"], {"probabilities", "harmony"}),
                "encoder": (["image"], {"embedding"}),
                "head": (["top_embedding", "bottom_embedding"], {"probabilities", "harmony"})}
    for part, (inputs, outputs) in expected.items():
        proto = onnx.load(str(out / f"{part}.onnx"))
        onnx.checker.check_model(proto)
        assert [i.name for i in proto.graph.input] == inputs
        assert {o.name for o in proto.graph.output} == outputs
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
        # at 32 px ResNet18's last two stages run on 2 x 2 and 1 x 1 maps: rewritten as GEMMs
        rewrites = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
        assert (rewrites["small_convs_as_gemm"] > 0) == (part != "head"), (part, rewrites)
        # one backbone pass per graph: `model` runs both towers as one batch (export.savedmodel)
        assert rewrites["fold_zero_pad_into_maxpool"] == (part != "head"), (part, rewrites)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    tops, bottoms, _ = sample_pairs
    p = session.run(["harmony"], {"top": tops.astype("float32"), "bottom": bottoms.astype("float32")})[0]
    np.testing.assert_allclose(p, keras_p(keras_model, tops, bottoms), atol=1e-4)


def test_onnx_int8_files_keep_the_colours_float(exported):
    """`*_int8.onnx` quantise what the int8 TFLite files quantise: the backbone, the attention's
    key convolutions (not in the attention graph) and the head's hidden layer; the colour
    pooling's averaging, the projection, the colour MLP and the logits stay float32."""
    import onnx

    out, _ = exported

    def int8_weights(name):
        graph = onnx.load(str(out / name)).graph
        dequantized = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
        int8 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
        quantised, floats = [], []
        for n in graph.node:
            if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1:
                weight = n.input[1]
                (quantised if dequantized.get(weight) in int8 else floats).append(n.name + " " + weight)
        return quantised, floats

    q, f = int8_weights("model_int8.onnx")
    assert any("resnet18" in n for n in q) and any("key1" in n for n in q)
    assert any("hidden" in n for n in q) and not any("resnet18" in n or "key" in n for n in f)
    assert any("colour_hidden" in n for n in f) and any("logits" in n for n in f) and any("projection" in n for n in f)
    assert not any(w in n for n in q for w in ("colour_hidden", "logits", "projection"))
    q, f = int8_weights("attention_int8.onnx")
    assert any("resnet18" in n for n in q) and any("key1" in n for n in f) and not any("key1" in n for n in q)


@pytest.mark.slow  # one tf2onnx conversion per registered backbone
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_exports_to_onnx_without_leaked_inputs(backbone):
    """A backbone's captured constants stay constants (EfficientNetB0's Normalization layer captures its
    mean / variance as eager tensors, which once leaked out as graph inputs), and ONNX gives Keras' p."""
    import onnxruntime as ort

    from neipalette_tf.export import onnx as onnx_export
    from neipalette_tf.export.savedmodel import endpoints
    from neipalette_tf.models import build_classifier

    model, _ = build_classifier(backbone, SIZE, weights="none")
    proto = onnx_export.convert(*endpoints(model)["serving_default"])
    assert [i.name for i in proto.graph.input] == ["top", "bottom"]
    x = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3)).astype("float32")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    p = session.run(["probabilities"], {"top": x, "bottom": x[::-1].copy()})[0]
    np.testing.assert_allclose(p, model.predict({"top": x, "bottom": x[::-1].copy()}, verbose=0), atol=1e-4)
