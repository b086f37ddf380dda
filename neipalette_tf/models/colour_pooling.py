"""Colour attention pooling: where is the garment, and what colour is it?

A CNN's pooled features know *roughly* what colour a garment is; the harmony
rule needs it *precisely* (hue thresholds 30° / 150°, neutral chroma
thresholds 0.05-0.12). This layer reads the colour off the pixels
themselves: it converts the image to OKLab, computes a spatial attention map
— keys from two small convolutions over the pixels' colours and positions,
the query from the garment's backbone embedding (global context: *which*
region is the garment) — and returns the attention-weighted mean OKLab
colour. The backbone decides where to look; the pixels give the exact
colour. Trained end to end (and, on synthetic data, directly on the
recorded main colours; see `neipalette_tf.training.loop`).

With `context=True` (what `build_classifier` makes) the keys also see each
pixel's contrast with the image's border colour — a garment photo's border
is almost always background: floor, bed, rug, studio — and come from a
stack of dilated convolutions (receptive field ~30 pixels of the pooled map)
that can tell a garment's shape from a patterned background; a learned
saliency term is added to the query match. `context=False` is the original
two-convolution key network (models saved before it still load).

Output: scaled OKLab `(L, 4a, 4b)` per garment, `[N, 3 * garments]`
(`garments=2` for a stacked top-above-bottom image: top half, bottom half).

Example:

>>> import numpy as np
>>> layer = ColourAttentionPooling(channels=8)
>>> red = np.broadcast_to(np.array([255.0, 0.0, 0.0], "float32"), (1, 16, 16, 3))
>>> c = np.asarray(layer(red, np.zeros((1, 4), "float32")))[0]
>>> [round(float(v), 2) for v in c]  # OKLab of sRGB red: (0.63, 0.22, 0.13) * (1, 4, 4)
[0.63, 0.9, 0.5]
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from neipalette_tf.colour.space import _LMS_TO_OKLAB, _RGB_TO_LMS, OKLAB_SCALE, SRGB_KNEE  # noqa: F401 - OKLAB_SCALE re-exported


def _power(x, exponent):
    """`x ** exponent` for `x > 0` as `exp(exponent * log(x))`.

    The same function to float32 rounding, but TFLite's POW is a scalar
    builtin kernel outside XNNPACK, while EXP and LOG are vectorised and
    delegated (docs/deployment.md, "int8 thread scaling").
    """
    return ops.exp(exponent * ops.log(x))


def _mix_channels(x, matrix):
    """`x @ matrix.T` over the last axis: a 1 x 1 convolution for an image batch.

    Not `ops.matmul`: TF lowers a matmul of a `[N, H, W, 3]` tensor to a
    Tensordot whose reshapes read the batch size at run time (SHAPE, GATHER,
    REDUCE_PROD, PACK), which no TFLite delegate runs; a 1 x 1 CONV_2D is
    one delegated op. Any other rank: `ops.matmul`.
    """
    kernel = ops.convert_to_tensor(np.asarray(matrix, "float32").T, dtype=x.dtype)  # [in, out]
    if len(x.shape) == 4:
        return ops.conv(x, kernel[None, None])
    return ops.matmul(x, kernel)


# The sRGB transfer function's knee (of 0..1 values; 10.3 of 0..255 pixels).
_KNEE = SRGB_KNEE


def _linearise(pixels):
    """sRGB pixels 0..255 -> linear 0..1: `c / 12.92` up to the knee, else
    `((c + 0.055) / 1.055) ** 2.4`, for `c = pixels / 255`.

    Without a compare-and-select (LESS_EQUAL / SELECT_V2 are outside XNNPACK):
    `min(c, knee) / 12.92` is the low piece up to the knee and constant above
    it; `high(max(c, knee)) - high(knee)` is zero up to the knee and the high
    piece above it less its value at the knee, where the two pieces meet
    (0.0031308 both, to float32 rounding).
    """
    def high(c):
        return _power((c + 0.055) / 1.055, 2.4)

    # The division first: in the int8 files it is the op that takes the uint8 pixels back to
    # float (a MAXIMUM / MINIMUM of them would be int8 ops, outside XNNPACK).
    c = pixels / 255.0
    return ops.minimum(c, _KNEE) / 12.92 + (high(ops.maximum(c, _KNEE)) - high(_KNEE))


def _lms_cube_root(images):
    """RGB 0..255 -> the cube roots of the LMS cone responses (OKLab before its last matrix)."""
    return _power(ops.maximum(_mix_channels(_linearise(images), _RGB_TO_LMS), 1e-9), 1.0 / 3.0)


def srgb_to_oklab(images):
    """RGB 0..255 `[..., 3]` -> OKLab, in Keras ops (see `neipalette_tf.colour.space.srgb_to_oklab`)."""
    return _mix_channels(_lms_cube_root(images), _LMS_TO_OKLAB)


def _positions(x):
    """(y, x) coordinates in -1..1 for every pixel of `x` `[N, H, W, C]`, any size.

    A constant when the map's size is known (always, in exported graphs),
    broadcast over the batch by an add; a cumulative sum otherwise.
    """
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        ones = ops.ones_like(x[..., :1])
        coords = []
        for axis in (1, 2):
            index = ops.cumsum(ones, axis=axis) - 1.0
            coords.append(index / ops.maximum(ops.max(index, axis=(1, 2), keepdims=True), 1.0) * 2.0 - 1.0)
        return ops.concatenate(coords, axis=-1)
    ramp = lambda n: np.arange(n, dtype="float32") / max(n - 1, 1) * 2.0 - 1.0  # noqa: E731
    grid = np.stack(np.meshgrid(ramp(h), ramp(w), indexing="ij"), axis=-1)[None]
    return x[..., :2] * 0.0 + ops.convert_to_tensor(grid, dtype=x.dtype)  # no ZEROS_LIKE: outside XNNPACK


def _border_mean(x):
    """Mean of the outermost ring of pixels of `x` `[N, H, W, C]` -> `[N, 1, 1, C]`.

    The whole sum minus the interior's (no concatenation of the four edges:
    fewer ops, and ones every TFLite delegate takes).
    """
    shape = ops.shape(x)  # static sizes when known, tensors when not
    ring = ops.cast(2 * (shape[1] + shape[2]) - 4, x.dtype)
    inner = ops.sum(x[:, 1:-1, 1:-1], axis=(1, 2), keepdims=True)
    return (ops.sum(x, axis=(1, 2), keepdims=True) - inner) / ring


def _split(x, parts, axis):
    """`ops.split`, without a no-op SPLIT op for one part (TF's int8 quantiser gave it 8-bit
    steps even inside the float colour path; see `export.tflite`)."""
    return [x] if parts == 1 else ops.split(x, parts, axis=axis)


def _pixels(x):
    """`[N, H, W, C]` -> `[N, H * W, C]`, by a constant shape when H and W are known."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    if h is None or w is None:
        return ops.reshape(x, (ops.shape(x)[0], -1, c))
    return ops.reshape(x, (-1, h * w, c))


def _attention_mean(logits, values):
    """`softmax(logits)`-weighted mean of `values` `[N, P, C]` over the P pixels.

    `logits` is `[N, P, 1]`. Written out rather than `ops.softmax`: a SOFTMAX
    op gets a fixed 1/256 output scale in quantised TFLite graphs, which
    rounds the weights of a 32 x 32 attention map (~1/1024 each) to zero.
    This form keeps the float colour path float in an int8 model (see
    `export.tflite`).
    """
    weights = ops.exp(logits - ops.max(logits, axis=1, keepdims=True))
    total = ops.sum(weights, axis=1)
    return ops.sum(weights * values, axis=1) / total


def _attention_weights(logits):
    """`softmax(logits)` over the P pixels, `[N, P, 1]` -> `[N, P]` (written out, as in `_attention_mean`)."""
    weights = ops.exp(logits - ops.max(logits, axis=1, keepdims=True))
    weights = weights / ops.sum(weights, axis=1, keepdims=True)
    pixels = logits.shape[1]
    return ops.reshape(weights, (-1, pixels) if pixels is not None else (ops.shape(logits)[0], -1))


def dilated_conv2d(inputs, kernel, dilation):
    """A stride-1 "SAME" dilated convolution as one TF Conv2D op, with gradients on every CPU.

    TensorFlow's portable CPU kernels (Eigen: every CPU without oneDNN, which
    TF turns on by default only with AVX-512 VNNI / BF16 / AMX, and any CPU
    under `TF_ENABLE_ONEDNN_OPTS=0`) have no dilations in
    `Conv2DBackpropInput` / `Conv2DBackpropFilter`, so the op's own gradient
    crashes training there. The forward pass (which the exports see) stays
    the one dilated Conv2D; the gradients are written with ops every kernel
    has: the input's is the dilated convolution of the output gradient with
    the kernel turned 180 degrees and transposed (exact for odd kernel
    sizes, which "SAME" pads symmetrically); the kernel's is a strided
    convolution of the padded input with the output gradient, batch and
    channels swapped (`out[c, i, j, o] = sum_{b,h,w} x[b, h + i d, w + j d, c]
    dy[b, h, w, o]`).
    """

    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    if kh % 2 == 0 or kw % 2 == 0:
        return tf.nn.convolution(inputs, kernel, padding="SAME", dilations=dilation)
    dh, dw = dilation

    @tf.custom_gradient
    def conv(x, w):
        def grad(dy):
            flipped = tf.transpose(tf.reverse(w, axis=[0, 1]), [0, 1, 3, 2])
            dx = tf.nn.conv2d(dy, flipped, strides=1, padding="SAME", dilations=[dh, dw])
            ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
            padded = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
            dk = tf.nn.conv2d(tf.transpose(padded, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]),
                              strides=[1, dh, dw, 1], padding="VALID")  # [C, kh, kw, O]
            return dx, tf.transpose(dk, [1, 2, 0, 3])

        return tf.nn.conv2d(x, w, strides=1, padding="SAME", dilations=[dh, dw]), grad

    # Tensors, not variables: a custom gradient that reads a variable must also return its gradient.
    return conv(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))


class Conv2D(layers.Conv2D):
    """`layers.Conv2D` whose dilated convolution is one Conv2D op on TensorFlow.

    `tf.nn.convolution` lowers a dilated convolution to SpaceToBatchND,
    Conv2D and BatchToSpaceND; with a dynamic batch the TFLite converter
    keeps all three, and the two reshuffles split the XNNPACK graph. A
    Conv2D with `dilations` is the same function; `dilated_conv2d` gives it
    gradients that every CPU kernel set has. Same weights, same config as
    `layers.Conv2D`, and the same class name: the `.keras` format files the
    layers of a list attribute under their class name (`key_context/conv2d`,
    `conv2d_1`), so earlier models load.
    """

    def convolution_op(self, inputs, kernel):
        if (keras.backend.backend() != "tensorflow" or max(self.dilation_rate) == 1
                or max(self.strides) != 1 or self.padding != "same"):
            return super().convolution_op(inputs, kernel)
        return dilated_conv2d(inputs, kernel, self.dilation_rate)


@keras.saving.register_keras_serializable(package="neipalette")
class ColourAttentionPooling(keras.layers.Layer):
    """Attention-weighted mean OKLab colour of each garment in an image.

    Args:
        channels: width of the key convolutions and the query.
        stride: the attention map's resolution is the image's / stride.
        garments: 1 (one garment per image) or 2 (stacked: top half, bottom half).
        context: border-contrast features, dilated key convolutions and a
            saliency term (the default models'); False: the original
            two-convolution keys.
    """

    def __init__(self, channels=32, stride=2, garments=1, context=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.channels = channels
        self.stride = stride
        self.garments = garments
        self.context = context
        # === Layers ===
        self.pool = layers.AveragePooling2D(stride, name="pool")
        self.key1 = layers.Conv2D(channels, 3, padding="same", activation="relu", name="key1")
        if context:
            self.key_context = [
                Conv2D(channels, 3, padding="same", dilation_rate=d, activation="relu", name=f"key_d{d}")
                for d in (2, 4)
            ]
            self.saliency = layers.Conv2D(1, 1, name="saliency")
        self.key2 = layers.Conv2D(channels, 3, padding="same", name="key2")
        self.query = layers.Dense(channels * garments, name="query")

    def build(self, images_shape, embedding_shape):
        self.key1.build((None, None, None, 9 if self.context else 5))
        if self.context:
            for conv in self.key_context:
                conv.build((None, None, None, self.channels))
            self.saliency.build((None, None, None, self.channels))
        self.key2.build((None, None, None, self.channels))
        self.query.build(embedding_shape)
        self.built = True

    def _pixel_features(self, lab, parts_lab):
        """Per pixel: colour and position (+ contrast with its garment's border colour)."""
        if not self.context:
            return ops.concatenate([lab, _positions(lab)], axis=-1)
        features = []
        for part in parts_lab:
            contrast = part - _border_mean(part)
            distance = ops.sqrt(ops.sum(ops.square(contrast), axis=-1, keepdims=True) + 1e-6)
            features.append(ops.concatenate([part, _positions(part), contrast, distance], axis=-1))
        return features[0] if len(features) == 1 else ops.concatenate(features, axis=1)

    def _keys(self, features):
        x = self.key1(features)
        saliency = None
        if self.context:
            for conv in self.key_context:
                x = conv(x)
            saliency = self.saliency(x)
        return self.key2(x), saliency

    def call(self, images, embedding, return_attention=False):
        """Main colours `[N, 3 * garments]`; with `return_attention`, also the attention
        weights `[N, garments * P]` over each garment's P pooled pixels (row-major
        `(H / stride) x (W / stride)` maps of the garment's part, each summing to 1).
        The default call's graph is the same as without the option."""
        # OKLab's last step is linear, so it runs after the pooling (a quarter of the pixels for
        # stride 2), its matrix scaled by OKLAB_SCALE: pool(srgb_to_oklab(images)) * OKLAB_SCALE.
        lab = _mix_channels(self.pool(_lms_cube_root(ops.cast(images, "float32"))),
                            np.asarray(OKLAB_SCALE, "float32")[:, None] * _LMS_TO_OKLAB)
        parts_lab = _split(lab, self.garments, axis=1)
        keys, saliency = self._keys(self._pixel_features(lab, parts_lab))
        queries = _split(self.query(ops.cast(embedding, "float32")), self.garments, axis=-1)
        parts_keys = _split(keys, self.garments, axis=1)
        parts_saliency = _split(saliency, self.garments, axis=1) if self.context else [0.0] * self.garments
        colours, maps = [], []
        for q, k, v, s in zip(queries, parts_keys, parts_lab, parts_saliency):
            # A batched matmul of the keys `[N, P, C]` and the query `[N, C, 1]`: TF's int8
            # quantiser gave the keys the scale of their product with the query when it was
            # an elementwise multiply (13x too coarse); a BATCH_MATMUL keeps the keys' own.
            logits = ops.matmul(_pixels(k), ops.reshape(q, (-1, self.channels, 1))) / (self.channels**0.5)
            if self.context:
                logits = logits + _pixels(s)
            colours.append(_attention_mean(logits, _pixels(v)))
            if return_attention:
                maps.append(_attention_weights(logits))
        colours = ops.concatenate(colours, axis=-1)
        if not return_attention:
            return colours
        return colours, maps[0] if len(maps) == 1 else ops.concatenate(maps, axis=1)

    def compute_output_shape(self, images_shape, embedding_shape):
        return (images_shape[0], 3 * self.garments)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, stride=self.stride, garments=self.garments, context=self.context)
        return config
