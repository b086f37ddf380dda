"""TFLite / LiteRT export: float32, float16 weights and full-integer int8.

Every file is converted with `TFLiteConverter.from_saved_model`, one
signature per file (`serving_default` -> `model*.tflite`, `encoder` ->
`encoder*.tflite`, `head` -> `head*.tflite`). Not `from_concrete_functions`:
on this project it silently dropped the weights (a 104 KB file with NaN
outputs).

| format        | files            | weights | activations | inputs / outputs                        |
|---------------|------------------|---------|-------------|-----------------------------------------|
| `tflite`      | `*.tflite`       | float32 | float32     | float32                                 |
| `tflite_fp16` | `*_fp16.tflite`  | float16 | float32     | float32                                 |
| `tflite_int8` | `*_int8.tflite`  | int8    | int8        | uint8 (quantised; scale / zero point in the tensor) |

The int8 files are calibrated on a representative data set of real pairs
(>= 100, from the training split) and come from a SavedModel whose image
inputs record the range 0..255 (`savedmodel._pin_pixel_range`), so the
uint8 image input has scale 1 and zero point 0: camera pixels after the
letterbox go in unchanged. Outputs are uint8 with their scale and zero
point (softmax: scale 1/256, zero point 0); `neipalette_tf.runtime`
dequantises them.
"""

import warnings

import tensorflow as tf

PRECISIONS = {"tflite": "float32", "tflite_fp16": "float16", "tflite_int8": "int8"}
_SUFFIX = {"float32": "", "float16": "_fp16", "int8": "_int8"}


def file_name(part, fmt):
    """`model_int8.tflite` for part "model" of format "tflite_int8", etc."""
    return f"{part}{_SUFFIX[PRECISIONS[fmt]]}.tflite"


def convert(saved_model_dir, signature_key, precision, representative_data=None):
    """One signature of a SavedModel -> TFLite flatbuffer bytes.

    Args:
        saved_model_dir: the SavedModel (for int8: one written with
            `pin_pixel_range=True`).
        signature_key: "serving_default", "encoder" or "head".
        precision: "float32", "float16" or "int8".
        representative_data: int8 only; a callable returning an iterable of
            `{input name: float32 array [1, ...]}` samples.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature_key])
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if representative_data is None:
            raise ValueError("int8 conversion needs representative data")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif precision != "float32":
        raise ValueError(f"unknown precision {precision!r}")
    with warnings.catch_warnings():  # calibration runs the deprecated tf.lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


def describe(path):
    """Inputs and outputs of a `.tflite` file, read from the file itself."""
    from ai_edge_litert.interpreter import Interpreter

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
