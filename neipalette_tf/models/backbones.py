"""Image backbones and where their weights come from.

| name              | source                                   | ImageNet weights          |
|-------------------|------------------------------------------|---------------------------|
| `resnet18`        | KerasHub `ResNetBackbone`, basic blocks 2-2-2-2 | preset `resnet_18_imagenet` |
| `efficientnet_b0` | `keras.applications.EfficientNetB0`      | `weights="imagenet"`      |
| `resnet50`        | `keras.applications.ResNet50`            | `weights="imagenet"`      |
| `mobilenet_v3_small` | `keras.applications.MobileNetV3Small` (phones) | `weights="imagenet"` |

`weights` is one of:

- `"auto"`: ImageNet weights when they can be had (they download once);
  otherwise one line says why and the backbone starts from random
  initialisation.
- `"imagenet"`: ImageNet weights or an error.
- `"none"`: random initialisation.
- a path: a backbone `.weights.h5` file (saved with `backbone.save_weights`)
  or, for a backbone with a KerasHub preset (`BackboneSpec.preset`), a
  KerasHub preset folder (`backbone.save_to_preset`).

Every backbone maps a normalised image `[N, H, W, 3]` (any H, W) to a
feature map; the task model pools it.

Example:

>>> backbone, used = build_backbone("resnet18", weights="none")
>>> used, backbone.output.shape[-1]
('none', 512)
"""

import dataclasses
import os
from typing import Callable, Optional

from neipalette_tf.core.errors import WeightsError  # noqa: F401 - raised here, importable from here
from neipalette_tf.core.preprocessing import IMAGENET_MEAN, IMAGENET_STD

# The registry is plain data: Keras and KerasHub load only when a backbone is built, so config
# validation and every command's --help read it without TensorFlow.

RESNET18_PRESET = "resnet_18_imagenet"


def _resnet18(weights):
    import keras_hub

    if weights == "imagenet" or os.path.isdir(weights):
        return keras_hub.models.ResNetBackbone.from_preset(weights if weights != "imagenet" else RESNET18_PRESET)
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(None, None, 3),
        name="resnet18",
    )


def _applications(constructor, weights, **kwargs):
    """A `keras.applications` backbone by its constructor's name, without its classifier."""
    import keras

    return getattr(keras.applications, constructor)(
        include_top=False,
        weights="imagenet" if weights == "imagenet" else None,
        input_shape=(None, None, 3),
        **kwargs,
    )


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone: how to build it, what its pixels must look like, where its weights are.

    `build(source)` takes "imagenet", "none" or a folder path; `normalization`
    is `ImageNormalizer`'s arguments (it travels inside every saved model);
    `preset` names the KerasHub preset of its ImageNet weights (None: the
    keras.applications download); a backbone with a KerasHub preset also loads
    weights from a preset folder (`backbone.save_to_preset`). `large`: its
    tests build it only in the full tier (KerasHub's `large` marker: slow to
    build on a 2-core CPU).
    """

    name: str
    build: Callable
    normalization: dict
    preset: Optional[str] = None
    large: bool = False

    @property
    def loads_preset_folders(self):
        return self.preset is not None


BACKBONES = {}


def register_backbone(spec):
    """Add a backbone to the registry that model building, config validation and the CLIs read."""
    BACKBONES[spec.name] = spec
    return spec


register_backbone(BackboneSpec(
    "resnet18", _resnet18, preset=RESNET18_PRESET,
    # KerasHub ResNet presets: x / 255, then ImageNet mean / std.
    normalization={"scale": 1 / 255.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}))
register_backbone(BackboneSpec(
    "efficientnet_b0", lambda w: _applications("EfficientNetB0", w), large=True,
    # keras.applications EfficientNet rescales and normalises inside itself.
    normalization={"scale": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}))
register_backbone(BackboneSpec(
    "resnet50", lambda w: _applications("ResNet50", w), large=True,
    # keras.applications ResNet50 ("caffe"): BGR, minus the ImageNet mean.
    normalization={"scale": 1.0, "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0),
                   "channel_order": "bgr"}))

register_backbone(BackboneSpec(
    "mobilenet_v3_small",
    # Without its built-in Rescaling layer: the same x / 127.5 - 1 is the ImageNormalizer's one
    # op below, so it travels with the model like every other backbone's (and its weights are the same).
    lambda w: _applications("MobileNetV3Small", w, include_preprocessing=False),
    normalization={"scale": 1 / 127.5, "mean": (1.0, 1.0, 1.0), "std": (1.0, 1.0, 1.0)}))

# The normalisation of each backbone, by name (what `ImageNormalizer` takes).
NORMALIZATIONS = {name: spec.normalization for name, spec in BACKBONES.items()}


def _build(name, source):
    """Build `name` with weights from "imagenet", "none" or a folder path."""
    if name not in BACKBONES:
        raise WeightsError(f"unknown backbone '{name}' (choose from {', '.join(BACKBONES)})")
    return BACKBONES[name].build(source)


def build_backbone(name, weights="auto", log=print):
    """Build a backbone and load its weights.

    Returns:
        (backbone, weights_used): `weights_used` is a short string recorded
        in metrics.json: "imagenet", "none", "file:PATH", "preset:PATH" or
        "none (imagenet unavailable)".
    """
    if weights in ("none", None):
        return _build(name, "none"), "none"
    if weights in ("imagenet", "auto"):
        try:
            return _build(name, "imagenet"), "imagenet"
        except Exception as e:  # download or cache failures come in many types
            reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            if weights == "imagenet":
                raise WeightsError(f"ImageNet weights for {name} could not be loaded: {reason}") from None
            log(f"ImageNet weights for {name} are unavailable ({type(e).__name__}); "
                "starting from random initialisation.")
            return _build(name, "none"), "none (imagenet unavailable)"
    path = os.path.abspath(os.fspath(weights))
    if os.path.isdir(path):
        if name in BACKBONES and not BACKBONES[name].loads_preset_folders:
            kerashub = ", ".join(n for n, spec in BACKBONES.items() if spec.loads_preset_folders)
            raise WeightsError(f"{path}: a preset folder works for the KerasHub backbones ({kerashub}) only; "
                               f"pass a .weights.h5 file for {name}")
        try:
            return _build(name, path), f"preset:{path}"
        except Exception as e:
            raise WeightsError(f"{path}: not a loadable KerasHub preset ({str(e).splitlines()[0][:160]})") from None
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: weights not found (use auto, imagenet, none, a .weights.h5 file or a preset folder)")
    if not path.endswith(".weights.h5"):
        raise WeightsError(f"{path}: backbone weights must be a .weights.h5 file or a preset folder")
    backbone = _build(name, "none")
    try:
        backbone.load_weights(path)
    except Exception as e:
        raise WeightsError(f"{path}: does not fit the {name} backbone ({str(e).splitlines()[0][:160]})") from None
    return backbone, f"file:{path}"
