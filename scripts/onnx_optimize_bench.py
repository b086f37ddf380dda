"""Measure what each ONNX graph pass of the export buys (`export/onnx_optimize.py`).

    python scripts/onnx_optimize_bench.py --model runs/X/model.keras [--threads 2] [--batch 32] [--rounds 8]
    python scripts/onnx_optimize_bench.py --broadcast [--threads 2]

Converts the model's serving function to ONNX without the passes, then
builds variants: tf2onnx's graph as it is; convolutions with at most 4, 9
(the export's default) or 36 output pixels as GEMMs; and all three passes
(what `python -m export` writes). It checks every variant against the
first and prints:

- throughput of each variant in ONNX Runtime (pairs/s at the batch size:
  the median over alternating rounds, so machine noise hits all variants
  alike, and the best round), with the share of the fp32 matmul peak
  (`export.bench`'s microbenchmark, best of two runs) the median reaches;
- per layer shape, the time and GFLOP/s of the `Conv` kernels of the plain
  graph and the `Gemm` kernels of the exported one, from ONNX Runtime's
  profiler;
- the time in every op type for both graphs.

`--broadcast` times only `x - c` in ONNX Runtime with the constant shaped
as tf2onnx writes it and as pass 2 reshapes it (the slow path pass 2 avoids).

Re-run it for another image size or backbone before changing a pass.
"""

import argparse
import collections
import copy
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from neipalette_tf.core.cpu_info import cpu_summary  # noqa: E402 - after the checkout is on sys.path


def variants(model_path):
    """{name: ModelProto} and the serving signature's image size."""
    from neipalette_tf.export import onnx as onnx_export
    from neipalette_tf.export import onnx_optimize as passes
    from neipalette_tf.export.savedmodel import endpoints
    from neipalette_tf.models import load_model

    fn, signature = endpoints(load_model(model_path))["serving_default"]
    plain = onnx_export.convert(fn, signature, optimize_graph=False)
    out = {"tf2onnx as is": plain}
    for pixels in (4, 9, 36):
        m = copy.deepcopy(plain)
        passes.small_convs_as_gemm(m, pixels)
        out[f"convs <= {pixels} px as GEMM"] = m
    out["all passes (the export)"] = passes.optimize(copy.deepcopy(plain))[0]
    return out, signature[0].shape[1]


def session(proto, folder, threads, profile=False):
    import onnxruntime as ort

    path = os.path.join(folder, f"{len(os.listdir(folder))}.onnx")
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    options.enable_profiling = profile
    options.profile_file_prefix = os.path.join(folder, "profile")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _shape(value):
    return list(value.values())[0]


def _layer(op, args):
    """(FLOPs, description) of a Conv or Gemm kernel call from its profiler record."""
    shapes = [_shape(s) for s in args.get("input_type_shape", [])]
    out = _shape(args["output_type_shape"][0])
    if op == "Conv":
        (n, _, _, _), (o, cg, kh, kw) = shapes[0], shapes[1]
        return 2 * n * o * out[2] * out[3] * cg * kh * kw, f"{out[2]}x{out[3]} map, {shapes[1][1]}->{o}, {kh}x{kw}"
    (m, k), n = shapes[0], out[-1]  # the weight is pre-packed, so not listed
    return 2 * m * k * n, f"{m}x{k} @ {k}x{n}"


def profile(sess, feed, runs=10):
    """({(op, layer): [µs per call summed over nodes, FLOPs per node, nodes]}, {op: µs per call})."""
    import numpy as np

    for _ in range(runs):
        sess.run(None, feed)
    events = json.load(open(sess.end_profiling()))
    calls = collections.defaultdict(list)
    for e in events:
        args = e.get("args", {})
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            calls[(args["op_name"], e["name"])].append((e["dur"], args))
    layers = collections.defaultdict(lambda: [0.0, 0, 0])
    ops = collections.Counter()
    for (op, _), c in calls.items():
        us = float(np.median([d for d, _ in c]))
        ops[op] += us
        if op in ("Conv", "Gemm"):
            flops, name = _layer(op, c[0][1])
            row = layers[(op, name)]
            row[0] += us
            row[1] = flops
            row[2] += 1
    return layers, ops


BROADCAST_CASES = (  # (x shape, constant shape before the pass, after it)
    ((32, 24, 24, 1), (), (1, 1, 1, 1)),
    ((32, 48, 48, 3), (3,), (1, 48, 48, 3)),
    ((32, 24, 24, 32), (32,), (1, 24, 24, 32)),
)


def broadcast_table(threads, runs=200):
    """`x - c` in ONNX Runtime with the constant as tf2onnx writes it and as pass 2 shapes it."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    print(cpu_summary())
    print(f"`x - c` in ONNX Runtime, {threads} thread(s), median of {runs} runs:\n")
    print("| x | c before | µs | c after | µs |")
    print("|---|---|---:|---|---:|")
    for x_shape, before, after in BROADCAST_CASES:
        times = []
        for c_shape in (before, after):
            c = numpy_helper.from_array(np.full(c_shape, 0.5, np.float32), "c")
            graph = helper.make_graph([helper.make_node("Sub", ["x", "c"], ["y"])], "g",
                                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)], [c])
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            s = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                     .SerializeToString(), options, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).random(x_shape, dtype=np.float32)
            for _ in range(10):
                s.run(None, {"x": x})
            t = []
            for _ in range(runs):
                t0 = time.perf_counter()
                s.run(None, {"x": x})
                t.append(time.perf_counter() - t0)
            times.append(float(np.median(t)) * 1e6)
        print(f"| {list(x_shape)} | {list(before)} | {times[0]:.0f} | {list(after)} | {times[1]:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a trained model.keras")
    parser.add_argument("--broadcast", action="store_true",
                        help="only time `x - c` with the constant before and after pass 2 (no model needed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    if args.broadcast:
        return broadcast_table(args.threads)
    if not args.model:
        parser.error("--model is required (or --broadcast)")
    import numpy as np

    from neipalette_tf.export.bench_workers import spawn

    protos, size = variants(args.model)
    flops = spawn({"kind": "flops", "model": args.model})["flops_per_pair"]
    with tempfile.TemporaryDirectory() as folder:
        sessions = {name: session(p, folder, args.threads) for name, p in protos.items()}
        rng = np.random.default_rng(0)
        feed = {name: rng.uniform(0, 255, (args.batch, size, size, 3)).astype(np.float32) for name in ("top", "bottom")}
        reference = sessions["tf2onnx as is"].run(["harmony"], feed)[0]
        rates = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, s in sessions.items():
                s.run(None, feed)
                times = []
                for _ in range(10):
                    t0 = time.perf_counter()
                    s.run(None, feed)
                    times.append(time.perf_counter() - t0)
                rates[name].append(args.batch / float(np.median(times)))
        peak = max(spawn({"kind": "peak", "threads": args.threads}, threads=args.threads)["peak_gflops"]
                   for _ in range(2))
        print(cpu_summary())
        print(f"{args.model}: {size} px, batch {args.batch}, {args.threads} threads, {args.rounds} rounds; "
              f"{flops / 1e9:.3f} GFLOP per pair; fp32 matmul peak {peak:.0f} GFLOP/s\n")
        print("| graph | Conv nodes | pairs/s, median of rounds | best round | % of peak (median) | max |Δp| vs tf2onnx |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, s in sessions.items():
            diff = float(np.abs(s.run(["harmony"], feed)[0] - reference).max())
            convs = sum(n.op_type == "Conv" for n in protos[name].graph.node)
            median = float(np.median(rates[name]))
            print(f"| {name} | {convs} | {median:.0f} | {max(rates[name]):.0f} | "
                  f"{flops * median / (peak * 1e9):.1%} | {diff:.1e} |")
        plain = session(protos["tf2onnx as is"], folder, args.threads, profile=True)
        final = session(protos["all passes (the export)"], folder, args.threads, profile=True)
        (plain_layers, plain_ops), (final_layers, final_ops) = profile(plain, feed), profile(final, feed)
        print("\nConv kernels of tf2onnx's graph and Gemm kernels of the exported one, per layer shape "
              "(both towers; µs per call, summed over nodes):\n")
        print("| graph | kernel | layer | nodes | µs | GFLOP/s | % of peak |")
        print("|---|---|---|---:|---:|---:|---:|")
        for label, layers in (("tf2onnx", plain_layers), ("export", final_layers)):
            for (op, name), (us, f, nodes) in sorted(layers.items(), key=lambda kv: -kv[1][0]):
                if label == "export" and op == "Conv":
                    continue
                rate = f * nodes / (us * 1e-6) / 1e9
                print(f"| {label} | {op} | {name} | {nodes} | {us:.0f} | {rate:.0f} | {rate / peak:.0%} |")
        print("\nTime per op type (µs per call, summed over nodes; profiler on):\n")
        print("| op | tf2onnx | export |")
        print("|---|---:|---:|")
        for op in sorted(set(plain_ops) | set(final_ops), key=lambda o: -(plain_ops[o] + final_ops[o]))[:16]:
            print(f"| {op} | {plain_ops[op]:.0f} | {final_ops[op]:.0f} |")
        print(f"| total | {sum(plain_ops.values()):.0f} | {sum(final_ops.values()):.0f} |")


if __name__ == "__main__":
    main()
