"""The export benchmark (neipalette_tf/export/bench.py, bench_workers.py, bench_report.py, `export-bench`)."""

import json

import pytest
from helpers import SPLITS, run_module


pytestmark = pytest.mark.slow  # exports a model or starts TensorFlow in a subprocess: the full tier


def test_bench_measures_every_row_and_judges_the_goals(exported, capsys, monkeypatch):
    from neipalette_tf.commands import export_bench
    from neipalette_tf.export import bench, bench_workers

    out, _ = exported
    spawn = bench.spawn  # the FLOP count in this process (TensorFlow is loaded here already): ~10 s less
    monkeypatch.setattr(bench, "spawn", lambda job, **kw: bench_workers.work_flops(job) if job["kind"] == "flops"
                        else spawn(job, **kw))
    assert export_bench.main(["--artifacts", str(out), "--formats", "tflite,tflite_int8,onnx_int8",
                              "--rounds", "1", "--min-seconds", "0.05"]) == 0
    report = json.loads((out / "bench.json").read_text())
    assert set(report["rows"]) == {"tflite", "tflite_int8", "onnx_int8"} and report["rounds"] == 1
    assert report["flops_per_pair"] > 0 and report["pairs"] == dict(SPLITS)["test"]
    for t in ("1", "2"):
        assert report["matmul_peak"][t]["peak_gflops"] > 0 and report["matmul_peak"][t]["int8_gops"] > 0
    for fmt, row in report["rows"].items():
        for t in ("1", "2"):
            assert len(row["rounds"][t]) == 1 and row["threads"][t]["score_1000_p50_ms"] > 0
            assert row["threads"][t]["p50_ms"] == row["rounds"][t][0]["p50_ms"]
        assert row["pairs_per_s_b32"] > 0
        assert 0.5 < row["roc_auc"] <= 1 and row["parity"]["passed"], fmt
        assert report["startup"][fmt]["imported"] == []  # the TF-free runtime
    goals = report["goals"]
    best = goals["best_fp32_runtime"]
    assert best["format"] == "tflite"  # the only float32 row measured
    assert best["fraction_of_peak"] == pytest.approx(report["flops_per_pair"] * report["rows"]["tflite"][
        "pairs_per_s_b32"] / (report["matmul_peak"]["2"]["peak_gflops"] * 1e9))
    assert goals["int8_speedup"]["by_threads"]["1"] == pytest.approx(
        report["rows"]["tflite"]["threads"]["1"]["p50_ms"] / report["rows"]["tflite_int8"]["threads"]["1"]["p50_ms"])
    assert goals["int8_size"]["fraction_of_float32"] < 1 and "wardrobe_1000" in goals
    for fmt in ("tflite_int8", "onnx_int8"):  # issue 20's goal: each int8 file against float32 TFLite
        ratios = goals[f"{fmt}_vs_tflite"]["ratios"]
        assert ratios["batch 32"] == pytest.approx(report["rows"][fmt]["pairs_per_s_b32"]
                                                   / report["rows"]["tflite"]["pairs_per_s_b32"])
        assert goals[f"{fmt}_vs_tflite"]["met"] == (min(ratios.values()) >= 2.5)
        assert goals[f"{fmt}_vs_tflite"]["ceiling_batch_32"] == pytest.approx(
            report["matmul_peak"]["2"]["int8_gops"] * 1e9
            / (report["flops_per_pair"] * report["rows"]["tflite"]["pairs_per_s_b32"]))
    text = (out / "bench.md").read_text()
    assert "| goal |" in text and "median of 1 round(s)" in text and text in capsys.readouterr().out


def test_bench_rounds_give_medians_and_the_peak_is_the_best_round():
    from neipalette_tf.export.bench import _median_of_rounds, _peak_of_rounds

    rounds = [{"p50_ms": 3.0, "runs": 20, "started_at": 1.0}, {"p50_ms": 9.0, "runs": 20, "started_at": 2.0},
              {"p50_ms": 4.0, "runs": 30, "started_at": 3.0}]
    assert _median_of_rounds(rounds) == {"p50_ms": 4.0, "runs": 20.0}
    peak = _peak_of_rounds([{"peak_gflops": 250.0, "numpy_gflops": 250.0}, {"peak_gflops": 300.0, "numpy_gflops": 290.0}])
    assert peak == {"peak_gflops": 300.0, "numpy_gflops": 290.0, "rounds": [250.0, 300.0]}
    peak = _peak_of_rounds([{"peak_gflops": 250.0, "int8_gops": 600.0}, {"peak_gflops": 300.0, "int8_gops": 500.0}])
    assert peak["peak_gflops"] == 300.0 and peak["int8_gops"] == 600.0  # each peak its own best round


def test_bench_bad_arguments_are_one_line(exported):
    out, _ = exported
    written = {name: (out / name).read_bytes() if (out / name).exists() else None for name in ("bench.json", "bench.md")}
    done = run_module("export.bench", "--artifacts", str(out), "--formats", "onnx,nope")
    assert done.returncode != 0 and "no nope artifact" in done.stderr and "Traceback" not in done.stderr
    assert str(out) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = run_module("export.bench", "--artifacts", str(out), "--rounds", "0")
    assert done.returncode == 2 and "--rounds" in done.stderr
    assert written == {name: (out / name).read_bytes() if (out / name).exists() else None for name in written}
