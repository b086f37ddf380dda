"""The model built into the package: what `predict`, `explain`, `recommend` and `serve` run without `--model`.

The folder `neipalette_tf/builtin_model/` holds the int8 TFLite export of
the phone-sized model (`neipalette_tf/configs/mobilenet_v3_small.yaml`):
`model_int8.tflite` and its encoder, head and attention graphs, with the
export's `model_card.json`, whose `builtin` section names the command,
commit, data, labels and licence they came from and the p the model gave on
reference pairs (`reference_images`; `tests/predictors/test_builtin.py`
renders them again and checks the shipped file against it). The runtime is LiteRT: no TensorFlow.
`python scripts/build_builtin_model.py` rebuilds the folder (docs/mobile.md).

Example:

>>> import os

import numpy as np
>>> os.path.basename(resolve_model(None)), resolve_model("artifacts/x/model.onnx")
('model_int8.tflite', 'artifacts/x/model.onnx')
"""

import os

import numpy as np

from neipalette_tf.core.errors import UserError
from neipalette_tf.predictors.runtime import read_card

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "builtin_model")
BUILTIN_MODEL = "model_int8.tflite"  # the format the card's `tflite_int8` entry names
BUILTIN_FORMAT = "tflite_int8"
# What `--model` says in every command's help.
# The reference pairs the card records p for (and tests/predictors/test_builtin.py renders again).
REFERENCE_SEED = 34_034  # not the data set's seed (0): pairs no split holds
REFERENCE_PAIRS = 24
REFERENCE_RENDER_SIZE = 96  # the synthetic data's image_size
MODEL_HELP = "(default: the built-in phone-sized model, int8 TFLite; people labels: non-commercial use)"


def builtin_model_path():
    """The built-in model's file; a `UserError` in one line when the package has none."""
    path = os.path.join(BUILTIN_DIR, BUILTIN_MODEL)
    if not os.path.isfile(path):
        raise UserError(f"{path}: this installation has no built-in model; pass --model "
                        "(or rebuild it: python scripts/build_builtin_model.py)")
    return path


def resolve_model(path):
    """`path` when one is given, else the built-in model's file (the one rule every command follows)."""
    return os.fspath(path) if path else builtin_model_path()


def builtin_card():
    """The built-in model's card (the export's `model_card.json` with its `builtin` provenance)."""
    return read_card(os.path.dirname(builtin_model_path()))


def reference_images(image_size, pairs=REFERENCE_PAIRS, seed=REFERENCE_SEED, harmony="people"):
    """(tops, bottoms) uint8 `[pairs, S, S, 3]`: synthetic pairs rendered, then read as every runtime reads photos.

    Odd pairs aim at harmonious, even ones at clashing; the renderer's JPEG
    bytes go through `load_image` (the letterbox), like a photo file.
    """
    from neipalette_tf.core.preprocessing import load_image  # deferred: only the build and its test render
    from neipalette_tf.data.synth.render import render_pair

    tops, bottoms = [], []
    for i in range(pairs):
        r = render_pair(seed, i, REFERENCE_RENDER_SIZE, bool(i % 2), harmony=harmony)
        tops.append(load_image(r["top"]["jpeg"], image_size))
        bottoms.append(load_image(r["bottom"]["jpeg"], image_size))
    return np.stack(tops), np.stack(bottoms)
