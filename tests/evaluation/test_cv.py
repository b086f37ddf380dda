"""Cross-validation: group-aware stratified folds and the CLI end to end (palette approach)."""

import csv
import json
import shutil

import numpy as np
import pytest

from neipalette_tf.commands import compare, cv
from neipalette_tf.core import cli
from neipalette_tf.evaluation import cv as cv_lib
from neipalette_tf.evaluation.metrics import METRIC_KEYS


def _chained_pairs(n_groups=24, seed=0):
    """(top, bottom) names with shared garments: groups of 1-4 pairs linked through one image."""
    rng = np.random.default_rng(seed)
    pairs, labels, truth = [], [], []
    for g in range(n_groups):
        size = int(rng.integers(1, 5))
        for k in range(size):
            # every pair of the group shares the top "t{g}" (or, for k odd, chains through the bottom)
            pairs.append((f"t{g}", f"b{g}_{k}") if k % 2 == 0 else (f"t{g}_{k}", f"b{g}_{k - 1}"))
            labels.append(int(rng.random() < 0.5))
            truth.append(g)
    return pairs, np.array(labels), np.array(truth)


def test_connected_groups_follow_shared_images():
    pairs, _, truth = _chained_pairs()
    groups = cv_lib.connected_groups(pairs)
    # same partition as the construction (ids may differ)
    assert len(set(zip(groups.tolist(), truth.tolist()))) == len(set(truth.tolist())) == len(set(groups.tolist()))


@pytest.mark.parametrize("folds,repeats", [(4, 2), (5, 1)])
def test_folds_keep_groups_together_and_stay_stratified(folds, repeats):
    pairs, labels, _ = _chained_pairs()
    groups = cv_lib.connected_groups(pairs)
    splits = cv_lib.cv_splits(labels, groups, folds=folds, repeats=repeats, seed=1, val_fraction=0.2)
    assert len(splits) == folds * repeats
    rate = labels.mean()
    for r in range(repeats):
        tests = [s["test"] for s in splits if s["repeat"] == r]
        assert sorted(np.concatenate(tests).tolist()) == list(range(len(labels)))  # each pair tested once
    for s in splits:
        train, val, test = (set(s[k].tolist()) for k in ("train", "val", "test"))
        assert train | val | test == set(range(len(labels))) and not (train & val or train & test or val & test)
        g = {k: set(groups[s[k]].tolist()) for k in ("train", "val", "test")}
        assert not (g["test"] & (g["train"] | g["val"])) and not (g["train"] & g["val"])  # no shared garment
        for k in ("train", "val", "test"):
            assert set(labels[s[k]].tolist()) == {0, 1}, k
        assert abs(labels[s["test"]].mean() - rate) < 0.2  # stratified as far as the groups allow
        assert 0.1 < len(val) / (len(train) + len(val)) < 0.35
    # repeats reshuffle
    if repeats > 1:
        assert [s["test"].tolist() for s in splits[:folds]] != [s["test"].tolist() for s in splits[folds:]]


def test_too_many_folds_is_a_user_error():
    with pytest.raises(cli.UserError, match="--folds must be in 2..3"):
        cv_lib.cv_splits([0, 1, 0, 1], [0, 0, 1, 2], folds=4)


def test_summary_is_a_t_interval():
    from scipy import stats

    values = [0.7, 0.9, 0.8, 1.0, 0.6]
    s = cv_lib.summarise(values)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert s["mean"] == pytest.approx(0.8) and s["ci95"] == pytest.approx([0.8 - half, min(1.0, 0.8 + half)])


def _manifest_with_a_renamed_copy(tiny_synth, tmp_path):
    """tiny_synth's pairs (absolute paths) and one more pair using a renamed copy of a garment image."""
    rows = list(csv.DictReader(open(tiny_synth / "pairs.csv")))
    for row in rows:
        row.update(top=str(tiny_synth / row["top"]), bottom=str(tiny_synth / row["bottom"]))
    shutil.copy(rows[0]["top"], tmp_path / "copy_of_top0.jpg")
    extra = dict(rows[1], top=str(tmp_path / "copy_of_top0.jpg"))
    path = tmp_path / "pairs_cv.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + [extra])
    return path


@pytest.mark.slow  # the CLI end to end, 5 folds
def test_cv_cli_palette_end_to_end(tiny_synth, tmp_path, capsys):
    data = _manifest_with_a_renamed_copy(tiny_synth, tmp_path)
    out = tmp_path / "cv"
    assert cv.main(["--data", str(data), "--approach", "palette", "--folds", "3", "--repeats", "2",
                    "--image-size", "48", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "cv.json").read_text())
    assert set(result) == {"settings", "splits", "approaches"}
    assert result["settings"]["pairs"] == 81 and result["settings"]["groups"] == 79  # the copy links 3 pairs
    a = result["approaches"]["palette"]
    assert set(a) == {"description", "summary", "pooled", "oof_p_harmonious", "folds", "seconds"}
    assert set(a["summary"]) == set(cv_lib.METRICS)
    for s in a["summary"].values():
        assert set(s) == {"mean", "std", "ci95", "n"} and s["n"] == 6
        assert 0.0 <= s["ci95"][0] <= s["mean"] <= s["ci95"][1] <= 1.0
    assert set(METRIC_KEYS) <= set(a["pooled"]) and a["pooled"]["n"] == 81
    assert len(a["folds"]) == 6 and all(f["epochs_trained"] == 0 for f in a["folds"])
    assert a["summary"]["roc_auc"]["mean"] > 0.7  # colour features carry the rule on synthetic pairs
    for split in result["splits"]:  # pairs 0, 1 and 80 (top copied from 0, bottom from 1) share a fold
        assert (0 in split["test"]) == (1 in split["test"]) == (80 in split["test"])
    table = (out / "cv.md").read_text()
    assert table in printed and "| palette " in table and "pooled OOF ROC-AUC" in table
    with open(out / "oof_predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 2 * 81
    assert compare.main([str(out / "palette"), "--out", str(tmp_path / "cmp")]) == 0  # compare reads it


def test_cv_cli_bad_input_writes_nothing(tiny_synth, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as stop:
        cli.run(cv.main, ["--data", str(tiny_synth), "--approach", "init-from", "--out", str(out)])
    assert stop.value.code == 2 and "needs --init-from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.run(cv.main, ["--data", str(tmp_path / "none.csv"), "--approach", "palette", "--out", str(out)])
    assert "none.csv: file not found" in capsys.readouterr().err
    assert not out.exists()
