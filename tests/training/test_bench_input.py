import json

import pytest

from neipalette_tf.commands import bench_input

pytestmark = pytest.mark.slow  # trains or exports a model: the full suite, not the fast tier


def test_bench_input_reports_all_rates(tiny_synth, tmp_path):
    out = tmp_path / "bench.json"
    code = bench_input.main(["--data", str(tiny_synth), "--image-size", "32", "--batch-size", "8",
                             "--pipeline-batches", "5", "--steps", "2", "--json", str(out)])
    result = json.loads(out.read_text())
    # The verdict depends on the machine's load; the command's exit code carries it.
    assert code == (0 if result["ok"] else 1)
    for key in ("decode_pairs_per_s", "pipeline_pairs_per_s", "train_step_pairs_per_s"):
        assert result[key] > 0
    ratio = result["pipeline_pairs_per_s"] / result["train_step_pairs_per_s"]
    assert result["pipeline_over_step"] == pytest.approx(ratio, rel=0.01)  # inputs are rounded
    assert result["train_pairs"] == 56
