"""`python -m neipalette_tf.fit_harmony`: cross-validation by theme id and the fitted file."""

import json
import subprocess
import sys

import numpy as np

from neipalette_tf.colour import people
from neipalette_tf.colour.space import oklab_to_srgb
from tests.helpers import ROOT


def _themes_csv(path, n=300, seed=0):
    """Themes rated by the shipped people model itself (plus noise): what a fit should find."""
    rng = np.random.default_rng(seed)
    lab = np.stack([rng.uniform(0.3, 0.95, (n, 5)), rng.uniform(-0.15, 0.15, (n, 5)),
                    rng.uniform(-0.15, 0.15, (n, 5))], axis=-1)
    rgb = np.round(oklab_to_srgb(lab)).astype(int)
    from neipalette_tf.colour.space import srgb_to_oklab
    ratings = np.clip(people.default().rate_themes(srgb_to_oklab(rgb)) + rng.normal(0, 0.02, n), 1, 5)
    lines = ["theme_id,rating,c1,c2,c3,c4,c5"]
    for i in range(n):
        lines.append(f"{1000 + i},{ratings[i]:.4f}," + ",".join("#%02x%02x%02x" % tuple(c) for c in rgb[i]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(*args):
    return subprocess.run([sys.executable, "-m", "neipalette_tf.fit_harmony", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_fit_harmony_reports_the_three_methods_and_writes_the_model(tmp_path):
    themes = _themes_csv(tmp_path / "themes.csv")
    out = tmp_path / "fit"
    done = _run("--ratings", themes, "--out", out, "--folds", 3)
    assert done.returncode == 0, done.stderr
    for method in ("people", "rule_v1", "constant"):
        assert f"| {method} |" in done.stdout
    cv = json.loads((out / "cv.json").read_text())
    assert cv["metrics"]["people"]["spearman"] > 0.9 > cv["metrics"]["rule_v1"]["spearman"]
    assert len(cv["per_fold"]["people"]) == 3
    model = people.load(out / "people_model.json")
    assert "CC BY-NC-SA" in model.meta["licence"]
    assert model.meta["fitted_on"]["heldout_themes"] + model.meta["fitted_on"]["themes"] == 300
    # again into the same folder: its own result is replaced
    assert _run("--ratings", themes, "--out", out, "--folds", 3).returncode == 0


def test_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "themes.csv"
    bad.write_text("theme_id,rating,c1,c2\n1,9,#000000,#ffffff\n")
    done = _run("--ratings", bad, "--out", tmp_path / "o")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "row 2" in done.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    done = _run("--ratings", _themes_csv(tmp_path / "t.csv", n=60), "--out", foreign)
    assert done.returncode == 2 and "notes.txt" in done.stderr
    assert (foreign / "notes.txt").read_text() == "mine"
