"""The export formats, one spec each: the one list every part of the project reads.

A format is a `FormatSpec` registered once here (timm's `register_model` /
`list_models`, as data). Everything that used to keep its own list derives
it from the registry:

| reads it                                   | what it takes                                   |
|--------------------------------------------|-------------------------------------------------|
| `export.exporter` (`FORMATS`, `Builder`, `runner`, `describe`, `final_paths`) | names, family (which converter builds it, which runtime checks it), file names |
| `export.tflite.PRECISIONS`, `export.onnx.file_name` | precision and file name of their family's formats |
| `export.parity` (`RULES`, `ATTENTION_RULES`, `RATING_RULES`) | each format's parity, attention and rating bounds |
| `export.bench.RUNTIME_FORMATS`, `export.arm64.FORMATS` / `INT8_FORMATS` | the TF-free formats, and which of them are int8 |
| `predictors.runtime` (`GRAPH_TYPES`, `format_of`) | the TF-free families' file suffixes, a file name's format |
| `commands.export` (`--formats`)            | the names                                       |

A new format of an existing family (say an int8 SavedModel, or `onnx_fp16`)
is one `register_format` line here plus its branch in its family's converter;
a new family also needs a converter module in `neipalette_tf/export/`, a
`Builder` method of the family's name, and (TF-free) a graph type in
`predictors/runtime.GRAPH_TYPES`. The contract tests
(tests/export/test_formats.py) are parametrised over `list_formats()`: a new
format is tested without a new test, and they say what is missing.

TensorFlow-free and import-free: the runtime, the service and `neipalette --help` read it.
"""

import os
from typing import NamedTuple

FAMILIES = ("savedmodel", "tflite", "onnx")
# The tag a precision adds to a file name: `model_fp16.tflite`, `encoder_int8.onnx`.
PRECISION_TAGS = {"float32": "", "float16": "_fp16", "int8": "_int8"}
SAVED_MODEL_DIR = "saved_model"
SAVED_MODEL_VERSION = "1"
PARTS = ("model", "encoder", "head", "attention")  # the graphs an export holds (siamese models: all four)


class FormatSpec(NamedTuple):
    """One export format.

    name: the format's name in `--formats`, the model card and parity.json.
    family: "savedmodel", "tflite" or "onnx": the converter module (`neipalette_tf/export/<family>.py`,
        `Builder.<family>`) and the runtime that reads the files.
    precision: "float32", "float16" or "int8".
    suffix: the files' extension (".tflite", ".onnx"; "" for the SavedModel folder).
    tf_free: the TensorFlow-free runtime reads it (`predictors/runtime.py`), so `export.bench` times it
        without TensorFlow and `export.arm64` checks it on ARM64 kernels.
    parity: the bounds of its p(harmonious) against Keras (`export.parity.compare`): `max_abs_diff`,
        `min_agreement` (same decisions), `max_auc_diff`.
    attention: the bounds of its read colours (OKLab ΔE), attention maps (L1) and palettes against
        Keras' (`export.parity.compare_attention`; max or 95th percentile).
    rating: the bounds of a people-trained model's rating (1..5) against Keras'.
    """

    name: str
    family: str
    precision: str
    suffix: str
    tf_free: bool
    parity: dict
    attention: dict
    rating: dict

    @property
    def int8(self):
        return self.precision == "int8"

    def file_name(self, part):
        """The file (or folder) of `part` inside an export folder: `encoder_int8.onnx`, `saved_model/1`."""
        if self.family == "savedmodel":
            return os.path.join(SAVED_MODEL_DIR, SAVED_MODEL_VERSION)
        return f"{part}{PRECISION_TAGS[self.precision]}{self.suffix}"


_FORMATS = {}


def register_format(spec):
    """Add `spec` to the registry (once per name); returns it."""
    if spec.name in _FORMATS:
        raise ValueError(f"export format {spec.name!r} is registered twice")
    if spec.family not in FAMILIES or spec.precision not in PRECISION_TAGS:
        raise ValueError(f"export format {spec.name!r}: family {spec.family!r} / precision {spec.precision!r} unknown")
    _FORMATS[spec.name] = spec
    return spec


def get_format(name):
    """The spec of format `name` (KeyError naming the registered ones)."""
    try:
        return _FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown export format {name!r} (registered: {', '.join(_FORMATS)})") from None


def list_formats(family=None, tf_free=None, precision=None):
    """The names of the registered formats, in registration order, optionally filtered."""
    return tuple(s.name for s in _FORMATS.values()
                 if (family is None or s.family == family) and (tf_free is None or s.tf_free == tf_free)
                 and (precision is None or s.precision == precision))


def format_of(path):
    """The TF-free format of a model file from its name (`model_int8.onnx` -> "onnx_int8"), or None."""
    name = os.path.basename(os.fspath(path))
    stem, suffix = os.path.splitext(name)
    candidates = [s for s in _FORMATS.values() if s.tf_free and s.suffix == suffix]
    tagged = [s for s in candidates if PRECISION_TAGS[s.precision] and PRECISION_TAGS[s.precision] in stem]
    plain = [s for s in candidates if not PRECISION_TAGS[s.precision]]
    found = tagged or plain
    return found[0].name if found else None


# Parity bounds, by how a format computes (docs/deployment.md, "Parity"): float32 graphs to rounding,
# float16 weights to their precision, int8 graphs by the ranking and decisions they keep.
FLOAT32_PARITY = {"max_abs_diff": 1e-4, "min_agreement": 1.0}
FLOAT16_PARITY = {"max_abs_diff": 1e-2}
INT8_PARITY = {"max_auc_diff": 0.01, "min_agreement": 0.97}
# The palette (raw entries, matched): float graphs to rounding (a pixel on the edge between two
# entries may change sides: one pooled pixel's weight of share); int8 graphs as their attention moves.
_FLOAT_PALETTE = {"max_palette_delta_e": 1e-3, "max_palette_share_diff": 0.02}
_INT8_PALETTE = {"p95_palette_delta_e": 0.03, "p95_palette_share_diff": 0.15}
FLOAT32_ATTENTION = {"max_colour_delta_e": 1e-4, "max_attention_l1": 1e-3, **_FLOAT_PALETTE}
FLOAT16_ATTENTION = {"max_colour_delta_e": 5e-3, "max_attention_l1": 0.05,
                     "p95_palette_delta_e": 0.01, "p95_palette_share_diff": 0.05}
INT8_ATTENTION = {"p95_colour_delta_e": 0.02, "max_colour_delta_e": 0.06, "p95_attention_l1": 0.3, **_INT8_PALETTE}
# People-trained models' `rating` (1..5) against Keras': float graphs to rounding, int8 graphs
# within the int8 colour bounds above times the rating's steepest slope in colour (~5 per unit ΔE).
FLOAT32_RATING = {"max_abs_diff": 1e-3}
FLOAT16_RATING = {"max_abs_diff": 0.05}
INT8_RATING = {"p95_abs_diff": 0.1, "max_abs_diff": 0.3}

FLOAT32 = {"precision": "float32", "parity": FLOAT32_PARITY, "attention": FLOAT32_ATTENTION, "rating": FLOAT32_RATING}
FLOAT16 = {"precision": "float16", "parity": FLOAT16_PARITY, "attention": FLOAT16_ATTENTION, "rating": FLOAT16_RATING}
INT8 = {"precision": "int8", "parity": INT8_PARITY, "attention": INT8_ATTENTION, "rating": INT8_RATING}

register_format(FormatSpec("savedmodel", "savedmodel", suffix="", tf_free=False, **FLOAT32))
register_format(FormatSpec("tflite", "tflite", suffix=".tflite", tf_free=True, **FLOAT32))
register_format(FormatSpec("tflite_fp16", "tflite", suffix=".tflite", tf_free=True, **FLOAT16))
register_format(FormatSpec("tflite_int8", "tflite", suffix=".tflite", tf_free=True, **INT8))
register_format(FormatSpec("onnx", "onnx", suffix=".onnx", tf_free=True, **FLOAT32))
register_format(FormatSpec("onnx_int8", "onnx", suffix=".onnx", tf_free=True, **INT8))
