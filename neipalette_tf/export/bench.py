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

import os
import tempfile

import numpy as np

from neipalette_tf.core.cli import UserError
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.formats import list_formats
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import BENCH_OUTPUT_NAMES as OUTPUT_NAMES  # noqa: F401 - what the bench writes
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.evaluation.metrics import classification_metrics
from neipalette_tf.export.bench_workers import BATCH, MIN_SECONDS, artifact, export_card, spawn

RUNTIME_FORMATS = list_formats(tf_free=True)  # core.formats: what the TF-free runtime reads
INT8_ROWS = list_formats(tf_free=True, precision="int8")
INT8_GOAL = 2.5  # each int8 file against float32 TFLite, at batch 1 (both thread counts) and batch 32
THREADS = (1, 2)
ROUNDS = 3


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


    card = export_card(folder)
    available = ["keras"] + [f for f in list_formats() if f in card["artifacts"]]
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
            path = artifact(card, folder, fmt)
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
        done = spawn({"kind": "startup", "model": artifact(card, folder, fmt), "top": row["top"], "bottom": row["bottom"]})
        result[fmt] = {"seconds": done["done_at"] - done["started_at"], "imported": done["imported"]}
    return result


def fraction_of_peak(flops, pairs_per_s, peak_gflops):
    return flops * pairs_per_s / (peak_gflops * 1e9)


def goals(bench):
    """The issue's performance goals, with what was measured."""
    rows, flops, peak = bench["rows"], bench["flops_per_pair"], bench["matmul_peak"]
    fp32 = [f for f in ("keras", "savedmodel", "onnx", "tflite") if f in rows]
    best = max(fp32, key=lambda f: rows[f]["pairs_per_s_b32"])
    result = {"best_fp32_runtime": {
        "format": best, "fraction_of_peak": fraction_of_peak(flops, rows[best]["pairs_per_s_b32"], peak[2]["peak_gflops"]),
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


if __name__ == "__main__":  # `python -m neipalette_tf.export.bench`: the `export-bench` command
    import runpy

    runpy.run_module("neipalette_tf.commands.export_bench", run_name="__main__", alter_sys=True)
