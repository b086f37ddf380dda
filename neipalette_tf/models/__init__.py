"""NeiPalette models: backbone + preprocessor + head -> HarmonyClassifier.

Importing this package does not load TensorFlow: the backbone registry is plain
data, and the Keras classes (`HarmonyClassifier`, `PairHead`, `ImageNormalizer`,
`INPUT_NAMES`) load on first use, so the commands answer `--help` and refuse bad
flags at once.
"""

import importlib
import os

from neipalette_tf.core.cli import UserError
from neipalette_tf.models.backbones import (
    BACKBONES,
    NORMALIZATIONS,
    WeightsError,
    build_backbone,
    register_backbone,
)

# Names loaded from their module on first access (PEP 562).
_LAZY = {"HarmonyClassifier": "harmony_classifier", "INPUT_NAMES": "harmony_classifier",
         "PairHead": "head", "ImageNormalizer": "preprocessor"}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_classifier(backbone_name, image_size, pairing="siamese", weights="auto",
                     head_units=256, dropout=0.2, log=print, head_projection=64, harmony="people"):
    """Build a HarmonyClassifier with its backbone's weights.

    Returns:
        (model, weights_used) — see `build_backbone`.
    """
    from neipalette_tf.models.harmony_classifier import HarmonyClassifier

    backbone, weights_used = build_backbone(backbone_name, weights, log=log)
    model = HarmonyClassifier(
        backbone=backbone,
        image_size=image_size,
        backbone_name=backbone_name,
        pairing=pairing,
        head_units=head_units,
        head_projection=head_projection,
        dropout=dropout,
        harmony=harmony,
        name=f"neipalette_{backbone_name}_{pairing}",
    )
    return model, weights_used


def load_model(path, compile=False):
    """Load a saved HarmonyClassifier (`model.keras`).

    A missing, truncated or foreign file is a `cli.UserError` naming the file
    (one line from the CLIs), not a traceback from deep inside Keras.
    """
    import keras

    from neipalette_tf.models.harmony_classifier import HarmonyClassifier

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: model not found")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as e:  # noqa: BLE001 - zip, h5 and deserialisation errors of a bad file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a loadable NeiPalette model ({type(e).__name__}: {reason[:200]})") from None
    if not isinstance(model, HarmonyClassifier):
        raise UserError(f"{path}: a Keras model, but not a NeiPalette HarmonyClassifier ({type(model).__name__})")
    return model


__all__ = [
    "HarmonyClassifier", "ImageNormalizer", "PairHead", "NORMALIZATIONS", "INPUT_NAMES",
    "BACKBONES", "WeightsError", "build_backbone", "build_classifier", "load_model", "register_backbone",
]
