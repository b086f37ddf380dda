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
"""

import json

import onnx
import tensorflow as tf
import tf2onnx
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from neipalette_tf.export.onnx_optimize import METADATA_KEY, optimize

OPSET = 17
BATCH_DIM = "batch"


def file_name(part):
    return f"{part}.onnx"


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
    return described
