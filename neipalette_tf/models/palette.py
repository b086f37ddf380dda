"""`ColourPalette`: each garment's palette (K colours and their shares) as a Keras layer.

The same soft k-means as `neipalette_tf.colour.palette.soft_kmeans` (one function for NumPy and
`keras.ops`), over the colour attention's pooled OKLab pixels, weighted by the attention's support
(`palette.support`). No
weights: a model saved before the layer existed has it once loaded, and its figures stay as they
were (the head still sees the attention-weighted mean colour). What the `attention` graph's
`palette` output computes in every exported format (float32 in the int8 files: the `palette`
scope, `export.tflite.FLOAT_SCOPES`).

Example:

>>> import numpy as np
>>> from neipalette_tf.colour import palette
>>> red = np.broadcast_to(np.array([255.0, 0.0, 0.0], "float32"), (1, 8, 8, 3))
>>> raw = np.asarray(ColourPalette()(red, np.full((1, 16), 1 / 16, "float32")))
>>> raw.shape, [round(float(v), 2) for v in raw[0, 0]]  # OKLab of red; a third of the weight each
((1, 3, 4), [0.63, 0.22, 0.13, 0.33])
>>> palette.as_json(raw[0])  # the three entries are one colour: merged
[{'hex': '#ff0000', 'share': 1.0}]
"""

import keras
import numpy as np
from keras import layers, ops

from neipalette_tf.colour import palette
from neipalette_tf.colour.space import _LMS_TO_OKLAB
from neipalette_tf.models.colour_pooling import _lms_cube_root, _mix_channels, _pixels


@keras.saving.register_keras_serializable(package="neipalette")
class ColourPalette(keras.layers.Layer):
    """Images `[N, S, S, 3]` (RGB 0..255) and attention `[N, P]` -> raw palettes `[N, K, 4]`.

    `P = (S / stride)^2`: the colour attention's pooled map (`ColourAttentionPooling.stride`).
    Each entry: OKLab (L, a, b) and its share of the attention; `palette.read_palette` merges,
    drops and sorts them.
    """

    def __init__(self, stride=2, k=palette.K, iterations=palette.ITERATIONS, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.stride, self.k, self.iterations = stride, k, iterations
        self.pool = layers.AveragePooling2D(stride, name="pool")
        self.built = True  # no weights to build (a loaded model would warn of unbuilt state)

    def call(self, images, attention):
        lab = _mix_channels(self.pool(_lms_cube_root(ops.cast(images, "float32"))),
                            np.asarray(_LMS_TO_OKLAB, "float32"))
        weights = palette.support(ops.cast(attention, "float32"), xp=ops)
        return palette.soft_kmeans(_pixels(lab), weights, xp=ops, k=self.k,
                                   iterations=self.iterations)

    def compute_output_shape(self, images_shape, attention_shape):
        return (images_shape[0], self.k, 4)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "k": self.k, "iterations": self.iterations}
