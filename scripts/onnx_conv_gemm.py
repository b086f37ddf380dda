"""Measure the small-convolution GEMM rewrite of the ONNX export.

    python scripts/onnx_conv_gemm.py --model runs/X/model.keras [--max-pixels 0,4,9,36] [--threads 2] [--batch 32]

Converts the model's serving function to ONNX once per threshold (0 = no
rewrite; `export.onnx_im2col.MAX_OUTPUT_PIXELS` is the default the export
uses), checks every variant against the first, and prints:

- throughput of each variant in ONNX Runtime (pairs/s at the batch size:
  the median over alternating rounds, so machine noise hits all variants
  alike, and the best round),
- per layer shape, the time and GFLOP/s of `Conv` (unrewritten) and
  `Gemm` (rewritten) kernels from ONNX Runtime's profiler, next to the
  machine's fp32 matmul peak (`export.bench`'s microbenchmark).

This is what chose the default threshold; re-run it for another image
size or backbone.
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _sessions(model_path, thresholds, folder, threads, profile=False):
    import onnxruntime as ort

    from export import onnx as onnx_export
    from export.savedmodel import endpoints
    from neipalette_tf.models import load_model

    fn, signature = endpoints(load_model(model_path))["serving_default"]
    sessions = {}
    for t in thresholds:
        path = os.path.join(folder, f"model_{t}.onnx")
        with open(path, "wb") as f:
            f.write(onnx_export.convert(fn, signature, max_output_pixels=t).SerializeToString())
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = profile
        options.profile_file_prefix = os.path.join(folder, f"profile_{t}")
        sessions[t] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    size = signature[0].shape[1]
    return sessions, size


def _layer_flops(op, args):
    shapes = [list(s.values())[0] for s in args.get("input_type_shape", [])]
    if op == "Conv":
        (n, _, _, _), (o, cg, kh, kw) = shapes[0], shapes[1]
        out = list(args["output_type_shape"][0].values())[0]
        return 2 * n * o * out[2] * out[3] * cg * kh * kw, f"{out[2]}x{out[3]}, {shapes[1][1]}->{o}, {kh}x{kw}"
    (m, k), (_, n) = shapes[0], list(args["output_type_shape"][0].values())[0]  # B is pre-packed: not listed
    return 2 * m * k * n, f"GEMM {m}x{k} @ {k}x{n}"


def profile_layers(session, feed, runs=10):
    """{(op, layer shape): [median µs per node, GFLOP per call, nodes]} from ONNX Runtime's profiler."""
    for _ in range(runs):
        session.run(None, feed)
    events = json.load(open(session.end_profiling()))
    per_node = collections.defaultdict(list)
    for e in events:
        args = e.get("args", {})
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and args.get("op_name") in ("Conv", "Gemm"):
            per_node[(args["op_name"], e["name"])].append((e["dur"], _layer_flops(args["op_name"], args)))
    layers = collections.defaultdict(lambda: [0.0, 0, 0])
    import numpy as np

    for (op, _), calls in per_node.items():
        flops, shape = calls[0][1]
        row = layers[(op, shape)]
        row[0] += float(np.median([c[0] for c in calls]))
        row[1] = flops
        row[2] += 1
    return layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained model.keras")
    parser.add_argument("--max-pixels", default="0,4,9,36", help="thresholds to compare (0 = no rewrite)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    import numpy as np
    import onnx

    from export.bench import spawn

    thresholds = [int(t) for t in args.max_pixels.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        sessions, size = _sessions(args.model, thresholds, folder, args.threads)
        rng = np.random.default_rng(0)
        feed = {name: rng.uniform(0, 255, (args.batch, size, size, 3)).astype(np.float32) for name in ("top", "bottom")}
        reference = sessions[thresholds[0]].run(["harmony"], feed)[0]
        rates = {t: [] for t in thresholds}
        for _ in range(args.rounds):
            for t, s in sessions.items():
                s.run(None, feed)
                times = []
                for _ in range(10):
                    t0 = time.perf_counter()
                    s.run(None, feed)
                    times.append(time.perf_counter() - t0)
                rates[t].append(args.batch / float(np.median(times)))
        peak = spawn({"kind": "peak", "threads": args.threads}, threads=args.threads)["peak_gflops"]
        print(f"{args.model}: {size} px, batch {args.batch}, {args.threads} threads; "
              f"fp32 matmul peak {peak:.0f} GFLOP/s\n")
        print("| max output pixels rewritten | Conv left | pairs/s, median of rounds | best round | max |Δp| vs first |")
        print("|---:|---:|---:|---:|---:|")
        for t, s in sessions.items():
            diff = float(np.abs(s.run(["harmony"], feed)[0] - reference).max())
            convs = sum(n.op_type == "Conv" for n in onnx.load(os.path.join(folder, f"model_{t}.onnx")).graph.node)
            print(f"| {t} | {convs} | {np.median(rates[t]):.0f} | {max(rates[t]):.0f} | {diff:.1e} |")
        profiled, _ = _sessions(args.model, [0, max(thresholds)], folder, args.threads, profile=True)
        print("\nPer layer shape (both towers; µs = sum over nodes of each node's median):\n")
        print("| kernel | layer | nodes | µs | GFLOP/s | % of peak |")
        print("|---|---|---:|---:|---:|---:|")
        for t, s in profiled.items():
            for (op, shape), (us, flops, nodes) in sorted(profile_layers(s, feed).items(), key=lambda kv: -kv[1][0]):
                rate = flops * nodes / (us * 1e-6) / 1e9
                print(f"| {op} (threshold {t}) | {shape} | {nodes} | {us:.0f} | {rate:.0f} | {rate / peak:.0%} |")


if __name__ == "__main__":
    main()
