"""Benchmark an export folder.

    python -m export.bench --artifacts artifacts/X [--data PATH] [--formats onnx,tflite,...]
                           [--rounds 3] [--min-seconds 2]

One row per artifact (the source `model.keras`, the SavedModel, ONNX and
each TFLite file): file size, batch-1 latency p50 / p90 with 1 and 2
threads, throughput at batch 32 (2 threads), the share of the machine's
fp32 matmul peak those reach, test ROC-AUC and accuracy, and the export's
parity result. In the same run:

- the model's FLOPs per pair (`tf.profiler` float-op count of the frozen
  batch-1 serving graph; a multiply-add counts 2),
- the machine's fp32 matmul peak with 1 and 2 threads (best of NumPy and
  TensorFlow on 2048 x 2048 matrices; measured in every round, and the
  highest round is the peak), and its int8 matmul peak (ONNX Runtime's
  `MatMulInteger`, uint8 x int8, the same size): the ratio of the two bounds
  what any int8 graph can gain over a float32 one running at the same share
  of its peak, and the goal rows print that ceiling at batch 32,
- cold start: a fresh process importing, loading and scoring one pair the
  way `neipalette_tf.predict` does, for the TF-free runtime and for the
  TensorFlow paths, and whether TensorFlow was imported,
- wardrobe scoring: one top against 1,000 cached bottom embeddings with
  the head.

Every measurement runs in its own subprocess (thread counts are fixed at
start-up; nothing is shared between rows). The timings are taken in
`--rounds` rounds (default 3) that go through every row in turn, and each
figure is the median over the rounds: on a shared machine another
tenant's burst then slows one round of every row, not every round of one
row (which would fake or hide a speed-up). Each round's figures are kept
in `bench.json`. Writes `bench.json` and `bench.md` into the folder and
prints the markdown. The test pairs are the export's parity pairs unless
`--data` names a manifest (its test split, or all rows). Timings on a
shared machine vary: the load average at the start and end is recorded
with them.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from neipalette_tf.core.cli import UserError
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.io_utils import write_json, write_text
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.evaluation.metrics import classification_metrics
from neipalette_tf.export.parity import batched
from neipalette_tf.predictors import load_predictor
from neipalette_tf.predictors.runtime import read_card

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds the package
RUNTIME_FORMATS = ("onnx", "onnx_int8", "tflite", "tflite_fp16", "tflite_int8")
INT8_ROWS = ("tflite_int8", "onnx_int8")
INT8_GOAL = 2.5  # each int8 file against float32 TFLite, at batch 1 (both thread counts) and batch 32
THREADS = (1, 2)
BATCH = 32
WARDROBE = 1000
MATMUL_N = 2048
ROUNDS = 3
MIN_SECONDS = 2.0  # per latency or throughput measurement
# What the bench writes into an export folder (the exporter clears them: they describe one export).
OUTPUT_NAMES = ("bench.json", "bench.md")


# --------------------------------------------------------------------------
# Workers (each in a fresh process)
# --------------------------------------------------------------------------


def _timed(fn, min_runs, min_seconds, warmup=2):
    """Run `fn` until both minimums are met; returns the per-run seconds."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2000:
            break
    return times


def _set_tf_threads(threads):
    import tensorflow as tf  # deferred: a worker timing a TF-free format never loads TensorFlow

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _artifact(card, folder, fmt):
    """The file (or folder) of a row: the source model.keras, or the format's model file."""
    if fmt == "keras":
        return card["source"]["model"]
    return os.path.join(folder, card["artifacts"][fmt]["model"]["file"])


def _load(fmt, folder, card, threads):
    """The `Predictor` of one row (`predict_batch`, `embed_batch`, `score_batch`)."""
    if fmt in ("keras", "savedmodel"):
        _set_tf_threads(threads)  # before TensorFlow runs anything
    return load_predictor(_artifact(card, folder, fmt), threads=threads)


def work_measure(job):
    """Latency (batch 1), and optionally throughput, test predictions and wardrobe scoring."""


    card = _card(job["folder"])
    runner = _load(job["format"], job["folder"], card, job["threads"])
    data = np.load(job["data"])
    tops, bottoms = data["tops"], data["bottoms"]
    t1, b1 = tops[:1], bottoms[:1]
    seconds = job.get("min_seconds", MIN_SECONDS)
    times = np.array(_timed(lambda: runner.predict_batch(t1, b1), 20, seconds)) * 1e3
    result = {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
              "runs": len(times)}
    if job["full"]:
        idx = np.arange(BATCH) % len(tops)
        tb, bb = tops[idx], bottoms[idx]
        bt = _timed(lambda: runner.predict_batch(tb, bb), 3, seconds, warmup=1)
        result["pairs_per_s_b32"] = BATCH / float(np.median(bt))
    if job.get("predict"):
        result["p_test"] = batched(runner.predict_batch, tops, bottoms, batch_size=BATCH).tolist()
    if card["pairing"] == "siamese":
        e_top = runner.embed_batch(t1)
        e_bottoms = runner.embed_batch(bottoms[:BATCH])
        e_bottoms = e_bottoms[np.arange(WARDROBE) % len(e_bottoms)]
        e_tops = np.broadcast_to(e_top, e_bottoms.shape)
        st = np.array(_timed(lambda: runner.score_batch(e_tops, e_bottoms), 10, seconds / 2)) * 1e3
        result["score_1000_p50_ms"] = float(np.percentile(st, 50))
    return result


def work_startup(job):
    """Import, load and score one pair like `neipalette_tf.predict`; report when done."""
    p = load_predictor(job["model"]).predict_pair(job["top"], job["bottom"])
    done = time.time()
    heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
    return {"done_at": done, "p": p, "imported": heavy}


def work_peak(job):
    """fp32 matmul GFLOP/s: best of NumPy and TensorFlow with `threads` threads."""
    n = MATMUL_N
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in (0, 1))
    flops = 2.0 * n ** 3
    seconds = job.get("min_seconds", MIN_SECONDS) / 2
    result = {"numpy_gflops": flops / min(_timed(lambda: a @ b, 5, seconds)) / 1e9}
    _set_tf_threads(job["threads"])

    import tensorflow as tf  # deferred: a worker timing a TF-free format never loads TensorFlow

    ta, tb = tf.constant(a), tf.constant(b)
    matmul = tf.function(lambda: tf.linalg.matmul(ta, tb))
    result["tensorflow_gflops"] = flops / min(_timed(lambda: matmul().numpy(), 5, seconds)) / 1e9
    result["peak_gflops"] = max(result["numpy_gflops"], result["tensorflow_gflops"])
    int8 = _int8_matmul(job["threads"])
    if int8 is not None:
        result["int8_gops"] = flops / min(_timed(int8, 5, seconds)) / 1e9
    return result


def _int8_matmul(threads):
    """A call of ONNX Runtime's uint8 x int8 `MatMulInteger` (MLAS, the int8 ONNX files' kernels)
    on MATMUL_N² matrices, or None without onnxruntime."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    n = MATMUL_N
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "b")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8_peak",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
    return lambda: session.run(None, feed)


def work_flops(job):
    """Float operations of one pair through the full model (frozen batch-1 graph)."""


    import tensorflow as tf  # deferred: a worker timing a TF-free format never loads TensorFlow
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from neipalette_tf.export.savedmodel import endpoints  # deferred: TensorFlow
    from neipalette_tf.models import load_model  # deferred: TensorFlow

    fn, signature = endpoints(load_model(job["model"]))["serving_default"]
    one = [tf.TensorSpec([1, *s.shape[1:]], s.dtype, name=s.name) for s in signature]
    frozen = convert_variables_to_constants_v2(tf.function(fn, input_signature=one).get_concrete_function())
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return {"flops_per_pair": int(profile.total_float_ops)}


WORKERS = {"measure": work_measure, "startup": work_startup, "peak": work_peak, "flops": work_flops}


def spawn(job, threads=2):
    """Run one worker job in a fresh Python process; returns its JSON result."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "neipalette_tf.export.bench", "--worker", json.dumps(job)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"bench worker {job['kind']} {job.get('format', '')} failed:\n{tail}")
    result = json.loads(lines[-1])
    result["started_at"] = started
    return result


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


def _card(folder):
    card = read_card(folder)
    if card is None:
        raise UserError(f"{folder}: no model_card.json (export it first with python -m export)")
    return card


def bench_pairs(card, data):
    """The test pairs: `--data`'s test split (or all rows), else the export's parity pairs.

    Returns (tops, bottoms, manifest, source), images decoded with `load_image`.
    """
    from neipalette_tf.export.exporter import sample, select_pairs  # deferred: the exporter loads TensorFlow



    if data is None:
        source = card["parity"]["data"]
        manifest = read_manifest(source["manifest"]).subset(source["split"])
        if "sampled" in source:  # the same rows the export checked
            manifest = sample(manifest, source["sampled"])
    else:
        manifest, source = select_pairs(data, None, "test", 1, 10 ** 9, "the benchmark", "--data")
    size = card["image_size"]
    tops = np.stack([load_image(p, size) for p in manifest.column("top")])
    bottoms = np.stack([load_image(p, size) for p in manifest.column("bottom")])
    return tops, bottoms, manifest, source


def _size_mb(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 1e6
    return os.path.getsize(path) / 1e6


def _parity_text(result):
    if result is None:
        return "reference"
    m = result["model"]
    verdict = "pass" if result["passed"] else "FAIL"
    if "roc_auc_diff" in m:
        return f"{verdict} (ΔAUC {m['roc_auc_diff']:.4f}, {m['decision_agreement']:.1%} same)"
    return f"{verdict} (max Δp {m['max_abs_diff']:.1e})"


def _median_of_rounds(rounds):
    """One measurement dict from a list of per-round dicts: the median of each number."""
    keys = [k for k, v in rounds[0].items() if isinstance(v, (int, float)) and k != "started_at"]
    return {k: float(np.median([r[k] for r in rounds])) for k in keys}


def _peak_of_rounds(rounds):
    """A peak is the best the machine did: the highest round (so the fractions of it err low, not high).
    The int8 peak is its own best round."""
    peak = {**max(rounds, key=lambda p: p["peak_gflops"]), "rounds": [p["peak_gflops"] for p in rounds]}
    if all("int8_gops" in p for p in rounds):
        peak["int8_gops"] = max(p["int8_gops"] for p in rounds)
    return peak


def run_bench(folder, data=None, command=None, log=print, formats=None, rounds=ROUNDS, min_seconds=MIN_SECONDS):
    """Measure every artifact of an export folder (or the `formats` among them); returns the bench dict."""


    card = _card(folder)
    available = ["keras"] + [f for f in ("savedmodel", *RUNTIME_FORMATS) if f in card["artifacts"]]
    if formats:
        missing = [f for f in formats if f not in available]
        if missing:
            raise UserError(f"{folder}: no {', '.join(missing)} artifact (has {', '.join(available)})")
    formats = [f for f in available if not formats or f in formats]
    tops, bottoms, manifest, data_desc = bench_pairs(card, data)
    labels = manifest.labels
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "pairs.npz")
        np.savez(npz, tops=tops, bottoms=bottoms)
        log(f"{folder}: {len(labels)} test pairs; formats {', '.join(formats)}; {rounds} round(s)")
        flops = spawn({"kind": "flops", "model": card["source"]["model"]})["flops_per_pair"]
        peaks = {t: [] for t in THREADS}
        measured = {fmt: {t: [] for t in THREADS} for fmt in formats}
        p_test = {}
        for r in range(rounds):
            for t in THREADS:
                peaks[t].append(spawn({"kind": "peak", "threads": t, "min_seconds": min_seconds}, threads=t))
            for fmt in formats:
                for t in THREADS:
                    job = {"kind": "measure", "format": fmt, "threads": t, "folder": folder, "data": npz,
                           "full": t == max(THREADS), "predict": r == 0 and t == max(THREADS),
                           "min_seconds": min_seconds}
                    result = spawn(job, threads=t)
                    if "p_test" in result:
                        p_test[fmt] = result.pop("p_test")
                    measured[fmt][t].append(result)
                full = measured[fmt][max(THREADS)][-1]
                log(f"  round {r + 1}, {fmt}: p50 {measured[fmt][1][-1]['p50_ms']:.2f} ms (1 thread), "
                    f"{full['pairs_per_s_b32']:.0f} pairs/s at batch {BATCH}")
        peak = {t: _peak_of_rounds(peaks[t]) for t in THREADS}
        rows = {}
        for fmt in formats:
            row = {"threads": {t: _median_of_rounds(measured[fmt][t]) for t in THREADS},
                   "rounds": {t: measured[fmt][t] for t in THREADS}}
            m = classification_metrics(labels, p_test[fmt], n_bootstrap=0)
            row.update(roc_auc=m["roc_auc"], accuracy=m["accuracy"],
                       pairs_per_s_b32=row["threads"][max(THREADS)]["pairs_per_s_b32"])
            path = _artifact(card, folder, fmt)
            row["size_mb"] = _size_mb(path)
            row["file"] = os.path.relpath(path, folder) if fmt != "keras" else path
            row["parity"] = card["parity"]["formats"].get(fmt)
            rows[fmt] = row
        startup = measure_startup(card, folder, formats, manifest.rows[0])
    bench = {
        "command": command or f"python -m export.bench --artifacts {folder}" + (f" --data {data}" if data else ""),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_summary(as_dict=True), "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
        "data": data_desc, "pairs": int(len(labels)), "rounds": rounds,
        "flops_per_pair": flops, "matmul_peak": peak, "rows": rows, "startup": startup,
    }
    bench["goals"] = goals(bench)
    return bench


def measure_startup(card, folder, formats, row):
    """Seconds from spawning a fresh process to its first prediction of `row`, per format."""
    result = {}
    for fmt in formats:
        done = spawn({"kind": "startup", "model": _artifact(card, folder, fmt), "top": row["top"], "bottom": row["bottom"]})
        result[fmt] = {"seconds": done["done_at"] - done["started_at"], "imported": done["imported"]}
    return result


def _fraction(flops, pairs_per_s, peak_gflops):
    return flops * pairs_per_s / (peak_gflops * 1e9)


def goals(bench):
    """The issue's performance goals, with what was measured."""
    rows, flops, peak = bench["rows"], bench["flops_per_pair"], bench["matmul_peak"]
    fp32 = [f for f in ("keras", "savedmodel", "onnx", "tflite") if f in rows]
    best = max(fp32, key=lambda f: rows[f]["pairs_per_s_b32"])
    result = {"best_fp32_runtime": {
        "format": best, "fraction_of_peak": _fraction(flops, rows[best]["pairs_per_s_b32"], peak[2]["peak_gflops"]),
        "goal": ">= 0.5"}}
    result["best_fp32_runtime"]["met"] = result["best_fp32_runtime"]["fraction_of_peak"] >= 0.5
    if "tflite" in rows and "tflite_int8" in rows:
        fp, q = rows["tflite"], rows["tflite_int8"]
        speed = {t: fp["threads"][t]["p50_ms"] / q["threads"][t]["p50_ms"] for t in THREADS}
        result["int8_speedup"] = {"vs": "tflite float32, batch-1 p50", "by_threads": speed, "goal": ">= 3",
                                  "met": min(speed.values()) >= 3}
        ratio = q["size_mb"] / fp["size_mb"]
        result["int8_size"] = {"fraction_of_float32": ratio, "goal": "<= 1/3.5", "met": ratio <= 1 / 3.5}
    for q_fmt in ("tflite_int8", "onnx_int8"):
        if "tflite" in rows and q_fmt in rows:
            fp, q = rows["tflite"], rows[q_fmt]
            ratios = {**{f"batch 1, {t} thr": fp["threads"][t]["p50_ms"] / q["threads"][t]["p50_ms"] for t in THREADS},
                      "batch 32": q["pairs_per_s_b32"] / fp["pairs_per_s_b32"]}
            result[f"{q_fmt}_vs_tflite"] = {"vs": "tflite float32", "ratios": ratios, "goal": f">= {INT8_GOAL}",
                                            "met": min(ratios.values()) >= INT8_GOAL}
            if "int8_gops" in peak[2]:
                # an int8 graph whose every op ran at the int8 matmul peak, against this float32 TFLite
                float_rate = flops * fp["pairs_per_s_b32"] / 1e9
                result[f"{q_fmt}_vs_tflite"]["ceiling_batch_32"] = peak[2]["int8_gops"] / float_rate
    scored = {f: r["threads"][t]["score_1000_p50_ms"] for f, r in rows.items() for t in (1,)
              if "score_1000_p50_ms" in r["threads"][t]}
    if scored:
        fastest = min(scored, key=scored.get)
        result["wardrobe_1000"] = {"format": fastest, "p50_ms_1_thread": scored[fastest], "goal": "<= 10 ms",
                                   "met": scored[fastest] <= 10}
    return result


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def cpu_summary_line(machine):
    """The CPU of a bench result (`cpu_summary`'s line without its 'CPU: '; older results: the CPU count)."""
    info = machine.get("cpu")
    if not info:
        return f"{machine['cpus']} CPUs"
    yes = {True: "yes", False: "no"}
    return (f"{info['model']}, {info['cores']} cores, AVX2 {yes[info['avx2']]}, AVX-512 {yes[info['avx512']]}, "
            f"oneDNN {'on' if info['onednn'] else 'off'}")


def markdown(bench):
    """The bench as markdown tables."""
    flops, peak = bench["flops_per_pair"], bench["matmul_peak"]
    m = bench["machine"]
    lines = [
        f"Command: `{bench['command']}`",
        "",
        f"Machine: {cpu_summary_line(m)}, load average {m['load_average_start'][0]:.2f} at start, "
        f"{m['load_average_end'][0]:.2f} at end. Test pairs: {bench['pairs']}. "
        f"Model: {flops / 1e9:.3f} GFLOP per pair. fp32 matmul peak ({MATMUL_N}²): "
        + ", ".join(f"{t} thread{'s' * (t > 1)} {peak[t]['peak_gflops']:.0f} GFLOP/s "
                    f"(NumPy {peak[t]['numpy_gflops']:.0f}, TF {peak[t]['tensorflow_gflops']:.0f})" for t in THREADS)
        + ("; int8 matmul peak (ONNX Runtime, uint8 x int8): "
           + ", ".join(f"{t} thread{'s' * (t > 1)} {peak[t]['int8_gops']:.0f} GOP/s" for t in THREADS)
           if all("int8_gops" in peak[t] for t in THREADS) else "")
        + f". Timings: median of {bench['rounds']} round(s) through every row."
        + (" The int8 rows' % peak is of the int8 peak." if all("int8_gops" in peak[t] for t in THREADS) else ""),
        "",
        "| artifact | MB | p50 / p90 ms, 1 thread | p50 / p90 ms, 2 threads | pairs/s, batch 32 | "
        "% peak, batch 1, 1 thread | % peak, batch 32 | ROC-AUC | accuracy | parity |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for fmt, r in bench["rows"].items():
        t1, t2 = r["threads"][1], r["threads"][2]
        key = "int8_gops" if fmt in INT8_ROWS and all("int8_gops" in peak[t] for t in THREADS) else "peak_gflops"
        frac1 = _fraction(flops, 1e3 / t1["p50_ms"], peak[1][key])
        frac32 = _fraction(flops, r["pairs_per_s_b32"], peak[2][key])
        lines.append(
            f"| {fmt} (`{os.path.basename(r['file'])}`) | {r['size_mb']:.1f} | {t1['p50_ms']:.2f} / {t1['p90_ms']:.2f} | "
            f"{t2['p50_ms']:.2f} / {t2['p90_ms']:.2f} | {r['pairs_per_s_b32']:.0f} | {frac1:.1%} | {frac32:.1%} | "
            f"{r['roc_auc']:.3f} | {r['accuracy']:.3f} | {_parity_text(r['parity'])} |")
    lines += ["", "Cold start: a fresh process imports, loads the model and scores one pair "
              "(`neipalette_tf.predict`'s path).", "",
              "| model | seconds to first p | TensorFlow / Keras imported |", "|---|---:|---|"]
    for fmt, s in bench["startup"].items():
        lines.append(f"| {fmt} | {s['seconds']:.2f} | {', '.join(s['imported']) or 'no'} |")
    lines += ["", f"Wardrobe: one top against {WARDROBE:,} cached bottom embeddings with the head, p50 ms.", "",
              "| artifact | 1 thread | 2 threads |", "|---|---:|---:|"]
    for fmt, r in bench["rows"].items():
        if "score_1000_p50_ms" in r["threads"][1]:
            lines.append(f"| {fmt} | {r['threads'][1]['score_1000_p50_ms']:.2f} | "
                         f"{r['threads'][2]['score_1000_p50_ms']:.2f} |")
    lines += ["", "| goal | target | measured | met |", "|---|---|---|---|"]
    g = bench["goals"]

    def goal_row(name, goal, target, measured):
        lines.append(f"| {name} | {target} | {measured} | {'yes' if goal['met'] else 'no'} |")

    b = g["best_fp32_runtime"]
    goal_row("best float32 runtime, share of matmul peak (batch 32)", b, b["goal"],
             f"{b['fraction_of_peak']:.1%} ({b['format']})")
    if "int8_speedup" in g:
        s, z = g["int8_speedup"], g["int8_size"]
        goal_row("int8 TFLite speed-up over float32 TFLite (batch 1)", s, f"{s['goal']}x",
                 ", ".join(f"{v:.2f}x ({t} thr)" for t, v in s["by_threads"].items()))
        goal_row("int8 TFLite size / float32 TFLite size", z, z["goal"], f"1/{1 / z['fraction_of_float32']:.2f}")
    for q_fmt in ("tflite_int8", "onnx_int8"):
        if f"{q_fmt}_vs_tflite" in g:
            r = g[f"{q_fmt}_vs_tflite"]
            ceiling = (f"; ceiling at batch 32 {r['ceiling_batch_32']:.2f}x (int8 matmul peak / float32 "
                       "TFLite's GFLOP/s)") if "ceiling_batch_32" in r else ""
            goal_row(f"{q_fmt} speed-up over float32 TFLite", r, f"{r['goal']}x",
                     ", ".join(f"{v:.2f}x ({k})" for k, v in r["ratios"].items()) + ceiling)
    if "wardrobe_1000" in g:
        w = g["wardrobe_1000"]
        goal_row("one top vs 1,000 cached bottoms", w, w["goal"],
                 f"{w['p50_ms_1_thread']:.2f} ms ({w['format']}, 1 thread)")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m export.bench", description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", help="an export folder (with model_card.json)")
    p.add_argument("--data", help="pairs.csv with test pairs (default: the export's parity pairs)")
    p.add_argument("--formats", help="comma-separated rows to measure (default: keras and every exported format)")
    p.add_argument("--rounds", type=int, default=ROUNDS, help="timing rounds; figures are medians over them")
    p.add_argument("--min-seconds", type=float, default=MIN_SECONDS, help="minimum time per timing")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.worker and not args.artifacts:
        p.error("--artifacts is required")
    if args.rounds < 1 or args.min_seconds <= 0:
        p.error("--rounds must be at least 1 and --min-seconds above 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(WORKERS[job["kind"]](job)))
        return 0

    folder = os.path.abspath(args.artifacts)
    bench = run_bench(folder, args.data, command=" ".join(["python -m export.bench", *(argv or sys.argv[1:])]),
                      formats=args.formats.split(",") if args.formats else None, rounds=args.rounds,
                      min_seconds=args.min_seconds)
    text = markdown(bench)
    write_json(os.path.join(folder, OUTPUT_NAMES[0]), bench)
    write_text(os.path.join(folder, OUTPUT_NAMES[1]), text)
    print(text)
    return 0


if __name__ == "__main__":
    from neipalette_tf.core import cli

    sys.exit(cli.run(main))
