"""Convolutions on tiny feature maps as one GEMM (im2col) in an ONNX graph.

At the default 48 px input, ResNet18's last two stages run on 3 x 3 and
2 x 2 feature maps. ONNX Runtime's CPU convolution (the NCHWc kernels its
layout optimiser picks) vectorises over the width of a feature map, so on
such maps it reached about 40 % of the machine's matmul peak, and those
layers took about a third of the model's time. Written as im2col + GEMM,
the same layer is one matrix product with `batch x Ho x Wo` rows and
`kh x kw x C` columns, which the GEMM kernel runs at 70-80 % of peak.

The rewrite is exact arithmetic, not an approximation: every multiply of
the convolution, the zero padding included, is still done (the FLOP count
of the model is unchanged); only the order of the sums differs, so outputs
agree to float32 rounding. Per rewritten `Conv`:

    X [N, C, H, W] -> Transpose -> [N, H*W, C] -> Pad one zero pixel
    -> Gather the kh*kw input pixels of every output pixel (a constant
       index table; padding taps point at the zero pixel)
    -> [N*Ho*Wo, kh*kw*C] -> Gemm with W as [kh*kw*C, O] (+ bias)
    -> [N, Ho, Wo, O] -> Transpose -> [N, O, Ho, Wo]

ONNX Runtime's transpose optimiser cancels the transposes between
consecutive rewritten layers. A `Conv` is rewritten when its input's
channels and spatial size are static, its weights are a constant,
`group` is 1, padding is explicit, and its output has at most
`max_output_pixels` pixels; anything else is left as it is. Layers that
share a weight (the two siamese towers) share the rewritten weight too.

Example:

>>> import numpy as np, onnx
>>> from onnx import helper, numpy_helper, TensorProto
>>> w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
>>> conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
>>> graph = helper.make_graph(
...     [conv], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 2, 2])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 2, 2])], [w])
>>> model, rewritten = small_convs_as_gemm(helper.make_model(graph))
>>> rewritten, sorted({n.op_type for n in model.graph.node})
(1, ['Gather', 'Gemm', 'Pad', 'Reshape', 'Transpose'])
"""

import numpy as np
from onnx import helper, numpy_helper, shape_inference

# Rewrite convolutions whose output has at most this many pixels (3 x 3).
# Measured on the 48 px default (2 threads, batch 32, `scripts/onnx_conv_gemm.py`):
# the 2 x 2 and 3 x 3 layers gain, the 6 x 6 ones are as fast either way.
MAX_OUTPUT_PIXELS = 9
METADATA_KEY = "neipalette.small_convs_as_gemm"


def _static_shapes(model):
    inferred = shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input)
    return {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in values}


def gather_table(h, w, kh, kw, strides, dilations, pads):
    """[Ho*Wo, kh*kw] indices into the H*W pixels; `h * w` (the zero pixel) for padding taps."""
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    y = np.arange(ho)[:, None, None, None] * sh - pt + np.arange(kh)[None, None, :, None] * dh
    x = np.arange(wo)[None, :, None, None] * sw - pl + np.arange(kw)[None, None, None, :] * dw
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    table = np.where(inside, y * w + x, h * w)
    return table.reshape(ho * wo, kh * kw).astype(np.int64), ho, wo


class _Rewriter:
    def __init__(self, model, max_output_pixels):
        self.shapes = _static_shapes(model)
        self.initializers = {i.name: i for i in model.graph.initializer}
        self.max_output_pixels = max_output_pixels
        self.nodes, self.constants, self.weights = [], [], {}

    def const(self, name, array):
        self.constants.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, w_name):
        """The [kh*kw*C, O] GEMM weight of a Conv weight, one per original weight."""
        if w_name not in self.weights:
            w = numpy_helper.to_array(self.initializers[w_name])
            o, c, kh, kw = w.shape
            self.weights[w_name] = self.const(f"{w_name}/gemm", w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o))
        return self.weights[w_name]

    def plan(self, node):
        """(gather table, Ho, Wo, H*W, C) when `node` is rewritten, else None."""
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in self.initializers:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        shape = self.shapes.get(node.input[0])
        if (shape is None or len(shape) != 4 or None in shape[1:] or attrs.get("group", 1) != 1
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            return None
        o, c, kh, kw = self.initializers[node.input[1]].dims
        _, channels, h, w = shape
        if channels != c:
            return None
        table, ho, wo = gather_table(h, w, kh, kw, attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1]),
                                     attrs.get("pads", [0, 0, 0, 0]))
        if ho * wo > self.max_output_pixels or ho < 1 or wo < 1:
            return None
        return table, ho, wo, h * w, c, o

    def rewrite(self, node, plan):
        table, ho, wo, pixels, c, o = plan
        p = f"{node.name or node.output[0]}/gemm"
        make = helper.make_node
        self.nodes += [
            make("Transpose", [node.input[0]], [f"{p}/nhwc"], perm=[0, 2, 3, 1]),
            make("Reshape", [f"{p}/nhwc", self.const(f"{p}/pixels_shape", np.array([0, pixels, c], np.int64))],
                 [f"{p}/pixels"]),
            make("Pad", [f"{p}/pixels", self.const(f"{p}/zero_pixel", np.array([0, 0, 0, 0, 1, 0], np.int64))],
                 [f"{p}/padded"]),
            make("Gather", [f"{p}/padded", self.const(f"{p}/taps", table)], [f"{p}/patches"], axis=1),
            make("Reshape", [f"{p}/patches", self.const(f"{p}/rows_shape", np.array([-1, table.shape[1] * c], np.int64))],
                 [f"{p}/rows"]),
            make("Gemm", [f"{p}/rows", self.weight(node.input[1]), *node.input[2:3]], [f"{p}/product"]),
            make("Reshape", [f"{p}/product", self.const(f"{p}/out_shape", np.array([-1, ho, wo, o], np.int64))],
                 [f"{p}/out_nhwc"]),
            make("Transpose", [f"{p}/out_nhwc"], [node.output[0]], perm=[0, 3, 1, 2]),
        ]


def small_convs_as_gemm(model, max_output_pixels=MAX_OUTPUT_PIXELS):
    """Rewrite `model`'s small-output convolutions in place; returns (model, count)."""
    r = _Rewriter(model, max_output_pixels)
    count = 0
    for node in model.graph.node:
        plan = r.plan(node)
        if plan is None:
            r.nodes.append(node)
        else:
            r.rewrite(node, plan)
            count += 1
    if not count:
        return model, 0
    del model.graph.node[:]
    model.graph.node.extend(r.nodes)
    model.graph.initializer.extend(r.constants)
    used = {name for n in model.graph.node for name in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                   METADATA_KEY: f"{count} Conv nodes with <= {max_output_pixels} output pixels"})
    return model, count
