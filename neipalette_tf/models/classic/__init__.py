"""Classic baselines beside the CNNs: the palette model and the embedding probe.

- `palette.PaletteModel` (`train --backbone palette`): k-means garment
  colours in OKLab, colour-theory pair features, logistic regression.
- `probe.ProbeModel` (`train --mode probe`): frozen CNN embeddings (cached
  on disk) and logistic regression on pair features.

Both save as a small JSON file (`model.palette.json`, `model.probe.json`;
the probe adds its encoder as `model.probe.encoder.keras`), carry their
image size, use `neipalette_tf.core.preprocessing.load_image`, and score through
the same interface as the runtimes (`image_size`, `predict_batch`), so
evaluate, predict and compare treat them like any other model.
`load_model_any(path)` is the one dispatch evaluate and predict use.
"""

import json
import os

from neipalette_tf.core.cli import UserError
from neipalette_tf.core.vocabulary import CLASSIC_FORMAT as FORMAT
from neipalette_tf.models import load_model

MODEL_FILES = {"palette": "model.palette.json", "probe": "model.probe.json"}


def is_classic_path(path):
    return os.fspath(path).endswith(".json")


def load_classic(path, cache_dir=None):
    """A saved palette or probe model (its `.json` file)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: model not found") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable model file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a NeiPalette palette or probe model (no \"format\": \"{FORMAT}\")")
    if data.get("kind") == "palette":
        from neipalette_tf.models.classic.palette import PaletteModel  # deferred: palette imports this package

        model = PaletteModel.from_json(data, path)
        model.path = path
        return model
    if data.get("kind") == "probe":
        from neipalette_tf.models.classic.probe import ProbeModel  # deferred: TensorFlow (its Keras encoder)

        model = ProbeModel.from_json(data, path, cache_dir=cache_dir)
        model.path = path
        return model
    raise UserError(f"{path}: unknown classic model kind {data.get('kind')!r}")


def load_model_any(path):
    """A trained model for scoring: `model.keras` (Keras) or a classic `.json`."""
    if is_classic_path(path):
        return load_classic(path)

    return load_model(path)
