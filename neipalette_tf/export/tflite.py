"""TFLite / LiteRT export: float32, float16 weights and full-integer int8.

Every file is converted with `TFLiteConverter.from_saved_model`, one
signature per file (`serving_default` -> `model*.tflite`, `encoder` ->
`encoder*.tflite`, `head` -> `head*.tflite`). Not `from_concrete_functions`:
on this project it silently dropped the weights (a 104 KB file with NaN
outputs).

| format        | files            | weights | activations | inputs / outputs                        |
|---------------|------------------|---------|-------------|-----------------------------------------|
| `tflite`      | `*.tflite`       | float32 | float32     | float32                                 |
| `tflite_fp16` | `*_fp16.tflite`  | float16 (small constants float32) | float32 | float32                 |
| `tflite_int8` | `*_int8.tflite`  | int8    | int8        | uint8 (quantised; scale / zero point in the tensor) |

The float16 files keep their small constants (<= 1,024 values: biases, the
colour path's sRGB and OKLab constants, the normalisation) in float32:
TensorFlow's float16 conversion rounds every float constant, and those
roundings alone moved p(harmonious) by up to 0.0126 on the default run (the
bound is 0.01); with them exact, 0.0005, for a file 0.05 % larger
(`keep_small_constants_float32`).

The int8 files are calibrated on a representative data set of real pairs
(>= 100, from the training split) and come from a SavedModel whose image
inputs record the range 0..255 (`savedmodel._pin_pixel_range`), so the
uint8 image input has scale 1 and zero point 0: camera pixels after the
letterbox go in unchanged.

Mixed precision inside the int8 files: the backbone (the bulk of the
FLOPs) and the colour attention's key convolutions run in int8; the colour
values — OKLab conversion of the pixels, the attention softmax and the
weighted mean colour — the pair head, the temperature and the softmax stay
float32 (`FLOAT_SCOPES`). The harmony rule turns on hue differences of 30°
and chroma differences of ~0.02; an int8 OKLab (steps of ~0.004 over a
0..1 range, then a cube root) cannot carry that, and a quantised SOFTMAX
(fixed 1/256 output step) zeroes a 32 x 32 attention map. The key
convolutions only decide *where* to look (the logits of the attention
map), not *what colour* is averaged, and take 8-bit steps within the
parity bounds (`parity.json`: 99.9 % same decisions on the default run). So
outputs are float32 probabilities. Selective quantisation is TensorFlow's own
(calibrate, then MLIR quantiser with a node deny-list — what
`tf.lite.experimental.QuantizationDebugger` does), then the model's input
type is set to uint8.
"""

import re
import warnings

import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import convert as tflite_convert
from tensorflow.lite.python import util as tflite_util

from neipalette_tf.core.formats import get_format, list_formats
from neipalette_tf.export.flatbuffer import dump, load, opcodes

# Layers whose tensors stay float32 in the int8 files (matched in the
# converted graph's tensor names: ".../colour_pooling_1/..."), and the
# sub-layers among them that are int8 all the same: the head's embedding MLP
# (2 MB of weights, no colour arithmetic) and the colour attention's key
# convolutions (where to look, not what colour; docs/deployment.md, "int8
# thread scaling").
FLOAT_SCOPES = ("colour_pooling", "palette", "embedding", "head", "temperature", "probabilities", "rating")
INT8_SCOPES = ("head/hidden",) + tuple(
    f"colour_pooling/{layer}" for layer in ("key1", "key_d2", "key_d4", "key2", "saliency"))
# The attention graph (`attention_int8.tflite`, what explanations draw) keeps the key convolutions
# float32: int8 keys move a peaked attention map between neighbouring pixels (p95 L1 0.37 against the
# float map on the default run, over parity's 0.3) while the colour it averages moves by ΔE < 0.004;
# the scoring graphs keep them int8 for speed.
ATTENTION_INT8_SCOPES = ("head/hidden",)
# Signatures whose inputs are images (uint8 in the int8 files); the head's
# inputs are the encoder's float32 embeddings (float32 in `head_int8.tflite`
# too, its hidden layer int8 like the full model's).
IMAGE_SIGNATURES = ("serving_default", "encoder", "attention")

PRECISIONS = {name: get_format(name).precision for name in list_formats(family="tflite")}  # core.formats


def file_name(part, fmt):
    """`model_int8.tflite` for part "model" of format "tflite_int8", etc."""
    return get_format(fmt).file_name(part)


def scope_pattern(scopes):
    """Regex for tensor names inside any of `scopes` ("head/hidden" matches ".../head_1/hidden_1/...")."""
    def one(scope):
        return r"/".join(re.escape(part) + r"(_\d+)?" for part in scope.split("/"))

    return re.compile(r"(^|/)(%s)/" % "|".join(one(s) for s in scopes))


def _float_tensors(model_content, float_scopes, int8_scopes=()):
    """Names of the tensors of a TFLite graph in `float_scopes` but not in `int8_scopes`, and
    its outputs (named after the signature, not the layer)."""

    floats, ints = scope_pattern(float_scopes), scope_pattern(int8_scopes) if int8_scopes else None
    interpreter = Interpreter(model_content=model_content)
    outputs = {d["name"] for d in interpreter.get_output_details()}
    return [t["name"] for t in interpreter.get_tensor_details()
            if t["name"] in outputs or (floats.search(t["name"]) and not (ints and ints.search(t["name"])))]


def _quantize_int8(converter, float_scopes, int8_scopes, image_inputs=True):
    """Calibrate, quantise all but `float_scopes` to int8; float32 outputs, and uint8 inputs
    when they are images (float32 embeddings otherwise)."""

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter._experimental_calibrate_only = True  # noqa: SLF001 — TF's selective-quantisation path
    calibrated = converter.convert()
    quantized = tflite_convert.mlir_quantize(
        calibrated, denylisted_nodes=_float_tensors(calibrated, float_scopes, int8_scopes))
    return tflite_util.modify_model_io_type(quantized, tf.uint8 if image_inputs else tf.float32, tf.float32)


SMALL_CONSTANT = 1024  # values; float constants up to this size stay float32 in the float16 files


def keep_small_constants_float32(float16_model, float32_model, max_values=SMALL_CONSTANT):
    """A float16 flatbuffer with its small constants restored to their float32 values.

    TensorFlow's float16 conversion stores every float constant as float16
    behind a DEQUANTIZE op, and is otherwise the float32 conversion op for
    op. So the float32 file of the same signature, aligned op by op, holds
    each constant's exact values: those of at most `max_values` values
    become the DEQUANTIZE output's data, and their DEQUANTIZE goes. If the
    two graphs do not align op for op, the float16 file is returned as it is.
    Returns `(flatbuffer bytes, number of constants restored)`.
    """


    model, reference = load(float16_model), load(float32_model)
    graph, ref_graph = model.subgraphs[0], reference.subgraphs[0]
    dequantized = {int(op.outputs[0]): op for op, code in zip(graph.operators, opcodes(model))
                   if code == schema.BuiltinOperator.DEQUANTIZE}
    ops = [op for op in graph.operators if int(op.outputs[0]) not in dequantized]
    if opcodes(model, ops) != opcodes(reference):
        return float16_model, 0
    restored = set()
    for op, ref_op in zip(ops, ref_graph.operators):
        for t, ref_t in zip(map(int, op.inputs), map(int, ref_op.inputs)):
            if t not in dequantized or t in restored:
                continue
            source = graph.tensors[dequantized[t].inputs[0]]
            data = model.buffers[source.buffer].data
            exact = reference.buffers[ref_graph.tensors[ref_t].buffer].data
            if (source.type == schema.TensorType.FLOAT16 and data is not None and len(data) // 2 <= max_values
                    and exact is not None and len(exact) == 2 * len(data)):
                model.buffers.append(schema.BufferT())
                model.buffers[-1].data = exact
                graph.tensors[t].buffer = len(model.buffers) - 1
                restored.add(t)
    graph.operators = [op for op in graph.operators if int(op.outputs[0]) not in restored]
    read = {int(t) for op in graph.operators for t in op.inputs}
    for t in restored:  # the float16 copies nothing reads any more
        source = int(dequantized[t].inputs[0])
        if source not in read:
            model.buffers[graph.tensors[source].buffer].data = None
    return dump(model), len(restored)


def convert(saved_model_dir, signature_key, precision, representative_data=None, float_scopes=FLOAT_SCOPES,
            float32_model=None):
    """One signature of a SavedModel -> TFLite flatbuffer bytes.

    Args:
        saved_model_dir: the SavedModel (for int8: one written with
            `pin_pixel_range=True`).
        signature_key: "serving_default", "encoder", "head" or "attention".
        precision: "float32", "float16" or "int8".
        representative_data: int8 only; a callable returning an iterable of
            `{input name: float32 array [1, ...]}` samples.
        float_scopes: int8 only; layers that stay float32.
        float32_model: float16 only; this signature's float32 flatbuffer, if
            already converted (its constants are restored into the float16
            file; converted here otherwise).
    """
    if precision not in ("float32", "float16", "int8"):
        raise ValueError(f"unknown precision {precision!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature_key])
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with warnings.catch_warnings():  # calibration runs the deprecated tf.lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        if precision == "float16":
            converter.target_spec.supported_types = [tf.float16]
            float16_model = converter.convert()
            if float32_model is None:
                float32_model = tf.lite.TFLiteConverter.from_saved_model(
                    saved_model_dir, signature_keys=[signature_key]).convert()
            return keep_small_constants_float32(float16_model, float32_model)[0]
        if precision == "int8":
            if representative_data is None:
                raise ValueError("int8 conversion needs representative data")
            converter.representative_dataset = representative_data
            int8_scopes = ATTENTION_INT8_SCOPES if signature_key == "attention" else INT8_SCOPES
            return _quantize_int8(converter, float_scopes, int8_scopes, image_inputs=signature_key in IMAGE_SIGNATURES)
        return converter.convert()


def describe(path):
    """Inputs and outputs of a `.tflite` file, read from the file itself."""
    runner = Interpreter(model_path=path).get_signature_runner()

    def tensor(name, d):
        scale, zero_point = d["quantization"]
        info = {"name": name, "shape": [int(v) for v in d["shape_signature"]], "dtype": d["dtype"].__name__}
        if scale:
            info["quantization"] = {"scale": float(scale), "zero_point": int(zero_point),
                                    "real_value": "scale * (q - zero_point)"}
        return info

    return {"inputs": [tensor(n, d) for n, d in sorted(runner.get_input_details().items())],
            "outputs": [tensor(n, d) for n, d in sorted(runner.get_output_details().items())]}


def xnnpack_coverage(path):
    """How LiteRT runs a `.tflite` file with its default XNNPACK delegate.

    Returns `(partitions, outside, total)`: the number of subgraphs XNNPACK
    took over, the ops it left to TFLite's own kernels, `[(op, output tensor
    name)]`, and the graph's number of ops.
    Every op outside XNNPACK splits the graph (a partition ends, the op runs
    on one thread, the next partition starts): the exported graphs are
    written to need one partition (static-shape reshapes and slices, no
    compare-and-select, no Tensordot; docs/deployment.md, "One XNNPACK
    partition").

    The delegated ops are read off the DELEGATE nodes LiteRT appends to the
    graph (`Interpreter._get_ops_details`, the only view the Python API
    gives): an op is delegated when a DELEGATE node's outputs depend on it
    without passing through that node's inputs.
    """

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()  # noqa: SLF001 — see the docstring
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {int(t): op for op in ops for t in op["outputs"]}
    delegated = set()
    for node in delegates:
        boundary, stack = {int(t) for t in node["inputs"]}, [int(t) for t in node["outputs"]]
        while stack:
            t = stack.pop()
            op = producer.get(t)
            if t in boundary or op is None or op["index"] in delegated:
                continue
            delegated.add(op["index"])
            stack.extend(int(i) for i in op["inputs"] if i >= 0)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    outside = [(op["op_name"], names.get(int(op["outputs"][0]), "")) for op in ops if op["index"] not in delegated]
    return len(delegates), outside, len(ops)


if __name__ == "__main__":  # `python -m neipalette_tf.export.tflite`: the `export-tflite` command
    import runpy

    runpy.run_module("neipalette_tf.commands.export_tflite", run_name="__main__", alter_sys=True)
