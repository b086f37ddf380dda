"""NeiPalette models: backbone + preprocessor + head -> HarmonyClassifier."""

from neipalette_tf.models.backbones import WeightsError, build_backbone
from neipalette_tf.models.harmony_classifier import INPUT_NAMES, HarmonyClassifier
from neipalette_tf.models.head import PairHead
from neipalette_tf.models.preprocessor import NORMALIZATIONS, ImageNormalizer


def build_classifier(backbone_name, image_size, pairing="siamese", weights="auto",
                     head_units=256, dropout=0.2, log=print):
    """Build a HarmonyClassifier with its backbone's weights.

    Returns:
        (model, weights_used) — see `build_backbone`.
    """
    backbone, weights_used = build_backbone(backbone_name, weights, log=log)
    model = HarmonyClassifier(
        backbone=backbone,
        image_size=image_size,
        backbone_name=backbone_name,
        pairing=pairing,
        head_units=head_units,
        dropout=dropout,
        name=f"neipalette_{backbone_name}_{pairing}",
    )
    return model, weights_used


def load_model(path, compile=False):
    """Load a saved HarmonyClassifier (`model.keras`)."""
    import keras

    return keras.saving.load_model(path, compile=compile)


__all__ = [
    "HarmonyClassifier", "ImageNormalizer", "PairHead", "NORMALIZATIONS", "INPUT_NAMES",
    "WeightsError", "build_backbone", "build_classifier", "load_model",
]
