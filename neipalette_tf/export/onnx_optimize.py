"""Graph passes that let ONNX Runtime's CPU kernels run the exported model fast.

Three passes, each exact (the same arithmetic; outputs agree to float32
rounding or bit for bit) and each general (they look at op types, shapes
and constants, not at layer names). `optimize` runs them all and records
in the graph's metadata what each changed. They were found by profiling
the 48 px default with ONNX Runtime's profiler
(`scripts/onnx_optimize_bench.py --model M` prints variants, layers and op
types):

1. **Convolutions on tiny feature maps as one GEMM (im2col)**,
   `small_convs_as_gemm`. At 48 px, ResNet18's last two stages run on
   3 x 3 and 2 x 2 maps. ONNX Runtime's CPU convolution (the NCHWc kernels
   its layout optimiser picks) vectorises over a map's width and reached
   31-57 % of the matmul peak there; written as im2col + GEMM, the layer
   is one matrix product with `batch x Ho x Wo` rows and `kh x kw x C`
   columns, which ran at 68-73 % of peak (docs/deployment.md). Every multiply of the
   convolution, the zero padding included, is still done (the model's FLOP
   count is unchanged). Per rewritten `Conv`:

       X [N, C, H, W] -> Transpose -> [N, H*W, C] -> Pad one zero pixel
       -> Gather the kh*kw input pixels of every output pixel (a constant
          index table; padding taps point at the zero pixel)
       -> [N*Ho*Wo, kh*kw*C] -> Gemm with W as [kh*kw*C, O] (+ bias)
       -> [N, Ho, Wo, O] -> Transpose -> [N, O, Ho, Wo]

   ONNX Runtime's transpose optimiser cancels the transposes between
   consecutive rewritten layers. A `Conv` is rewritten when its input's
   channels and spatial size are static, its weights are a constant,
   `group` is 1, padding is explicit, and its output has at most
   `max_output_pixels` pixels. Layers that share a weight (the two siamese
   towers) share the rewritten weight too.

2. **Constants shaped for fast broadcasting**, `broadcast_constants`.
   ONNX Runtime 1.32 takes a per-element path when an elementwise op
   broadcasts a lower-rank constant over a short innermost run
   (`scripts/onnx_optimize_bench.py --broadcast`): `x - c` with `x`
   `[32, 24, 24, 1]` and a scalar `c` took 267 µs, against 10 µs with `c`
   shaped `[1, 1, 1, 1]`; `x - mean` with `x` `[32, 48, 48, 3]` and `mean`
   `[3]` took 592 µs, against 56 µs with `mean` tiled to `[1, 48, 48, 3]`.
   The colour pathway and the preprocessing have dozens of such ops. The pass gives a scalar
   constant the other operand's rank, and tiles a constant whose innermost
   run would be short over the other operand's static per-example shape
   (at most 65,536 values). The values are the same; so are the outputs.

3. **Zero padding folded into max pooling**, `fold_zero_pad_into_maxpool`.
   Keras' ResNet pads with zeros (`ZeroPadding2D`) before its first max
   pool; ONNX Runtime ran that `Pad` outside its NCHWc layout, with a
   reorder on each side (the pads 2.5 ms and the reorders 2.7 ms per batch
   of 32 pairs, before the pass). After a
   `Relu` every value is >= 0, so a zero border never wins a max unless
   the window holds nothing else, and `MaxPool`'s own padding (which never
   wins) gives the same result when each pad is smaller than the kernel
   (no dilation, no `ceil_mode`: then every window holds a real value).
   The pass folds such a `Pad` into the `MaxPool`'s `pads`.

Example:

>>> import numpy as np, onnx
>>> from onnx import helper, numpy_helper, TensorProto
>>> w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
>>> conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
>>> graph = helper.make_graph(
...     [conv], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 2, 2])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 2, 2])], [w])
>>> model, changed = optimize(helper.make_model(graph))
>>> changed, sorted({n.op_type for n in model.graph.node})
({'small_convs_as_gemm': 1, 'broadcast_constants': 0, 'fold_zero_pad_into_maxpool': 0}, ['Gather', 'Gemm', 'Pad', 'Reshape', 'Transpose'])
"""

import json

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# Rewrite convolutions whose output has at most this many pixels (3 x 3).
# Measured on the 48 px default (2 threads, batch 32, `scripts/onnx_optimize_bench.py`):
# the 2 x 2 and 3 x 3 layers gain, the 6 x 6 ones are as fast either way.
MAX_OUTPUT_PIXELS = 9
METADATA_KEY = "neipalette.onnx_optimize"
BROADCAST_OPS = ("Add", "Sub", "Mul", "Div", "Max", "Min")
SHORT_RUN = 64  # an innermost broadcast run shorter than this is slow
MAX_TILED = 1 << 16  # values in a tiled constant


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
        """(gather table, Ho, Wo, H*W, C, O) when `node` is rewritten, else None."""
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in self.initializers:
            return None
        attrs = _attrs(node)
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
        p = f"{node.output[0]}/gemm"  # output names are unique in a graph; node names need not be
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
    """Pass 1: rewrite `model`'s small-output convolutions in place; returns how many."""
    r = _Rewriter(model, max_output_pixels)
    count = 0
    for node in model.graph.node:
        plan = r.plan(node)
        if plan is None:
            r.nodes.append(node)
        else:
            r.rewrite(node, plan)
            count += 1
    if count:
        del model.graph.node[:]
        model.graph.node.extend(r.nodes)
        model.graph.initializer.extend(r.constants)
    return count


def broadcast_constants(model):
    """Pass 2: reshape or tile constant operands of elementwise ops for fast broadcasting; returns how many."""
    shapes = _static_shapes(model)
    initializers = {i.name: i for i in model.graph.initializer}
    count = 0
    for node in model.graph.node:
        if node.op_type not in BROADCAST_OPS or len(node.input) != 2:
            continue
        constant = [k for k, name in enumerate(node.input) if name in initializers]
        if len(constant) != 1:
            continue
        k = constant[0]
        other = shapes.get(node.input[1 - k])
        c = numpy_helper.to_array(initializers[node.input[k]])
        if not other or c.ndim > len(other):
            continue
        padded = c.reshape((1,) * (len(other) - c.ndim) + c.shape)
        if c.size == 1:
            target = padded
        else:
            per_example = other[1:]
            if None in per_example or padded.shape[0] != 1 or int(np.prod(per_example)) > MAX_TILED:
                continue
            run = 1
            for d in reversed(range(len(other))):
                if padded.shape[d] != other[d]:
                    break
                run *= other[d]
            if run >= SHORT_RUN:
                continue
            try:
                target = np.ascontiguousarray(np.broadcast_to(padded, (1, *per_example)))
            except ValueError:
                continue
        if target.shape == c.shape:
            continue
        name = f"{node.input[k]}/as_{'x'.join(map(str, target.shape))}"
        if name not in initializers:
            initializers[name] = numpy_helper.from_array(target, name)
            model.graph.initializer.append(initializers[name])
        node.input[k] = name
        count += 1
    return count


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_zero_constant_pad(pad, initializers):
    if pad.op_type != "Pad" or _attrs(pad).get("mode", b"constant") not in (b"constant", "constant"):
        return False
    if len(pad.input) < 2 or pad.input[1] not in initializers:
        return False
    if len(pad.input) > 3 and pad.input[3]:  # axes
        return False
    if len(pad.input) > 2 and pad.input[2]:
        value = initializers.get(pad.input[2])
        return value is not None and numpy_helper.to_array(value).size == 1 and not numpy_helper.to_array(value).any()
    return True


def fold_zero_pad_into_maxpool(model):
    """Pass 3: fold `Relu -> Pad(zeros) -> MaxPool` pads into the `MaxPool`; returns how many."""
    initializers = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for n in model.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    graph_outputs = {o.name for o in model.graph.output}
    folded = []
    for pad in model.graph.node:
        if not _is_zero_constant_pad(pad, initializers):
            continue
        source, users = producer.get(pad.input[0]), consumers.get(pad.output[0], [])
        if source is None or source.op_type != "Relu" or len(users) != 1 or pad.output[0] in graph_outputs:
            continue
        pool = users[0]
        attrs = _attrs(pool)
        kernel = list(attrs.get("kernel_shape", []))
        pads = numpy_helper.to_array(initializers[pad.input[1]]).astype(int).tolist()
        rank = len(pads) // 2
        if (pool.op_type != "MaxPool" or pool.input[0] != pad.output[0] or len(pool.output) != 1
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or rank != len(kernel) + 2
                or attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", []))
                or any(pads[:2]) or any(pads[rank:rank + 2]) or min(pads) < 0):
            continue
        old = list(attrs.get("pads", [0] * 2 * len(kernel)))
        new = [p + o for p, o in zip(pads[2:rank] + pads[rank + 2:], old)]
        if any(p >= k for p, k in zip(new, kernel + kernel)):
            continue  # a window of padding only: zeros and MaxPool's padding would differ
        del pool.attribute[:]
        pool.attribute.extend(helper.make_attribute(k, v) for k, v in {**attrs, "pads": new}.items())
        pool.input[0] = pad.input[0]
        folded.append(pad)
    for pad in folded:
        model.graph.node.remove(pad)
    return len(folded)


def _used_names(graph):
    """Every tensor name a node of `graph` or of its subgraphs (If / Loop bodies) reads."""
    used = set()
    for node in graph.node:
        used.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                used |= _used_names(sub)
    return used


def _drop_unused_initializers(model):
    graph = model.graph
    used = _used_names(graph) | {v.name for v in list(graph.input) + list(graph.output)}
    kept = [i for i in graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def optimize(model, max_output_pixels=MAX_OUTPUT_PIXELS):
    """Run the three passes on `model` in place; returns (model, {pass: nodes changed}).

    The counts also go into the graph's metadata (`METADATA_KEY`, JSON).
    """
    changed = {"small_convs_as_gemm": small_convs_as_gemm(model, max_output_pixels),
               "broadcast_constants": broadcast_constants(model),
               "fold_zero_pad_into_maxpool": fold_zero_pad_into_maxpool(model)}
    if any(changed.values()):
        _drop_unused_initializers(model)
        helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                       METADATA_KEY: json.dumps(changed)})
    return model, changed
