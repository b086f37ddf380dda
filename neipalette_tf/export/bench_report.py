"""`bench.md`: an export benchmark (`neipalette_tf.export.bench`'s dict) as markdown tables."""

import os

from neipalette_tf.export.bench import INT8_ROWS, THREADS, fraction_of_peak
from neipalette_tf.export.bench_workers import MATMUL_N, WARDROBE


def _parity_text(result):
    if result is None:
        return "reference"
    m = result["model"]
    verdict = "pass" if result["passed"] else "FAIL"
    if "roc_auc_diff" in m:
        return f"{verdict} (ΔAUC {m['roc_auc_diff']:.4f}, {m['decision_agreement']:.1%} same)"
    return f"{verdict} (max Δp {m['max_abs_diff']:.1e})"


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
        frac1 = fraction_of_peak(flops, 1e3 / t1["p50_ms"], peak[1][key])
        frac32 = fraction_of_peak(flops, r["pairs_per_s_b32"], peak[2][key])
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
