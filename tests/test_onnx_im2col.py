"""Small convolutions as one GEMM in an ONNX graph (`export.onnx_im2col`)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.onnx_im2col import METADATA_KEY, gather_table, small_convs_as_gemm


def _conv_model(c, o, h, w, kernel, bias=True, spatial=None, **attrs):
    """x [n, c, h, w] -> Conv -> Relu -> y; weights from a fixed seed."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(o, c, *kernel)).astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=o).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("Conv", inputs, ["c"], name="conv", kernel_shape=list(kernel), **attrs),
             helper.make_node("Relu", ["c"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c, *(spatial or (h, w))])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", o, "ho", "wo"])
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


CASES = {  # name: (c, o, h, w, kernel, attributes)
    "3x3 pad 1 on 2x2": (16, 8, 2, 2, (3, 3), {"pads": [1, 1, 1, 1]}),
    "3x3 pad 1 on 3x3": (8, 12, 3, 3, (3, 3), {"pads": [1, 1, 1, 1]}),
    "3x3 stride 2 from 6x6": (4, 8, 6, 6, (3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "3x3 stride 2, asymmetric pads": (4, 8, 6, 5, (3, 3), {"pads": [0, 1, 1, 0], "strides": [2, 2]}),
    "1x1 stride 2": (8, 16, 3, 3, (1, 1), {"strides": [2, 2]}),
    "2x3 kernel, no padding": (5, 3, 3, 4, (2, 3), {}),
    "3x3 dilation 2": (4, 4, 5, 5, (3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    "7x7 stride 2 pad 3": (3, 8, 6, 6, (7, 7), {"pads": [3, 3, 3, 3], "strides": [2, 2]}),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_rewritten_conv_computes_the_same(name, bias):
    c, o, h, w, kernel, attrs = CASES[name]
    model = _conv_model(c, o, h, w, kernel, bias=bias, **attrs)
    x = np.random.default_rng(1).normal(size=(3, c, h, w)).astype(np.float32)
    expected = _run(model, x)
    rewritten, count = small_convs_as_gemm(model, max_output_pixels=64)
    onnx.checker.check_model(rewritten)
    assert count == 1
    assert "Conv" not in {n.op_type for n in rewritten.graph.node}
    assert "Gemm" in {n.op_type for n in rewritten.graph.node}
    got = _run(rewritten, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert _run(rewritten, x[:1]).shape[0] == 1  # the batch stays dynamic
    props = {p.key: p.value for p in rewritten.metadata_props}
    assert props[METADATA_KEY].startswith("1 Conv")


def test_large_outputs_and_unknown_sizes_keep_their_conv():
    big = _conv_model(4, 4, 12, 12, (3, 3), pads=[1, 1, 1, 1])  # 144 output pixels
    before = big.SerializeToString()
    model, count = small_convs_as_gemm(big, max_output_pixels=9)
    assert count == 0 and model.SerializeToString() == before
    dynamic = _conv_model(4, 4, 2, 2, (3, 3), spatial=("h", "w"), pads=[1, 1, 1, 1])
    assert small_convs_as_gemm(dynamic, max_output_pixels=9)[1] == 0
    assert small_convs_as_gemm(_conv_model(4, 4, 2, 2, (3, 3), pads=[1, 1, 1, 1]), max_output_pixels=0)[1] == 0


def test_grouped_and_auto_padded_convs_are_left_alone():
    grouped = _conv_model(4, 4, 2, 2, (3, 3), pads=[1, 1, 1, 1], group=2)
    grouped.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w"))
    assert small_convs_as_gemm(grouped, max_output_pixels=9)[1] == 0
    same = _conv_model(4, 4, 2, 2, (3, 3), auto_pad="SAME_UPPER")
    assert small_convs_as_gemm(same, max_output_pixels=9)[1] == 0


def test_convs_sharing_a_weight_share_the_gemm_weight():
    """The two siamese towers use one set of weights; so must the rewritten graph."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 8, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", [x, "w"], [y], name=y, pads=[1, 1, 1, 1])
             for x, y in (("a", "ya"), ("b", "yb"))]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 8, 2, 2]) for n in "ab"]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 8, 2, 2]) for n in ("ya", "yb")]
    model = helper.make_model(helper.make_graph(nodes, "g", ins, outs, [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model, count = small_convs_as_gemm(model, max_output_pixels=9)
    assert count == 2
    weights = [i for i in model.graph.initializer if len(i.dims) == 2 and i.dims[0] == 72]
    assert len(weights) == 1 and "w" not in {i.name for i in model.graph.initializer}


def test_gather_table_points_padding_at_the_zero_pixel():
    table, ho, wo = gather_table(2, 2, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1))
    assert (ho, wo) == (2, 2) and table.shape == (4, 9)
    assert table[0].tolist() == [4, 4, 4, 4, 0, 1, 4, 2, 3]  # output (0, 0): its centre tap is pixel 0
    assert (table == 4).sum() == 4 * 9 - 16  # 16 taps fall inside the 2 x 2 map

