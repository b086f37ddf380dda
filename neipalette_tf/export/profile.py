"""Where a `.tflite` file's time goes, by layer scope, in the LiteRT interpreter.

    python -m export.profile artifacts/X/model_int8.tflite [--threads 2] [--runs 200] [--depth 2]

LiteRT's Python API has no per-op profiler, and with XNNPACK the whole
graph is one delegate node anyway. So this times *cuts* of the graph: the
ops up to the end of each run of ops that share a layer scope (read off
their output tensors' names: `encoder/resnet18/stack3`,
`encoder/colour_pooling`, `head`, ...), with every tensor the cut produces
and does not consume as an output, so that no op of it is dead code that
the delegate would skip. A scope's cost is the difference between the cut
that ends it and the one before. Each cut is timed `--runs` times in
rounds that go through all cuts in turn (a burst on a shared machine
slows every cut alike), and its fastest run is its time: the best case
the file allows, without the host's noise. Steps can come out slightly
negative when two cuts are within noise of each other.

Prints one line per run of ops, then the total per scope, largest first.
Needs only `ai-edge-litert` (and its `flatbuffers`), no TensorFlow.

An `.onnx` file is profiled by ONNX Runtime's own profiler instead
(`SessionOptions.enable_profiling`): each kernel's time, summed by op type
and averaged over `--runs` runs of a random batch of `--batch` pairs (or
images), then the slowest nodes.

    python -m export.profile artifacts/X/model_int8.onnx --threads 1 --batch 32 --runs 6
"""

import collections
import json
import os
import re
import tempfile
import time

import numpy as np

from neipalette_tf.export.flatbuffer import dump, load

ROUNDS = 20


def scope(tensor_name, depth=2):
    """The layer scope of an op's output tensor name, e.g.
    "encoder_1/resnet18_1/stack3_block1_2_bn_1/batchnorm/add_1;..." -> "encoder/resnet18/stack3".

    The name's path without the op itself, its first `depth` parts without
    Keras' `_1` call suffixes, and the stage of a backbone layer (`stack3`,
    `block2`, `conv1`, `pool1`); None for names without a path (the
    converter's `tfl.quantize`, the signature's outputs).
    """
    parts = [re.sub(r"_\d+$", "", p) for p in tensor_name.split(";")[0].split("/")[:-1]]
    if not parts:
        return None
    key = parts[:depth]
    if len(parts) > depth:
        stage = re.match(r"(stack\d+|block\d+|conv1|pool1)(_|$)", parts[depth])
        if stage:
            key.append(stage.group(1))
    return "/".join(key)


def runs_of_ops(model_bytes, depth=2):
    """`[(scope, first op, last op)]`: the graph's ops in execution order, grouped into runs that
    share a `scope(name, depth)` (ops without one join the run before them, or the first run)."""
    model = load(model_bytes)
    graph = model.subgraphs[0]
    names = [graph.tensors[op.outputs[0]].name.decode() for op in graph.operators]
    runs = []
    for i, name in enumerate(names):
        s = scope(name, depth)
        if runs and (s is None or s == runs[-1][0]):
            runs[-1][2] = i
        elif s is None:
            runs.append([None, i, i])
        elif runs and runs[-1][0] is None:
            runs[-1][0], runs[-1][2] = s, i
        else:
            runs.append([s, i, i])
    return [tuple(r) for r in runs]


def cut(model_bytes, last):
    """The graph of ops `0..last` as `.tflite` bytes. Its outputs are every tensor those ops
    produce that none of them reads (so nothing in the cut is dead), and the graph's own outputs
    among those they produce: the cut after the last op is the whole graph."""
    model = load(model_bytes)
    graph = model.subgraphs[0]
    graph.operators = graph.operators[:last + 1]
    read = {int(t) for op in graph.operators for t in op.inputs}
    own = {int(t) for t in graph.outputs}
    graph.outputs = [int(t) for op in graph.operators for t in op.outputs if int(t) not in read or int(t) in own]
    model.signatureDefs = None  # signatures name tensors the cut may not output
    return dump(model)


def _interpreter(model_bytes, threads):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes, num_threads=threads)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interpreter.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            value = rng.integers(info.min, info.max, d["shape"], endpoint=True)
        else:
            value = rng.uniform(0, 255, d["shape"])
        interpreter.set_tensor(d["index"], value.astype(d["dtype"]))
    return interpreter


def profile(path, threads=2, runs=200, rounds=ROUNDS, depth=2):
    """Time the cuts of `path`; returns `[{"scope", "ops": (first, last), "ms", "step_ms"}]`."""
    with open(path, "rb") as f:
        model_bytes = f.read()
    _interpreter(model_bytes, 1)  # LiteRT's ValueError for anything but a runnable .tflite file
    groups = runs_of_ops(model_bytes, depth)
    interpreters = [_interpreter(cut(model_bytes, last), threads) for _, _, last in groups]
    for interpreter in interpreters:  # warm-up
        for _ in range(3):
            interpreter.invoke()
    best = [float("inf")] * len(groups)
    per_round = max(1, -(-runs // rounds))
    for _ in range(rounds):
        for i, interpreter in enumerate(interpreters):
            for _ in range(per_round):
                start = time.perf_counter()
                interpreter.invoke()
                best[i] = min(best[i], time.perf_counter() - start)
    result, before = [], 0.0
    for (name, first, last), seconds in zip(groups, best):
        result.append({"scope": name or "(io)", "ops": (first, last), "ms": seconds * 1e3,
                       "step_ms": (seconds - before) * 1e3})
        before = seconds
    return result


def report(path, rows, threads, runs):
    """The profile as text: one line per run of ops, then each scope's total, largest first."""
    total = rows[-1]["ms"]
    lines = [f"{path}: {threads} thread(s), fastest of {runs} runs per cut; whole graph {total:.3f} ms",
             f"{'ops':>9}  {'scope':40s} {'ms so far':>9} {'step ms':>8}"]
    for r in rows:
        first, last = r["ops"]
        lines.append(f"{first:>4}-{last:<4}  {r['scope']:40s} {r['ms']:9.3f} {r['step_ms']:+8.3f}")
    by_scope = {}
    for r in rows:
        by_scope[r["scope"]] = by_scope.get(r["scope"], 0.0) + r["step_ms"]
    lines.append("by scope:")
    for name, ms in sorted(by_scope.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:40s} {ms:7.3f} ms  {ms / total:6.1%}")
    return "\n".join(lines)


def onnx_profile(path, threads, runs, batch=1, warmup=5):
    """`{"by_op": {op type: ms per run}, "by_node": {node: ms per run}}` of an `.onnx` graph, from
    ONNX Runtime's profiler over `runs` runs (after `warmup` untimed ones) of random inputs
    (pixel values 0..255 for images)."""
    import onnxruntime as ort  # deferred: a .tflite profile does not need it

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.log_severity_level = 4  # a file that fails to load: our one-line error, not ORT's log lines too
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="neipalette-profile-") as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else batch for d in i.shape]
            feed[i.name] = (rng.integers(0, 256, shape) if len(shape) == 4 else rng.normal(size=shape)).astype(np.float32)
        for _ in range(warmup + runs):
            session.run(None, feed)
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    timed_from = starts[warmup] if len(starts) > warmup else 0
    by_op, by_node = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= timed_from:
            by_op[e["args"]["op_name"]] += e["dur"] / 1e3 / runs
            by_node[e["name"][:-len("_kernel_time")]] += e["dur"] / 1e3 / runs
    return {"by_op": dict(by_op), "by_node": dict(by_node)}


def onnx_report(path, result, threads, runs, batch, top=10):
    total = sum(result["by_op"].values())
    lines = [f"{path}: {threads} thread(s), batch {batch}, ONNX Runtime's profiler over {runs} runs; "
             f"kernels {total:.3f} ms per run", "by op type:"]
    for op, ms in sorted(result["by_op"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {op:28s} {ms:8.3f} ms  {ms / total:6.1%}")
    lines.append(f"slowest {top} nodes:")
    for node, ms in sorted(result["by_node"].items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {node[:70]:70s} {ms:8.3f} ms")
    return "\n".join(lines)


if __name__ == "__main__":  # `python -m neipalette_tf.export.profile`: the `export-profile` command
    import runpy

    runpy.run_module("neipalette_tf.commands.export_profile", run_name="__main__", alter_sys=True)
