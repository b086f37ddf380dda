"""ONNX export with tf2onnx (opset 17, dynamic batch).

The exported functions of `export.savedmodel.endpoints` are traced, then
**frozen before conversion**: `convert_variables_to_constants_v2` turns
every captured value into a graph constant: variables and also captured
eager tensors. The graph inputs are then exactly the function's arguments.

Why: `tf2onnx.convert.from_function` names as graph inputs every
non-resource input of the concrete function, and captured eager tensors
are such inputs. Keras' `Normalization` layer (inside EfficientNetB0)
holds its mean and variance that way, so they leaked out as two extra
ONNX inputs (`.../normalization/Sub/y:0`, `.../Sqrt/x:0`). Freezing
every capture fixes that for any model; `convert` checks the result
has exactly the declared inputs and outputs.

After conversion, `export.onnx_optimize` rewrites the graph for ONNX
Runtime's CPU kernels (the same arithmetic): convolutions on tiny feature
maps become one GEMM each, constants are shaped for fast broadcasting, and
a zero `Pad` before a max pool is folded into it. The graph's metadata and
the model card say what each pass changed.

Files: `model.onnx` (`top`, `bottom` -> `probabilities`, `harmony`),
`encoder.onnx` (`image` -> `embedding`), `head.onnx` (`top_embedding`,
`bottom_embedding` -> `probabilities`, `harmony`); the batch dimension
is named `batch`.

`onnx_int8` (`model_int8.onnx`, ...) is the same graph quantised for ONNX
Runtime by `quantize_int8`: static QDQ, int8 weights per output channel and
uint8 activations calibrated on the export's calibration pairs (MinMax), with
the float32 scopes of the int8 TFLite files (`tflite.FLOAT_SCOPES`: the
colour path but for its key convolutions, the head but for its hidden layer).
Inputs and outputs stay float32. Residual adds, ReLUs and pools between int8
layers run on int8 too (`int8_nodes`), and the int8 graph skips the tiny-map
GEMM rewrite (`INT8_MAX_OUTPUT_PIXELS`). Why a second int8 format: on x86 CPUs
without AVX-512 VNNI, XNNPACK's int8 convolutions (the TFLite int8 files)
gain ~1.3x over float32, ONNX Runtime's (MLAS, `vpmaddubsw`) ~2x
(docs/benchmarks.md, "int8 on AVX2").
"""

import json
import logging
import os
import tempfile

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from neipalette_tf.core.formats import get_format
from neipalette_tf.export.onnx_optimize import MAX_OUTPUT_PIXELS, METADATA_KEY, optimize
from neipalette_tf.export.tflite import scope_pattern

OPSET = 17
BATCH_DIM = "batch"
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
CALIBRATION_BATCH = 16
# The int8 graphs skip `small_convs_as_gemm`: ONNX Runtime runs an int8 convolution on a tiny
# map faster as its NHWC `QLinearConv` than as im2col + `QGemm` (docs/benchmarks.md, "int8 on
# AVX2"), where the float32 graph gains from the rewrite.
INT8_MAX_OUTPUT_PIXELS = 0
INT8_METADATA_KEY = "neipalette_int8"


def file_name(part, fmt="onnx"):
    """`encoder_int8.onnx` for part "encoder" of format "onnx_int8" (`core.formats`)."""
    return get_format(fmt).file_name(part)


def freeze(fn, input_signature):
    """Trace `fn` and freeze all its captures -> (GraphDef, input names, output names).

    The names map graph tensors ("top:0", "Identity_1:0") to the names the
    ONNX graph should have ("top", "probabilities").
    """
    concrete = tf.function(fn, input_signature=input_signature).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    if len(frozen.inputs) != len(input_signature):
        leftover = [t.name for t in frozen.inputs[len(input_signature):]]
        raise ValueError(f"captured values are still graph inputs after freezing: {leftover}")
    inputs = {t.name: spec.name for t, spec in zip(frozen.inputs, input_signature)}
    keys = sorted(concrete.structured_outputs)  # a dict: outputs come in sorted key order
    outputs = {t.name: key for t, key in zip(frozen.outputs, keys, strict=True)}
    return frozen.graph.as_graph_def(), inputs, outputs


def _name_batch_dims(model_proto):
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


def convert(fn, input_signature, optimize_graph=True):
    """A function of `endpoints` -> a checked `onnx.ModelProto`.

    `optimize_graph=False` keeps tf2onnx's graph as it is (without
    `export.onnx_optimize`'s passes), for comparisons.
    """
    graph_def, inputs, outputs = freeze(fn, input_signature)
    model_proto, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=list(inputs), output_names=list(outputs), opset=OPSET,
        tensors_to_rename={**inputs, **outputs})
    _name_batch_dims(model_proto)
    if optimize_graph:
        optimize(model_proto)
    onnx.checker.check_model(model_proto)
    got_in = sorted(i.name for i in model_proto.graph.input)
    got_out = sorted(o.name for o in model_proto.graph.output)
    if got_in != sorted(inputs.values()) or got_out != sorted(outputs.values()):
        raise ValueError(f"ONNX graph has inputs {got_in} and outputs {got_out}; expected "
                         f"{sorted(inputs.values())} and {sorted(outputs.values())}")
    return model_proto


def optimized(model_proto, max_output_pixels=MAX_OUTPUT_PIXELS):
    """A checked copy of `convert(..., optimize_graph=False)`'s graph with `export.onnx_optimize`'s
    passes run on it (`max_output_pixels`: the largest map `small_convs_as_gemm` rewrites)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model_proto)
    optimize(copy, max_output_pixels)
    onnx.checker.check_model(copy)
    return copy


def int8_nodes(model_proto, float_scopes, int8_scopes=()):
    """Names of the nodes to quantise, in graph order.

    A node is in a scope when its name or, for the nodes tf2onnx and `onnx_optimize` name
    after themselves (`Conv__204`, ""), its weight's name (Conv / Gemm / MatMul) or its
    output's name (other ops) is. Conv / Gemm / MatMul nodes are quantised unless they are
    in `float_scopes` and not in `int8_scopes`. Every other node under the same rule is
    quantised when each of its non-constant inputs comes from a quantised node: residual
    adds, ReLUs, pools and reshapes between int8 layers then pass int8 tensors on, without a
    DequantizeLinear / QuantizeLinear pair around them, while nodes fed by the graph's
    inputs (the images the colour path reads) or by float nodes stay float. Unnamed nodes
    are named after their first output."""
    floats = scope_pattern(float_scopes)
    ints = scope_pattern(int8_scopes) if int8_scopes else None
    graph = model_proto.graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    names, int8_tensors = [], set()
    for node in graph.node:  # ONNX graphs list nodes in topological order
        if not node.name:
            node.name = node.output[0]
        if node.op_type == "Constant":
            continue
        weighted = node.op_type in QUANTIZED_OPS
        scopes = [node.name, *(node.input[1:2] if weighted else node.output[:1])]
        in_float = any(floats.search(t) for t in scopes) and not (ints and any(ints.search(t) for t in scopes))
        if in_float:
            continue
        if not weighted:
            data = [t for t in node.input if t and t not in constants]
            if not data or not all(t in int8_tensors for t in data):
                continue
        names.append(node.name)
        int8_tensors.update(node.output)
    return names


class _Feeds:
    """onnxruntime.quantization's CalibrationDataReader over a dict of equal-length arrays."""

    def __init__(self, arrays, batch=CALIBRATION_BATCH):
        self.arrays, self.batch, self.at = arrays, batch, 0

    def get_next(self):
        n = len(next(iter(self.arrays.values())))
        if self.at >= n:
            return None
        feed = {k: np.ascontiguousarray(v[self.at:self.at + self.batch], dtype=np.float32)
                for k, v in self.arrays.items()}
        self.at += self.batch
        return feed


def quantize_int8(model_proto, calibration, float_scopes, int8_scopes=()):
    """A float `onnx.ModelProto` -> its int8 QDQ copy (a new ModelProto) for ONNX Runtime.

    `calibration`: `{input name: array [N, ...]}`, run through the float graph to
    choose the activation ranges (MinMax). Weights are int8 per output channel,
    activations uint8; the nodes of `float_scopes` (but not `int8_scopes`) stay
    float32, and so do the graph's inputs and outputs.

    The weights use 7 bits, -64..64 (`reduce_range`). On x86 CPUs without VNNI,
    ONNX Runtime's uint8 x int8 kernels add pairs of products in int16
    (`vpmaddubsw`), and 255 * (-128) * 2 does not fit: full-range weights
    saturate there. On the 2026-12-03 AVX2 EPYC (Zen 3) the tiny test model's
    int8 graph agreed with Keras on 85.6 % of decisions with 8-bit weights.
    With 7 bits a pair sums to at most 2 * 255 * 64 = 32,640, so every CPU
    computes the same int8 result.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # deferred: only int8 needs it

    source = onnx.ModelProto()
    source.CopyFrom(model_proto)
    nodes = int8_nodes(source, float_scopes, int8_scopes)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(prefix="neipalette-onnx-int8-") as tmp:
        out = os.path.join(tmp, "int8.onnx")
        root.setLevel(logging.ERROR)  # its advice to run its pre-processing first: the graph is optimised already
        try:
            quantize_static(source, out, _Feeds(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_quantize=nodes,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        finally:
            root.setLevel(level)
        quantized = onnx.load(out)
    rewrites = {p.key: p.value for p in source.metadata_props}
    del quantized.metadata_props[:]
    for key, value in {**rewrites, INT8_METADATA_KEY: json.dumps({"int8_nodes": len(nodes)})}.items():
        quantized.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(quantized)
    return quantized


def describe(path):
    """Inputs and outputs of an `.onnx` file, read from the file itself."""
    model_proto = onnx.load(path, load_external_data=False)

    def tensor(value):
        t = value.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in t.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        return {"name": value.name, "shape": shape, "dtype": dtype}

    described = {"inputs": [tensor(v) for v in model_proto.graph.input],
                 "outputs": [tensor(v) for v in model_proto.graph.output],
                 "opset": max(o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx"))}
    rewrites = {p.key: p.value for p in model_proto.metadata_props}
    if METADATA_KEY in rewrites:
        described["graph_rewrites"] = json.loads(rewrites[METADATA_KEY])
    if INT8_METADATA_KEY in rewrites:
        described["int8"] = json.loads(rewrites[INT8_METADATA_KEY])
    return described
