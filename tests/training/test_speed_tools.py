"""The speed tools' own logic on tiny inputs: the training-step profile and the PyTorch peer benchmark.

What they measure on a real machine is in docs/benchmarks.md; these tests check that every row is
measured (positive, finite), the differences add up, the trace is summed by op type, and that the
peer benchmark is skipped with a one-line error where PyTorch is absent.
"""

import importlib.util
import math

import pytest

pytestmark = pytest.mark.slow  # builds and steps several models


def test_step_breakdown_and_trace(tiny_synth, tmp_path):
    from neipalette_tf.training import step_profile

    b = step_profile.breakdown(str(tiny_synth), size=32, batch=8, steps=1, rounds=1, log=lambda *_: None)
    steps = b["steps_ms"]
    assert len(steps) == 5 and all(v > 0 and math.isfinite(v) for v in steps.values())
    full = steps["full step (train's)"]
    assert b["pairs_per_s"] == pytest.approx(8 / (full / 1e3), rel=0.01)
    parts = list(b["parts_ms"].values())
    assert sum(parts[:4]) == pytest.approx(full, abs=0.5)  # the four parts are differences of the steps
    assert steps["forward pass of the full step"] < full

    t = step_profile.trace(str(tmp_path / "trace"), str(tiny_synth), size=32, batch=8, steps=1,
                           log=lambda *_: None)
    assert t["trace"].endswith(".xplane.pb") and t["ops"]
    assert sum(r["share"] for r in t["ops"]) <= 1.0 + 1e-6
    assert any("Conv2D" in r["op"] for r in t["ops"]), t["ops"]  # convolutions are summed under their type
    assert not any("::" in r["op"] for r in t["ops"])  # executor events are not ops


def test_conv_gradient_table_covers_every_backbone_convolution():
    from neipalette_tf.training import step_profile

    r = step_profile.conv_gradients(size=32, batch=2, repeats=1, log=lambda *_: None)
    assert sum(row["layers"] for row in r["rows"]) == 20  # ResNet18: the stem, 16 block and 3 shortcut convolutions
    assert all(row[k] > 0 for row in r["rows"] for k in ("native_dw_ms", "matmul_dw_ms", "native_dx_ms", "matmul_dx_ms"))
    used = {row["output"].rsplit("x", 1)[0] for row in r["rows"] if row["used_by_train"]}
    assert used == {"1x1", "2x2"}, used  # at 32 px: stage 4 (1 x 1) and stage 3 (2 x 2); stage 2 (4 x 4) is not


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (pip install torch)")
def test_peer_benchmark_measures_both_frameworks(tiny_synth):
    from neipalette_tf.training import peer_bench

    r = peer_bench.measure(str(tiny_synth), size=32, batch=4, threads=1, steps=1, rounds=1, warmup=1,
                           log=lambda *_: None)
    assert set(r["rates"]) == {"torch_eager", "keras_same", "keras_matmul", "neipalette"}
    for rates in r["rates"].values():
        assert rates["train_pairs_per_s"] > 0 and rates["infer_pairs_per_s"] > 0
    for name in ("keras_same", "keras_matmul", "neipalette"):
        for kind in ("train", "infer"):
            ratio = r["ratios"][f"{name}_over_torch_{kind}"]
            expected = r["rates"][name][f"{kind}_pairs_per_s"] / r["rates"]["torch_eager"][f"{kind}_pairs_per_s"]
            assert ratio == pytest.approx(expected, rel=0.02)  # one round: its ratio is the rates'
            assert r["ratio_ranges"][f"{name}_over_torch_{kind}"] == pytest.approx([ratio, ratio], abs=0.01)


def test_peer_benchmark_without_torch_is_one_line(monkeypatch, capsys):
    from neipalette_tf.commands import peer_bench as cli_module
    from neipalette_tf.core import cli
    from neipalette_tf.training import peer_bench  # the command imports it after its flags are checked

    monkeypatch.setattr(peer_bench, "torch_available", lambda: False)
    with pytest.raises(SystemExit) as e:
        cli.run(cli_module.main, [])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "pip install torch" in err and "\n" not in err
