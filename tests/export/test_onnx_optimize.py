"""ONNX graph passes for ONNX Runtime's CPU kernels (`export.onnx_optimize`)."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from neipalette_tf.export.onnx_optimize import (
    METADATA_KEY,
    broadcast_constants,
    fold_zero_pad_into_maxpool,
    gather_table,
    optimize,
    small_convs_as_gemm,
)


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
    rewritten, changed = optimize(model, max_output_pixels=64)
    count = changed["small_convs_as_gemm"]
    onnx.checker.check_model(rewritten)
    assert count == 1
    assert "Conv" not in {n.op_type for n in rewritten.graph.node}
    assert "Gemm" in {n.op_type for n in rewritten.graph.node}
    got = _run(rewritten, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert _run(rewritten, x[:1]).shape[0] == 1  # the batch stays dynamic
    props = {p.key: p.value for p in rewritten.metadata_props}
    assert json.loads(props[METADATA_KEY]) == changed


def test_large_outputs_and_unknown_sizes_keep_their_conv():
    big = _conv_model(4, 4, 12, 12, (3, 3), pads=[1, 1, 1, 1])  # 144 output pixels
    before = big.SerializeToString()
    model, changed = optimize(big, max_output_pixels=9)
    assert not any(changed.values()) and model.SerializeToString() == before
    dynamic = _conv_model(4, 4, 2, 2, (3, 3), spatial=("h", "w"), pads=[1, 1, 1, 1])
    assert small_convs_as_gemm(dynamic, max_output_pixels=9) == 0
    assert small_convs_as_gemm(_conv_model(4, 4, 2, 2, (3, 3), pads=[1, 1, 1, 1]), max_output_pixels=0) == 0


def test_grouped_and_auto_padded_convs_are_left_alone():
    grouped = _conv_model(4, 4, 2, 2, (3, 3), pads=[1, 1, 1, 1], group=2)
    grouped.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w"))
    assert small_convs_as_gemm(grouped, max_output_pixels=9) == 0
    same = _conv_model(4, 4, 2, 2, (3, 3), auto_pad="SAME_UPPER")
    assert small_convs_as_gemm(same, max_output_pixels=9) == 0


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
    model, changed = optimize(model, max_output_pixels=9)
    assert changed["small_convs_as_gemm"] == 2
    weights = [i for i in model.graph.initializer if len(i.dims) == 2 and i.dims[0] == 72]
    assert len(weights) == 1 and "w" not in {i.name for i in model.graph.initializer}


def test_gather_table_points_padding_at_the_zero_pixel():
    table, ho, wo = gather_table(2, 2, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1))
    assert (ho, wo) == (2, 2) and table.shape == (4, 9)
    assert table[0].tolist() == [4, 4, 4, 4, 0, 1, 4, 2, 3]  # output (0, 0): its centre tap is pixel 0
    assert (table == 4).sum() == 4 * 9 - 16  # 16 taps fall inside the 2 x 2 map



def _graph(nodes, inputs, outputs, initializers):
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, initializers),
                             opset_imports=[helper.make_opsetid("", 17)])


def _value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _outputs(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_broadcast_constants_reshapes_scalars_and_tiles_short_runs():
    """Same values, same outputs; only the constants' shapes change (ORT's slow broadcast paths)."""
    rng = np.random.default_rng(0)
    consts = {"s": np.float32(0.5), "mean": rng.normal(size=3).astype(np.float32),
              "wide": rng.normal(size=128).astype(np.float32)}
    nodes = [helper.make_node("Sub", ["x", "s"], ["a"]),        # [n, 4, 4, 1] - scalar
             helper.make_node("Mul", ["mean", "img"], ["b"]),   # [3] * [n, 5, 5, 3], constant first
             helper.make_node("Add", ["wide", "feat"], ["c"]),  # a long run already: left alone
             helper.make_node("Max", ["x", "dyn"], ["d"])]      # no constant: left alone
    inputs = [_value("x", ["n", 4, 4, 1]), _value("img", ["n", 5, 5, 3]), _value("feat", ["n", 128]),
              _value("dyn", ["n", 4, 4, 1])]
    outputs = [_value(o, None) for o in "abcd"]
    for o in outputs:
        o.type.tensor_type.elem_type = TensorProto.FLOAT
    model = _graph(nodes, inputs, outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    feeds = {"x": rng.normal(size=(2, 4, 4, 1)).astype(np.float32), "img": rng.normal(size=(2, 5, 5, 3)).astype(np.float32),
             "feat": rng.normal(size=(2, 128)).astype(np.float32), "dyn": rng.normal(size=(2, 4, 4, 1)).astype(np.float32)}
    expected = _outputs(model, feeds)
    assert broadcast_constants(model) == 2
    shapes = {n.op_type: [list(i.dims) for i in model.graph.initializer if i.name in n.input] for n in model.graph.node}
    assert shapes == {"Sub": [[1, 1, 1, 1]], "Mul": [[1, 5, 5, 3]], "Add": [[128]], "Max": []}
    for got, want in zip(_outputs(model, feeds), expected):
        np.testing.assert_array_equal(got, want)


def _pad_pool_model(pads, kernel=(3, 3), source="Relu", **pool_attrs):
    nodes = [helper.make_node(source, ["x"], ["r"]),
             helper.make_node("Pad", ["r", "pads"], ["p"]),
             helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=list(kernel), strides=[2, 2], **pool_attrs)]
    y = _value("y", None)
    y.type.tensor_type.elem_type = TensorProto.FLOAT
    return _graph(nodes, [_value("x", ["n", 2, 7, 7])], [y], [numpy_helper.from_array(np.array(pads, np.int64), "pads")])


def test_zero_pad_after_relu_folds_into_maxpool():
    x = np.random.default_rng(0).normal(size=(2, 2, 7, 7)).astype(np.float32)
    model = _pad_pool_model([0, 0, 1, 1, 0, 0, 1, 1])
    expected = _outputs(model, {"x": x})[0]
    assert fold_zero_pad_into_maxpool(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Relu", "MaxPool"]
    pool = model.graph.node[1]
    assert helper.get_attribute_value(next(a for a in pool.attribute if a.name == "pads")) == [1, 1, 1, 1]
    np.testing.assert_array_equal(_outputs(model, {"x": x})[0], expected)


@pytest.mark.parametrize("pads, source, pool_attrs", [
    ([0, 0, 1, 1, 0, 0, 1, 1], "Sigmoid", {}),               # not known to be >= 0 by this pass: a Relu is required
    ([0, 1, 1, 1, 0, 0, 1, 1], "Relu", {}),                  # pads the channels
    ([0, 0, 3, 3, 0, 0, 3, 3], "Relu", {}),                  # a window of padding only
    ([0, 0, 1, 1, 0, 0, 1, 1], "Relu", {"ceil_mode": 1}),    # an extra last window may hold padding only
    ([0, 0, 1, 1, 0, 0, 1, 1], "Relu", {"dilations": [2, 2]}),
])
def test_pads_that_cannot_fold_stay(pads, source, pool_attrs):
    model = _pad_pool_model(pads, source=source, **pool_attrs)
    assert fold_zero_pad_into_maxpool(model) == 0
    assert [n.op_type for n in model.graph.node] == [source, "Pad", "MaxPool"]


def test_initializers_read_only_inside_a_subgraph_are_kept():
    """An `If` branch may read an outer initializer: pruning must look inside subgraphs."""
    branch_out = _value("z", [1])
    then_branch = helper.make_graph([helper.make_node("Identity", ["outer"], ["z"])], "then", [], [branch_out])
    else_branch = helper.make_graph([helper.make_node("Identity", ["outer"], ["z"])], "else", [], [branch_out])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
             helper.make_node("Sub", ["x", "s"], ["d"])]
    model = _graph(nodes, [cond, _value("x", ["n", 4, 4, 1])], [_value("y", [1]), _value("d", ["n", 4, 4, 1])],
                   [numpy_helper.from_array(np.ones(1, np.float32), "outer"),
                    numpy_helper.from_array(np.float32(2.0), "s")])
    model, changed = optimize(model)
    assert changed["broadcast_constants"] == 1
    assert {i.name for i in model.graph.initializer} == {"outer", "s/as_1x1x1x1"}
    onnx.checker.check_model(model)
    x = np.ones((2, 4, 4, 1), np.float32)
    y, d = _outputs(model, {"cond": np.array(True), "x": x})
    assert y.tolist() == [1.0] and (d == -1).all()
