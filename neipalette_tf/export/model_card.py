"""`model_card.json`: what an app needs to know to use the exported files.

One card per export folder. Everything in it is read from somewhere, never
restated: tensor names, shapes, dtypes and quantisation from the exported
files themselves; image size, backbone, pairing and normalisation from the
model; the resize method from `neipalette_tf.core.preprocessing`'s docs; the
source run's metrics from its `metrics.json`; the parity report from the
check the export just ran. `neipalette_tf.predictors.runtime` reads it for the image
size and to find each format's encoder and head files.
"""

import json
import os
import time

import numpy as np

from neipalette_tf.core import preprocessing
from neipalette_tf.core.io_utils import sha256_file
from neipalette_tf.data.manifest import LABEL_NAMES
from neipalette_tf.core.vocabulary import CARD_NAME  # noqa: F401 - the file name, shared with the runtime

IMAGE_INPUTS = ("top", "bottom", "image")
OUTPUT_MEANINGS = {
    "probabilities": "[N, 2] softmax over labels (clashing, harmonious)",
    "harmony": "[N] p(harmonious) = probabilities[:, 1]; harmonious when >= threshold",
    "embedding": "[N, D] garment embedding; the head compares two of them",
    "attention": "[N, P] colour attention weights over the (S/2) x (S/2) pooled pixels, row-major, sum 1",
    "palette": "[N, K, 4] each garment's K palette entries: OKLab L, a, b and share of the attention (rows "
               "sum 1; unsorted: merge entries closer than dE 0.07, drop shares < 0.06, sort by share)",
    "rating": "[N] people's predicted rating of the pair, 1 (dislike) .. 5 (like), from the garments' main "
              "colours (people-trained models only)",
}


def labels_of(model):
    """Where the model's labels came from, and the licence they carry."""
    from neipalette_tf.colour import people

    if getattr(model, "harmony", "rule-v1") == "people":
        return {"source": "people",
                "meaning": "harmonious when people would rate the pair at least "
                           f"{people.RATING_THRESHOLD:g} of 5 (the people model of colour compatibility, "
                           "neipalette_tf.colour.people, on the garments' main colours)",
                "rating_threshold": people.RATING_THRESHOLD,
                "data_source": people.ATTRIBUTION,
                "licence": people.LICENCE + ": this model, trained on labels derived from these ratings, "
                           "is for non-commercial use only; train with --harmony rule-v1 for a permissive model"}
    return {"source": "rule-v1", "meaning": "harmony rule v1 (docs/harmony_rule.md) on the garments' main colours",
            "licence": "the project's own rule: no licence terms beyond the code's"}


def _resize_method():
    """The paragraph of preprocessing.py's docs that states how images are resized."""
    for paragraph in preprocessing.__doc__.split("\n\n"):
        if "pad, don't crop" in paragraph:
            return " ".join(paragraph.split())
    return " ".join(preprocessing.letterbox.__doc__.split())


def _sha256(path):
    return sha256_file(path)


def _annotate(io):
    """Add value range / meaning to the tensors of a description."""
    for tensor in io["inputs"]:
        if tensor["name"] in IMAGE_INPUTS:
            tensor["value_range"] = [int(np.iinfo(np.uint8).min), int(np.iinfo(np.uint8).max)]
            tensor["meaning"] = "RGB pixels of neipalette_tf.core.preprocessing.load_image (letterboxed, uint8 values)"
        else:
            tensor["meaning"] = "an embedding from this format's encoder"
    for tensor in io["outputs"]:
        tensor["meaning"] = OUTPUT_MEANINGS.get(tensor["name"], "")
    return io


def describe_saved_model(signatures):
    """Inputs and outputs of every signature of a loaded SavedModel."""
    def spec(name, s):
        return {"name": name, "shape": [-1 if d is None else int(d) for d in s.shape], "dtype": s.dtype.name}

    result = {}
    for key, fn in signatures.items():
        inputs = fn.structured_input_signature[1]
        result[key] = {"inputs": [spec(n, s) for n, s in sorted(inputs.items())],
                       "outputs": [spec(n, s) for n, s in sorted(fn.structured_outputs.items())]}
    return result


def source_run(model_path):
    """The trained model and its run: path, sha256, config and test metrics."""
    folder = os.path.dirname(os.path.abspath(model_path))
    source = {"model": os.path.abspath(model_path), "sha256": _sha256(model_path), "run": folder}
    metrics_path = os.path.join(folder, "metrics.json")
    if os.path.isfile(metrics_path):
        with open(metrics_path, encoding="utf-8") as f:
            source["metrics"] = json.load(f)
    else:
        source["metrics"] = None
    return source


def build(model, model_path, artifacts, parity_report, notes):
    """The card as a dict.

    Args:
        model: the HarmonyClassifier that was exported.
        artifacts: `{format: {part: {"file": ..., "inputs": ..., "outputs": ...}}}`
            of the published files (descriptions from `describe`).
        parity_report: the content of parity.json.
        notes: `{topic: text}`, e.g. why a stacked model has no encoder.
    """
    return {
        "name": model.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "task": "Is this top colour-harmonious with this bottom? Two garment photos in, p(harmonious) out.",
        "labels": list(LABEL_NAMES),
        "harmony": labels_of(model),
        "threshold": parity_report["threshold"],
        "backbone": model.backbone_name,
        "pairing": model.pairing,
        "image_size": model.image_size,
        "preprocessing": {
            "function": "neipalette_tf.core.preprocessing.load_image(path_or_bytes, image_size)",
            "resize": _resize_method(),
            "color": "RGB, EXIF orientation applied, alpha composited on white",
            "value_range": [int(np.iinfo(np.uint8).min), int(np.iinfo(np.uint8).max)],
            "normalization": {"inside_model": True, **model.normalization},
        },
        "outputs": dict(OUTPUT_MEANINGS),
        "calibration": {"temperature": model.temperature, "shift": getattr(model, "calibration_shift", 0.0),
                        "meaning": "probabilities = softmax(logits / temperature + (-shift / 2, +shift / 2)), "
                                   "inside every exported graph"},
        "artifacts": {fmt: {part: _annotate(dict(entry)) for part, entry in parts.items()}
                      for fmt, parts in artifacts.items()},
        "notes": notes,
        "source": source_run(model_path),
        "parity": parity_report,
    }
