"""`export.onnx.int8_nodes` and `quantize_int8` on a small graph built here."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from neipalette_tf.export.onnx import int8_nodes, quantize_int8


def _graph():
    """x -> pre/mul -> block: conv1 -> relu -> conv2 (+ relu) add -> pool -> y, and a float
    `colour` branch on x itself (its relu) and on the pooled features (colour/key conv)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "block/w1"),
             numpy_helper.from_array(rng.normal(size=(8, 8, 3, 3)).astype(np.float32) * 0.2, "block/w2"),
             numpy_helper.from_array(rng.normal(size=(4, 8, 1, 1)).astype(np.float32), "colour/key/w"),
             numpy_helper.from_array(np.array(1 / 255, np.float32), "pre/scale")]
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [helper.make_node("Mul", ["x", "pre/scale"], ["pre/x"], name="pre/mul"),
             helper.make_node("Conv", ["pre/x", "block/w1"], ["block/c1"], name="block/conv1", **pads),
             helper.make_node("Relu", ["block/c1"], ["block/r1"], name="block/relu"),
             helper.make_node("Conv", ["block/r1", "block/w2"], ["block/c2"], name="", **pads),  # tf2onnx-style unnamed
             helper.make_node("Add", ["block/c2", "block/r1"], ["block/sum"], name="block/add"),
             helper.make_node("GlobalAveragePool", ["block/sum"], ["block/pooled"], name="block/pool"),
             helper.make_node("Conv", ["block/pooled", "colour/key/w"], ["colour/key/k"], name="colour/key/conv"),
             helper.make_node("Relu", ["x"], ["colour/x"], name="colour/relu"),
             helper.make_node("ReduceMean", ["colour/x"], ["colour/mean"], name="colour/mean", keepdims=1)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 6, 6])
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("colour/key/k", "colour/mean")]
    return helper.make_model(helper.make_graph(nodes, "g", [x], outputs, inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_int8_nodes_extend_from_the_weighted_layers_and_stop_at_inputs_and_float_scopes():
    model = _graph()
    # pre/mul reads the graph's input and stays float; the unnamed conv gets its output's name; the
    # relu, add and pool between int8 layers are int8; the colour scope is float but for its int8 key
    assert int8_nodes(model, ("colour",)) == ["block/conv1", "block/relu", "block/c2", "block/add", "block/pool"]
    assert int8_nodes(model, ("colour",), ("colour/key",))[-1] == "colour/key/conv"
    assert "colour/relu" not in int8_nodes(model, ("colour",), ("colour/key",))  # fed by x, not by int8 nodes
    assert int8_nodes(model, ("block", "colour")) == []


def test_quantized_graph_keeps_int8_between_layers_and_matches_the_float_one():
    model = _graph()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (24, 3, 6, 6)).astype(np.float32)
    quantized = quantize_int8(model, {"x": x}, ("colour",))
    graph = quantized.graph
    produced_by = {o: n for n in graph.node for o in n.output}
    add = next(n for n in graph.node if n.name == "block/add")
    # the residual add reads dequantised int8 tensors and its sum is quantised again, so ONNX
    # Runtime fuses it into one int8 add (QLinearAdd) instead of running it in float32
    assert all(produced_by[t].op_type == "DequantizeLinear" for t in add.input)
    assert [n.op_type for n in graph.node if add.output[0] in n.input] == ["QuantizeLinear"]
    # the colour branch reads the float input itself, never a quantised copy of it
    relu = next(n for n in graph.node if n.name == "colour/relu")
    assert relu.input == ["x"]
    run = {name: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
           for name, m in (("float", model), ("int8", quantized))}
    got = {name: s.run(None, {"x": x[:4]}) for name, s in run.items()}
    np.testing.assert_array_equal(got["int8"][1], got["float"][1])  # colour/mean: float32 end to end
    key_f, key_q = got["float"][0], got["int8"][0]
    assert np.abs(key_q - key_f).max() < 0.05 * np.abs(key_f).max()
    assert onnx.checker.check_model(quantized) is None


def test_int8_weights_use_seven_bits_so_cpus_without_vnni_do_not_saturate():
    # ONNX Runtime's uint8 x int8 kernels without VNNI sum two products in int16: with weights
    # beyond -64..64 the graph's result would depend on the CPU (the tiny model fell to 85.6 %
    # decision agreement on an AVX2 EPYC). This checks the file, whatever CPU runs the test.
    model = _graph()
    x = np.random.default_rng(2).integers(0, 256, (24, 3, 6, 6)).astype(np.float32)
    quantized = quantize_int8(model, {"x": x}, ("colour",))
    inits = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    weights = [inits[n.input[0]] for n in quantized.graph.node
               if n.op_type == "DequantizeLinear" and inits.get(n.input[0], np.zeros(0)).dtype == np.int8]
    assert len(weights) == 2  # the two int8 convolutions' kernels
    largest = [int(np.abs(w.astype(np.int32)).max()) for w in weights]  # int32: abs(-128) overflows int8
    assert max(largest) <= 64  # 2 * 255 * 64 fits in int16
    assert max(largest) >= 60  # the 7-bit range is used, not shrunk further
