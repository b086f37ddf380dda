"""In-model image normalisation: RGB 0..255 in, what the backbone expects out.

Callers (training, evaluation, every export and runtime) pass RGB 0..255 at
the model's square size, produced by `neipalette_tf.core.preprocessing.load_image`.
This layer holds the backbone-specific rest (each backbone's numbers are in
the registry, `neipalette_tf.models.backbones.NORMALIZATIONS`) as plain numbers in its config,
so it travels inside `model.keras` and every exported graph as constants.

Example:

>>> import numpy as np
>>> layer = ImageNormalizer(scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD)  # resnet18's
>>> y = layer(np.full((1, 2, 2, 3), 255.0, "float32"))
>>> [round(float(v), 3) for v in np.asarray(y)[0, 0, 0]]
[2.249, 2.429, 2.64]
"""

import keras
import numpy as np
from keras import ops

from neipalette_tf.core.preprocessing import IMAGENET_MEAN, IMAGENET_STD


@keras.saving.register_keras_serializable(package="neipalette")
class ImageNormalizer(keras.layers.Layer):
    """`(x[..., order] * scale - mean) / std` with constants from the config.

    Computed as one per-channel affine map, `x * (scale / std) - mean / std`,
    written as a 1 x 1 depthwise convolution (a 1 x 1 convolution when it
    also reverses the channels): one op in every exported graph. As a
    broadcast SUB and MUL it was two requantised ops in the int8 TFLite file
    (0.049 ms of its 2-thread time, now 0.012-0.018 ms; docs/deployment.md,
    "Where the int8 time goes").

    Args:
        scale: multiplies the 0..255 input first.
        mean: per-channel value subtracted after scaling.
        std: per-channel divisor.
        channel_order: "rgb" (keep) or "bgr" (reverse channels first).
    """

    def __init__(self, scale=1 / 255.0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 channel_order="rgb", **kwargs):
        super().__init__(**kwargs)
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.scale = float(scale)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.channel_order = channel_order

    def _affine(self):
        """Per-channel `(gain, offset)` with `normalised = x[..., order] * gain + offset`."""
        gain = [self.scale / s for s in self.std]
        offset = [-m / s for m, s in zip(self.mean, self.std)]
        return gain, offset

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        gain, offset = self._affine()
        bgr = self.channel_order == "bgr"
        if all(g == 1.0 for g in gain) and not any(offset) and not bgr:
            return x  # the backbone normalises inside itself (EfficientNet)
        offset = ops.convert_to_tensor(offset, self.compute_dtype)
        if len(x.shape) != 4:  # not an image batch: plain broadcasting
            x = ops.flip(x, axis=-1) if bgr else x
            return x * ops.convert_to_tensor(gain, self.compute_dtype) + offset
        if bgr:  # the reversal and the gains as one 1 x 1 convolution
            kernel = np.diag(np.asarray(gain, "float32"))[::-1]  # [in, out]: input 2 - c -> output c
            return ops.conv(x, ops.convert_to_tensor(kernel[None, None], self.compute_dtype)) + offset
        kernel = ops.reshape(ops.convert_to_tensor(gain, self.compute_dtype), (1, 1, len(gain), 1))
        return ops.depthwise_conv(x, kernel) + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            scale=self.scale, mean=list(self.mean), std=list(self.std),
            channel_order=self.channel_order,
        )
        return config
