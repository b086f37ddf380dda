"""`neipalette_tf.export.bench_report`: `bench.md` from a hand-made benchmark result.

The numbers are chosen so that every cell can be computed by hand: 1 GFLOP
per pair, a float32 peak of 100 GFLOP/s at 1 thread and 200 at 2, an int8
peak twice that. One goal is met (the best float32 runtime at >= 50 % of
peak) and the others are missed, and the report must say which. The real
benchmark run is tests/export/test_bench.py (full tier).
"""

from neipalette_tf.export import bench
from neipalette_tf.export.bench_report import cpu_summary_line, markdown
from neipalette_tf.export.bench_workers import WARDROBE


def row(file, size_mb, p50, pairs_b32, score_1000=None, parity=None, auc=0.9, acc=0.8):
    threads = {t: {"p50_ms": p50 / t, "p90_ms": p50 / t * 1.5} for t in (1, 2)}
    if score_1000 is not None:
        for t in (1, 2):
            threads[t]["score_1000_p50_ms"] = score_1000 / t
    return {"file": f"/somewhere/X/{file}", "size_mb": size_mb, "threads": threads, "pairs_per_s_b32": pairs_b32,
            "roc_auc": auc, "accuracy": acc, "parity": parity}


PASS = {"passed": True, "model": {"max_abs_diff": 2.5e-6}}
FAIL_AUC = {"passed": False, "model": {"roc_auc_diff": 0.0123, "decision_agreement": 0.955}}


def result(int8_peak=True):
    peak = {1: {"peak_gflops": 100.0, "numpy_gflops": 90.0, "tensorflow_gflops": 95.0},
            2: {"peak_gflops": 200.0, "numpy_gflops": 180.0, "tensorflow_gflops": 190.0}}
    if int8_peak:
        peak[1]["int8_gops"], peak[2]["int8_gops"] = 200.0, 400.0
    r = {"command": "python -m export.bench --artifacts X", "pairs": 160, "rounds": 3, "flops_per_pair": 1e9,
         "matmul_peak": peak,
         "machine": {"cpus": 2, "load_average_start": [0.5, 0, 0], "load_average_end": [1.25, 0, 0],
                     "cpu": {"model": "Test CPU 9000", "cores": 2, "avx2": True, "avx512": False, "onednn": False}},
         "rows": {"tflite": row("model.tflite", 40.0, 20.0, 120.0, score_1000=4.0),  # 120 pairs/s: 60 % of 200
                  "tflite_int8": row("model_int8.tflite", 12.0, 10.0, 200.0, parity=FAIL_AUC),  # 2x: under 3x
                  "onnx": row("model.onnx", 40.0, 25.0, 80.0, score_1000=12.0, parity=None)},
         "startup": {"tflite": {"seconds": 0.731, "imported": []},
                     "keras": {"seconds": 6.2, "imported": ["tensorflow", "keras"]}}}
    r["rows"]["tflite"]["parity"] = PASS
    r["goals"] = bench.goals(r)
    return r


def table(text, header):
    """The rows of the markdown table whose header line starts with `header`, as lists of cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_the_goals_table_says_which_goal_is_met_and_which_is_missed():
    r = result()
    goals = {name: cells for name, *cells in table(markdown(r), "| goal |")}
    best = goals["best float32 runtime, share of matmul peak (batch 32)"]
    assert best == [">= 0.5", "60.0% (tflite)", "yes"]
    speed = goals["int8 TFLite speed-up over float32 TFLite (batch 1)"]
    assert speed == [">= 3x", "2.00x (1 thr), 2.00x (2 thr)", "no"]
    size = goals["int8 TFLite size / float32 TFLite size"]
    assert size == ["<= 1/3.5", "1/3.33", "no"]  # 12 / 40 MB: above 1/3.5
    int8 = goals["tflite_int8 speed-up over float32 TFLite"]
    assert int8[0] == f">= {bench.INT8_GOAL}x" and int8[2] == "no"
    assert int8[1].startswith("2.00x (batch 1, 1 thr), 2.00x (batch 1, 2 thr), 1.67x (batch 32)")
    assert "ceiling at batch 32 3.33x" in int8[1]  # 400 GOP/s over the float32 file's 120 GFLOP/s
    assert goals["one top vs 1,000 cached bottoms"] == ["<= 10 ms", "4.00 ms (tflite, 1 thread)", "yes"]
    assert "onnx_int8 speed-up over float32 TFLite" not in goals  # no onnx_int8 row: no goal row


def test_a_goal_flips_with_its_measurement():
    r = result()
    r["rows"]["tflite"]["pairs_per_s_b32"] = 90.0  # 45 % of peak, still the best float32 row (onnx: 80)
    r["goals"] = bench.goals(r)
    goals = {name: cells for name, *cells in table(markdown(r), "| goal |")}
    assert goals["best float32 runtime, share of matmul peak (batch 32)"][1:] == ["45.0% (tflite)", "no"]


def test_the_rows_table_computes_peak_shares_per_row_and_names_the_parity():
    rows = {cells[0]: cells[1:] for cells in table(markdown(result()), "| artifact | MB |")}
    assert list(rows) == ["tflite (`model.tflite`)", "tflite_int8 (`model_int8.tflite`)", "onnx (`model.onnx`)"]
    fp = rows["tflite (`model.tflite`)"]
    # 1 thread p50 20 ms = 50 pairs/s = 50 GFLOP/s of 100; batch 32: 120 GFLOP/s of 200
    assert fp == ["40.0", "20.00 / 30.00", "10.00 / 15.00", "120", "50.0%", "60.0%", "0.900", "0.800",
                  "pass (max Δp 2.5e-06)"]
    q = rows["tflite_int8 (`model_int8.tflite`)"]
    # an int8 row's share is of the int8 peak: 100 pairs/s of 200 GOP/s, 200 of 400
    assert q[4:6] == ["50.0%", "50.0%"] and q[-1] == "FAIL (ΔAUC 0.0123, 95.5% same)"
    assert rows["onnx (`model.onnx`)"][-1] == "reference"
    text = markdown(result(int8_peak=False))  # without an int8 peak the int8 row is against the float32 one
    q = {cells[0]: cells[1:] for cells in table(text, "| artifact | MB |")}["tflite_int8 (`model_int8.tflite`)"]
    assert q[4:6] == ["100.0%", "100.0%"]
    assert "int8 matmul peak" not in text and "The int8 rows' % peak is of the int8 peak." not in text


def test_the_header_startup_and_wardrobe_tables():
    text = markdown(result())
    assert text.startswith("Command: `python -m export.bench --artifacts X`\n") and text.endswith("|\n")
    assert ("Machine: Test CPU 9000, 2 cores, AVX2 yes, AVX-512 no, oneDNN off, load average 0.50 at start, "
            "1.25 at end. Test pairs: 160. Model: 1.000 GFLOP per pair.") in text
    assert "1 thread 100 GFLOP/s (NumPy 90, TF 95), 2 threads 200 GFLOP/s (NumPy 180, TF 190)" in text
    assert "int8 matmul peak (ONNX Runtime, uint8 x int8): 1 thread 200 GOP/s, 2 threads 400 GOP/s" in text
    assert "median of 3 round(s)" in text
    startup = {cells[0]: cells[1:] for cells in table(text, "| model | seconds to first p |")}
    assert startup == {"tflite": ["0.73", "no"], "keras": ["6.20", "tensorflow, keras"]}
    assert f"one top against {WARDROBE:,} cached bottom" in text
    wardrobe = table(text, "| artifact | 1 thread | 2 threads |")
    assert wardrobe == [["tflite", "4.00", "2.00"], ["onnx", "12.00", "6.00"]]  # rows without the timing: none


def test_cpu_summary_line_of_new_and_old_results():
    m = result()["machine"]
    assert cpu_summary_line(m) == "Test CPU 9000, 2 cores, AVX2 yes, AVX-512 no, oneDNN off"
    m["cpu"].update(avx512=True, onednn=True)
    assert cpu_summary_line(m).endswith("AVX-512 yes, oneDNN on")
    assert cpu_summary_line({"cpus": 4}) == "4 CPUs"  # a result from before the CPU was recorded
    assert cpu_summary_line({"cpus": 4, "cpu": None}) == "4 CPUs"

