"""Convolution gradients by matrix multiplication where the feature map is small.

On a CPU, TensorFlow's kernel gradient of a convolution (`Conv2DBackpropFilter`)
is slow when the output map has only a few positions per image: ResNet18's
last stage at 48 px works on 2 x 2 maps of 512 channels, and oneDNN's kernel
gradient of its 3 x 3 convolutions runs at about a quarter of the speed of
the same arithmetic as one matrix multiplication, and Eigen's (TensorFlow's
kernels without oneDNN) slower still (docs/benchmarks.md, "Convolution
gradients on small maps"). The same gradient written as
im2col and a matmul — the patches of the padded input `[B * Ho * Wo, k * k * C]`
transposed against the output gradient `[B * Ho * Wo, O]` — is exact (the same
sums, in another order) and runs at matmul speed.

`matmul_conv_gradients(model)` is a context manager for training: inside
it, every plain `Conv2D` of `model` (nested ones included) whose output map
has at most `max_positions` positions per image computes its kernel
gradient that way, and its input gradient, for stride 1 and "same"
padding, as the forward convolution of the output gradient with the
kernel turned 180 degrees and transposed (faster than
`Conv2DBackpropInput` on these maps). The forward pass is the layer's own
convolution, the layers and their weights are unchanged, and functions
traced outside the block (predictions, exports) never see it. A training
function traced inside keeps the faster gradients afterwards.

Example:

>>> import keras, numpy as np
>>> conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
>>> model = keras.Sequential([keras.Input((2, 2, 3)), conv])
>>> with matmul_conv_gradients(model) as changed:
...     y = model(np.ones((1, 2, 2, 3), "float32"))
>>> changed, tuple(y.shape)
(1, (1, 2, 2, 4))
"""

import contextlib
import functools

import keras
import tensorflow as tf

# Output positions per image at or below which the matmul gradients are used. Measured on
# ResNet18's training step at 48 px (docs/benchmarks.md): 4, 9 and 36 give the same step time
# with oneDNN; with TensorFlow's Eigen kernels 9 (the 3 x 3 and 2 x 2 maps) is the fastest.
MAX_POSITIONS = 9


def _pads(size, kernel, stride, padding):
    """(before, after) padding of one spatial axis, TensorFlow's "SAME" rule; (0, 0) for "VALID"."""
    if padding == "VALID":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def kernel_gradient(x, dy, kernel_shape, strides, padding):
    """d(loss)/d(kernel) of `conv2d(x, kernel, strides, padding)` from the output gradient `dy`: im2col, one matmul."""
    kh, kw, cin, cout = kernel_shape
    rows, cols = _pads(x.shape[1], kh, strides[0], padding), _pads(x.shape[2], kw, strides[1], padding)
    padded = tf.pad(x, [[0, 0], rows, cols, [0, 0]]) if any(rows + cols) else x
    if kh == kw == 1:
        patches = padded[:, ::strides[0], ::strides[1], :]
    else:
        patches = tf.image.extract_patches(padded, [1, kh, kw, 1], [1, strides[0], strides[1], 1],
                                           [1, 1, 1, 1], "VALID")  # [B, Ho, Wo, kh * kw * C], (kh, kw, C) order
    grad = tf.matmul(tf.reshape(patches, [-1, kh * kw * cin]), tf.reshape(dy, [-1, cout]), transpose_a=True)
    return tf.reshape(grad, [kh, kw, cin, cout])


def input_gradient(x, w, dy, strides, padding):
    """d(loss)/d(x): for stride 1, "same" and odd kernels the convolution of `dy` with the kernel turned 180
    degrees and transposed; otherwise TensorFlow's own `Conv2DBackpropInput`."""
    kh, kw = int(w.shape[0]), int(w.shape[1])
    if tuple(strides) == (1, 1) and padding == "SAME" and kh % 2 and kw % 2:
        return tf.nn.conv2d(dy, tf.transpose(tf.reverse(w, axis=[0, 1]), [0, 1, 3, 2]), strides=1, padding="SAME")
    return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                          strides=[1, *strides, 1], padding=padding)


def conv2d(x, w, strides, padding):
    """`tf.nn.conv2d(x, w, strides, padding)` (NHWC, no dilation) with the gradients above."""
    strides, padding = tuple(int(s) for s in strides), padding.upper()

    @tf.custom_gradient
    def conv(x, w):
        def grad(dy):
            return (input_gradient(x, w, dy, strides, padding),
                    kernel_gradient(x, dy, tuple(int(d) for d in w.shape), strides, padding))

        return tf.nn.conv2d(x, w, strides=[1, *strides, 1], padding=padding), grad

    return conv(x, tf.convert_to_tensor(w))  # a tensor, not the variable: the gradient flows through the read


def _output_positions(layer, input_shape):
    """Output positions per image of a 2-D convolution on `input_shape` (None when a size is unknown)."""
    h, w = input_shape[1], input_shape[2]
    if h is None or w is None:
        return None
    sizes = []
    for size, k, s in zip((h, w), layer.kernel_size, layer.strides):
        sizes.append(-(-size // s) if layer.padding == "same" else (size - k) // s + 1)
    return sizes[0] * sizes[1]


def _eligible(layer):
    return (type(layer) is keras.layers.Conv2D and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1 and keras.backend.backend() == "tensorflow")


def _convolution_op(layer, native, max_positions, inputs, kernel):
    positions = _output_positions(layer, inputs.shape)
    if positions is None or positions > max_positions or inputs.dtype != tf.float32:
        return native(inputs, kernel)
    return conv2d(inputs, kernel, layer.strides, layer.padding)


@contextlib.contextmanager
def matmul_conv_gradients(model, max_positions=MAX_POSITIONS, enabled=True):
    """Inside the block, `model`'s plain Conv2D layers use the matmul gradients on maps of ≤ `max_positions`
    positions per image (see the module docs). Yields the number of layers it changed."""
    convs = [layer for layer in model._flatten_layers(include_self=False) if _eligible(layer)] if enabled else []
    for layer in convs:
        native = layer.convolution_op
        layer.convolution_op = functools.partial(_convolution_op, layer, native, max_positions)
    try:
        yield len(convs)
    finally:
        for layer in convs:
            del layer.convolution_op
