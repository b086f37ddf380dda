"""Where a training step's time goes on this CPU: the library behind `python -m neipalette_tf.profile_training`.

Two views of the step `train` runs, on one batch of synthetic pairs:

- **breakdown**: the step timed with one part removed at a time, so each
  part's cost is a difference of two measured step times: the all-pairs
  objective, the colour read-out objective, the colour attention pooling
  and the pair head (against the plain network: pooled backbone features
  and one `Dense(2)`), and the backward pass (against the forward pass).
  The variants are timed interleaved, round after round, and each figure is
  the median over rounds.
- **trace** (`trace_dir`): a TensorFlow profiler trace of a few full steps
  (open it with TensorBoard's profile plugin), summed here by op type: the
  share of the host's op time that convolutions, their gradients, matmuls
  and the rest take.
"""

import collections
import glob
import os
import re
import time

import numpy as np

from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.models import build_classifier
from neipalette_tf.training.config import DEFAULTS
from neipalette_tf.training.conv_gradients import matmul_conv_gradients
from neipalette_tf.training.loop import TrainingSetup
from neipalette_tf.training.peer_bench import keras_same_network, synthetic_pairs


def _variant(model_cfg, train_cfg, pairs, size, **changes):
    """(compiled trainee, one batch) of the training step with `changes` to the train config."""
    import keras

    keras.utils.set_random_seed(0)
    m = model_cfg
    model, _ = build_classifier(m["backbone"], size, "siamese", "none", m["head_units"], m["dropout"],
                                log=lambda s: None, head_projection=m["head_projection"])
    setup = TrainingSetup(model, {"train": pairs, "val": pairs}, dict(train_cfg, **changes), seed=0)
    setup.compile(1e-3, 1000)
    x, y = next(iter(setup.train_ds))
    with setup.gradients():  # the step is traced here, with train's gradients (training.conv_gradients)
        setup.trainee.train_on_batch(x, y)
    return setup.trainee, x, y


def breakdown(data=None, size=48, batch=32, steps=5, rounds=3, model_cfg=None, train_cfg=None, log=print):
    """Step times (ms) of the training step and of variants without one part each; a dict."""
    model_cfg = model_cfg or DEFAULTS["model"]
    train_cfg = dict(train_cfg or DEFAULTS["train"], batch_size=batch)
    pairs = synthetic_pairs(data, size, batch, log)
    full, x, y = _variant(model_cfg, train_cfg, pairs, size)
    no_all_pairs, x2, y2 = _variant(model_cfg, train_cfg, pairs, size, all_pairs_loss_weight=0.0)
    no_aux, x3, y3 = _variant(model_cfg, train_cfg, pairs, size, all_pairs_loss_weight=0.0, colour_loss_weight=0.0)
    plain = keras_same_network(size)
    plain_x = {"top": x["top"], "bottom": x["bottom"]}
    plain_y = y3
    with matmul_conv_gradients(plain, enabled=train_cfg.get("matmul_conv_gradients", True)):
        plain.train_on_batch(plain_x, plain_y)  # traced with the variants' gradients: the differences are the parts
    calls = {
        "full step (train's)": lambda: full.train_on_batch(x, y),
        "without the all-pairs objective": lambda: no_all_pairs.train_on_batch(x2, y2),
        "without either auxiliary objective": lambda: no_aux.train_on_batch(x3, y3),
        "plain network (GAP + Dense(2))": lambda: plain.train_on_batch(plain_x, plain_y),
        "forward pass of the full step": lambda: full.predict_on_batch(x),
    }
    for name, fn in calls.items():
        for _ in range(3):
            fn()
    times = {name: [] for name in calls}
    for r in range(rounds):
        for name, fn in calls.items():
            t = []
            for _ in range(steps):
                t0 = time.perf_counter()
                fn()
                t.append(time.perf_counter() - t0)
            times[name].append(float(np.median(t)))
        log(f"round {r + 1}/{rounds} done")
    ms = {name: round(1e3 * float(np.median(t)), 1) for name, t in times.items()}
    names = list(calls)
    parts = {
        "all-pairs objective (B x B head passes)": ms[names[0]] - ms[names[1]],
        "colour read-out objective": ms[names[1]] - ms[names[2]],
        "colour attention pooling + pair head": ms[names[2]] - ms[names[3]],
        "backbone, pooling, Dense(2), optimizer": ms[names[3]],
        "of which the backward pass and update (full step - forward)": ms[names[0]] - ms[names[4]],
    }
    return {"image_size": size, "batch_size": batch, "steps_ms": ms,
            "parts_ms": {k: round(v, 1) for k, v in parts.items()},
            "pairs_per_s": round(batch / (ms[names[0]] / 1e3), 1), "cpu": cpu_summary(as_dict=True)}


_OP_EVENT = re.compile(r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_]*$")


def _op_type(name):
    """`scope/op:Type` -> `Type`; names without a type are kept as they are."""
    return name.rsplit(":", 1)[-1] if ":" in name else name


def trace(trace_dir, data=None, size=48, batch=32, steps=5, model_cfg=None, train_cfg=None, log=print, top=15):
    """Profile `steps` full training steps into `trace_dir`; returns the op types by share of host op time."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    model_cfg = model_cfg or DEFAULTS["model"]
    train_cfg = dict(train_cfg or DEFAULTS["train"], batch_size=batch)
    pairs = synthetic_pairs(data, size, batch, log)
    trainee, x, y = _variant(model_cfg, train_cfg, pairs, size)
    for _ in range(3):
        trainee.train_on_batch(x, y)
    tf.profiler.experimental.start(trace_dir)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainee.train_on_batch(x, y)
    wall = time.perf_counter() - t0
    tf.profiler.experimental.stop()
    files = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True), key=os.path.getmtime)
    if not files:
        raise RuntimeError(f"{trace_dir}: the profiler wrote no .xplane.pb file")
    space = xplane_pb2.XSpace()
    with open(files[-1], "rb") as f:
        space.ParseFromString(f.read())
    by_type = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # TF op events are named `scope/op:Type`; the executor's own (`ExecutorState::Process`),
                # Python and tf.function events would count their ops' time twice
                if _OP_EVENT.match(name):
                    by_type[_op_type(name)] += event.duration_ps
    total = sum(by_type.values()) or 1
    rows = [{"op": op, "ms_per_step": round(ps / 1e9 / steps, 2), "share": round(ps / total, 3)}
            for op, ps in by_type.most_common(top)]
    return {"trace": files[-1], "steps": steps, "wall_ms_per_step": round(1e3 * wall / steps, 1),
            "op_ms_per_step": round(total / 1e9 / steps, 1), "ops": rows, "cpu": cpu_summary(as_dict=True)}


def conv_gradients(size=48, batch=32, repeats=10, backbone="resnet18", log=print):
    """Each convolution of the backbone, as a training step sees it (2 * `batch` garments at `size` px):
    milliseconds of TensorFlow's kernel and input gradients against the matmul ones of
    `training.conv_gradients`, and whether `train` uses the latter. A dict with one row per distinct shape."""
    import keras
    import tensorflow as tf

    from neipalette_tf.models.backbones import build_backbone
    from neipalette_tf.training import conv_gradients as cg

    net, _ = build_backbone(backbone, "none", log=lambda s: None)
    convs = [layer for layer in net._flatten_layers(include_self=False) if cg._eligible(layer)]
    probe = keras.Model(net.inputs, [layer.input for layer in convs])
    shapes = [tuple(s.shape) for s in probe(np.zeros((2 * batch, size, size, 3), "float32"))]
    rng = np.random.default_rng(0)

    def timed(fn):
        fn()
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(t))

    rows = {}
    for layer, shape in zip(convs, shapes):
        k, s, padding = layer.kernel_size, tuple(layer.strides), layer.padding.upper()
        key = (shape[1:], k, s, padding, layer.filters)
        if key in rows:
            rows[key]["layers"] += 1
            continue
        x = tf.constant(rng.normal(size=shape), tf.float32)
        w = tf.constant(rng.normal(size=(*k, shape[-1], layer.filters)), tf.float32)
        dy = tf.constant(rng.normal(size=tf.nn.conv2d(x, w, s, padding).shape), tf.float32)
        native_dw = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(  # noqa: E731
            input=x, filter_sizes=w.shape, out_backprop=dy, strides=[1, *s, 1], padding=padding))
        native_dx = tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(  # noqa: E731
            input_sizes=x.shape, filter=w, out_backprop=dy, strides=[1, *s, 1], padding=padding))
        matmul_dw = tf.function(lambda: cg.kernel_gradient(x, dy, tuple(w.shape), s, padding))  # noqa: E731
        matmul_dx = tf.function(lambda: cg.input_gradient(x, w, dy, s, padding))  # noqa: E731
        positions = cg._output_positions(layer, shape)
        rows[key] = {"input": f"{shape[1]}x{shape[2]}x{shape[3]}", "kernel": f"{k[0]}x{k[1]}/{s[0]}",
                     "output": f"{dy.shape[1]}x{dy.shape[2]}x{layer.filters}", "layers": 1,
                     "native_dw_ms": round(timed(native_dw), 2), "matmul_dw_ms": round(timed(matmul_dw), 2),
                     "native_dx_ms": round(timed(native_dx), 2), "matmul_dx_ms": round(timed(matmul_dx), 2),
                     "used_by_train": positions is not None and positions <= cg.MAX_POSITIONS}
        log(f"timed {layer.name}")
    return {"backbone": backbone, "image_size": size, "garments": 2 * batch, "repeats": repeats,
            "max_positions": cg.MAX_POSITIONS, "rows": list(rows.values()), "cpu": cpu_summary(as_dict=True)}
