"""Tests of the synthetic data set generator (neipalette_tf.data.synth)."""

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from neipalette_tf.colour import harmony, space
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.data import synth
from neipalette_tf.data.synth import dataset as synth_dataset

ROOT = Path(__file__).resolve().parents[2]
PAIRS, SEED, SIZE = 40, 3, 64


def _rows(folder):
    with open(Path(folder) / "pairs.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _lch(row, part):
    return np.array([float(row[f"{part}_{k}"]) for k in ("L", "C", "h")])


def _files(folder):
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _median_lch(jpeg, alpha, print_alpha, erode=5):
    """OKLCH of the median OKLab over the garment's own fabric (no print), eroded."""
    rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    fabric = Image.fromarray(((alpha == 255) & (print_alpha == 0)).astype(np.uint8) * 255)
    mask = np.asarray(fabric.filter(ImageFilter.MinFilter(erode))) > 0
    if mask.sum() < 20:
        return None
    return space.oklab_to_oklch(np.median(space.srgb_to_oklab(rgb[mask]), axis=0))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "a"
    synth.generate(out, pairs=PAIRS, seed=SEED, image_size=SIZE, workers=1, progress=False, harmony="rule-v1")
    return out


def test_same_arguments_give_identical_bytes_whatever_the_workers(dataset, tmp_path):
    other = tmp_path / "b"
    synth.generate(other, pairs=PAIRS, seed=SEED, image_size=SIZE, workers=2, progress=False, harmony="rule-v1")
    files = _files(dataset)
    assert files == _files(other)
    assert len(files) == 2 * PAIRS + 2
    for name in files:
        assert (dataset / name).read_bytes() == (other / name).read_bytes(), name


def test_spawned_workers_give_the_same_bytes(tmp_path, monkeypatch):
    import multiprocessing

    synth.generate(tmp_path / "one", pairs=20, seed=2, image_size=32, workers=1, progress=False, harmony="rule-v1")
    monkeypatch.setattr(synth_dataset, "_mp_context", lambda: multiprocessing.get_context("spawn"))
    synth.generate(tmp_path / "spawn", pairs=20, seed=2, image_size=32, workers=2, progress=False, harmony="rule-v1")
    for name in _files(tmp_path / "one"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "spawn" / name).read_bytes(), name


def test_another_seed_gives_other_data(dataset, tmp_path):
    other = tmp_path / "c"
    synth.generate(other, pairs=PAIRS, seed=SEED + 1, image_size=SIZE, workers=1, progress=False, harmony="rule-v1")
    assert (dataset / "pairs.csv").read_bytes() != (other / "pairs.csv").read_bytes()
    assert (dataset / "images/000000_top.jpg").read_bytes() != (other / "images/000000_top.jpg").read_bytes()


def test_csv_layout_and_one_image_per_garment(dataset):
    header, rows = _rows(dataset)
    assert tuple(header) == synth.CSV_COLUMNS
    assert header[:12] == ["top", "bottom", "label", "split", "top_category", "top_L", "top_C", "top_h",
                           "bottom_category", "bottom_L", "bottom_C", "bottom_h"]
    assert len(rows) == PAIRS
    paths = [r["top"] for r in rows] + [r["bottom"] for r in rows]
    assert len(set(paths)) == 2 * PAIRS  # no image shared between pairs
    for i, r in enumerate(rows):
        assert r["top"] == f"images/{i:06d}_top.jpg" and r["bottom"] == f"images/{i:06d}_bottom.jpg"
        assert r["label"] in ("harmonious", "clashing") and r["split"] in synth.SPLITS
        assert r["top_category"] in synth.TOP_CATEGORIES
        assert r["bottom_category"] in synth.BOTTOM_CATEGORIES
        for part in ("top", "bottom"):
            for k in ("L", "C", "h"):
                assert len(r[f"{part}_{k}"].split(".")[1]) == 4
            L, C, h = _lch(r, part)
            assert 0.2 < L < 0.95 and 0 <= C < 0.4 and 0 <= h < 360


def test_balance_is_exact_in_every_split(dataset):
    _, rows = _rows(dataset)
    counts = synth.split_counts(PAIRS)
    ds = json.loads((dataset / "dataset.json").read_text())
    for split in synth.SPLITS:
        labels = [r["label"] for r in rows if r["split"] == split]
        assert len(labels) == counts[split]
        assert labels.count("harmonious") == labels.count("clashing") == counts[split] // 2
        assert ds["counts"][split]["harmonious"] == ds["counts"][split]["clashing"] == counts[split] // 2


@pytest.mark.parametrize("pairs", [20, 40, 100, 998, 6000, 12346])
def test_split_counts_follow_the_fractions(pairs):
    counts = synth.split_counts(pairs)
    assert sum(counts.values()) == pairs
    assert all(n % 2 == 0 and n >= 2 for n in counts.values())
    assert counts["val"] == counts["test"] == 2 * round(0.15 * pairs / 2 + 1e-9)
    assert abs(counts["train"] / pairs - 0.7) <= 2 / pairs + 0.1 * (pairs < 100)


def test_every_label_follows_the_rule_clear_of_its_boundaries(dataset):
    _, rows = _rows(dataset)
    for r in rows:
        top, bottom = _lch(r, "top"), _lch(r, "bottom")
        assert bool(harmony.harmonious(top, bottom)) == (r["label"] == "harmonious")
        assert r["label_noise_flipped"] == "0"
        for c in (top, bottom):
            assert not synth.near_neutral_boundary(c, 5.0 - 0.01, 0.012 - 1e-4)
        if not harmony.is_neutral(*top) and not harmony.is_neutral(*bottom):
            assert not synth.near_hue_boundary(top[2], bottom[2], 5.0 - 0.01)


def test_label_noise_flips_an_exact_number_per_class_and_split(tmp_path):
    p = 0.1
    out = synth.generate(tmp_path / "noisy", pairs=100, seed=5, image_size=32, label_noise=p,
                         workers=1, progress=False, harmony="rule-v1").parent
    _, rows = _rows(out)
    ds = json.loads((out / "dataset.json").read_text())
    total = 0
    for split, n in synth.split_counts(100).items():
        sel = [r for r in rows if r["split"] == split]
        k = math.floor(p * n / 2 + 0.5)
        assert [r["label"] for r in sel].count("harmonious") == n // 2  # balance stays exact
        for cls in ("harmonious", "clashing"):
            flipped = [r for r in sel if r["label_noise_flipped"] == "1" and r["label"] != cls]
            assert len(flipped) == k  # k of the pairs planned as `cls` carry the other label
        for r in sel:
            rule = bool(harmony.harmonious(_lch(r, "top"), _lch(r, "bottom")))
            assert (r["label"] == "harmonious") == (rule != (r["label_noise_flipped"] == "1"))
        total += 2 * k
        assert ds["counts"][split]["label_noise_flipped"] == 2 * k
    assert ds["label_noise_flipped"] == total > 0
    assert ds["parameters"]["label_noise"] == p


def test_rerun_with_same_arguments_reuses_the_files(dataset, capsys):
    before = {name: os.stat(dataset / name).st_mtime_ns for name in _files(dataset)}
    result = synth.generate(dataset, pairs=PAIRS, seed=SEED, image_size=SIZE, workers=2, progress=False, harmony="rule-v1")
    assert result == dataset / "pairs.csv"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "reusing" in out[0]
    assert {name: os.stat(dataset / name).st_mtime_ns for name in _files(dataset)} == before


def test_changed_arguments_or_missing_files_regenerate(tmp_path, capsys):
    out = tmp_path / "d"
    synth.generate(out, pairs=20, seed=0, image_size=32, workers=1, progress=False, harmony="rule-v1")
    first = (out / "pairs.csv").read_bytes()
    synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False, harmony="rule-v1")
    assert (out / "pairs.csv").read_bytes() != first
    assert json.loads((out / "dataset.json").read_text())["parameters"]["seed"] == 1
    (out / "images/000007_top.jpg").unlink()
    capsys.readouterr()
    synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False, harmony="rule-v1")
    assert "reusing" not in capsys.readouterr().out
    assert (out / "images/000007_top.jpg").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary folders left


def test_interrupted_run_leaves_no_dataset(tmp_path, monkeypatch):
    calls = []

    def failing(args):
        calls.append(args[1])
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(args)

    real = synth_dataset._render_task
    monkeypatch.setattr(synth_dataset, "_render_task", failing)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path / "e", pairs=20, seed=0, image_size=32, workers=1, progress=False, harmony="rule-v1")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="refusing"):
        synth.generate(tmp_path / "f", pairs=20, image_size=32, workers=1, progress=False, harmony="rule-v1")
    assert (tmp_path / "f" / "notes.txt").read_text() == "mine"


def test_images_decode_at_the_recorded_aspect(dataset):
    _, rows = _rows(dataset)
    ds = json.loads((dataset / "dataset.json").read_text())
    sizes = {a: tuple(wh) for a, wh in ds["images"]["canvas_sizes"].items()}
    assert sizes["3:4"] == (48, 64) and sizes["4:3"] == (64, 48)
    seen = {}
    for r in rows:
        for part in ("top", "bottom"):
            path = dataset / r[part]
            with Image.open(path) as im:
                assert im.format == "JPEG" and im.mode == "RGB"
                aspect = [a for a, wh in sizes.items() if wh == im.size]
            assert len(aspect) == 1, im.size
            seen[aspect[0]] = seen.get(aspect[0], 0) + 1
            x = load_image(path, 48)
            assert x.shape == (48, 48, 3) and x.dtype == np.uint8
    assert seen == ds["stats"]["aspects"]
    assert seen.get("3:4", 0) > 0.4 * 2 * PAIRS  # mostly portrait, like phone photos


def test_rendered_main_colour_matches_the_recorded_colour():
    for i in range(10):
        r = synth.render_pair(11, i, 96, i % 2 == 0, prints=False, with_masks=True)
        for part in ("top", "bottom"):
            g = r[part]
            assert not g["print_alpha"].any()
            got = _median_lch(g["jpeg"], g["alpha"], g["print_alpha"])
            want = np.array(r[part + "_lch"])
            assert got is not None
            assert abs(got[1] - want[1]) <= 0.011, (part, want, got)
            if want[1] >= 0.05:
                assert harmony.hue_distance(got[2], want[2]) <= 3.0, (part, want, got)
            assert abs(got[0] - want[0]) <= 0.07


def test_dataset_images_are_the_renderer_output_with_the_recorded_colour(dataset):
    _, rows = _rows(dataset)
    checked = 0
    for i in range(12):
        r = rows[i]
        target = (r["label"] == "harmonious") != (r["label_noise_flipped"] == "1")
        again = synth.render_pair(SEED, i, SIZE, target, with_masks=True)
        for part in ("top", "bottom"):
            g = again[part]
            assert (dataset / r[part]).read_bytes() == g["jpeg"]
            assert np.allclose(again[part + "_lch"], _lch(r, part), atol=6e-5)
            if g["info"]["print_style"] in ("stripes", "checks", "dots"):
                continue  # fine patterns: JPEG and 64 px blur them into the gaps
            got = _median_lch(g["jpeg"], g["alpha"], g["print_alpha"], erode=3)
            if got is None:
                continue
            want = _lch(r, part)
            assert abs(got[1] - want[1]) <= 0.02, (part, want, got)
            if want[1] >= 0.06:
                assert harmony.hue_distance(got[2], want[2]) <= 6.0, (part, want, got)
            checked += 1
    assert checked >= 12


def test_prints_cover_at_most_30_percent_and_the_main_colour_dominates():
    fractions = []
    for i in range(30):
        r = synth.render_pair(21, i, 96, i % 2 == 1, with_masks=True)
        for part in ("top", "bottom"):
            g = r[part]
            f = g["info"]["print_fraction"]
            assert 0 <= f <= synth.MAX_PRINT_FRACTION
            garment = g["alpha"] > 127
            assert np.count_nonzero(g["print_alpha"][garment] > 127) <= 0.33 * np.count_nonzero(garment)
            fractions.append(f)
    fractions = np.array(fractions)
    assert (fractions < 0.01).sum() >= 10 and (fractions > 0.05).sum() >= 10


def test_main_colours_cover_every_zone_and_reason():
    rng = np.random.default_rng(0)
    colours, reasons = [], set()
    for i in range(300):
        top, bottom, reason = synth.sample_pair_colours(rng, i % 2 == 0)
        colours += [top, bottom]
        reasons.add(reason)
    assert reasons == set(synth.HARMONY_REASONS) | {"clash"}
    c = np.array(colours)
    L, C, h = c.T
    neutral = harmony.is_neutral(L, C, h)
    assert L.min() < 0.32 and L.max() > 0.85
    assert np.histogram(h[~neutral], bins=12, range=(0, 360))[0].min() > 0  # every hue region
    achromatic = C < 0.05
    navy = (h >= 220) & (h <= 275) & (C < 0.12) & ~achromatic
    earth = (h >= 40) & (h <= 95) & (C < 0.09) & ~achromatic
    assert achromatic.sum() > 20 and navy.sum() > 10 and earth.sum() > 10
    # saturated colours whose hue is inside a neutral band: chroma decides
    assert (((h >= 220) & (h <= 275) & (C > 0.132)).sum() > 10)
    assert (((h >= 40) & (h <= 95) & (C > 0.102)).sum() > 10)


def test_no_tensorflow_import():
    code = "import sys, neipalette_tf.data.synth; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("args", [
    ["--pairs", "21"],
    ["--pairs", "10"],
    ["--label-noise", "0.5"],
    ["--label-noise", "-0.1"],
    ["--image-size", "8"],
    ["--workers", "0"],
    ["--pairs", "many"],
])
def test_bad_arguments_exit_2_with_one_line(args, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neipalette_tf.data.synth", "--out", str(tmp_path / "x"), *args],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kwargs", [
    {"pairs": 19}, {"pairs": 41}, {"label_noise": 0.5}, {"image_size": 16},
    {"split_fractions": (0.5, 0.3, 0.3)}, {"seed": -1}, {"harmony": "rule-v2"},
])
def test_generate_rejects_bad_arguments(kwargs, tmp_path):
    args = {"pairs": 20, "image_size": 32, "workers": 1, "progress": False, **kwargs}
    with pytest.raises(ValueError):
        synth.generate(tmp_path / "y", **args)
    assert not (tmp_path / "y").exists()


@pytest.fixture(scope="module")
def people_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "people"
    synth.generate(out, pairs=PAIRS, seed=SEED, image_size=32, workers=1, progress=False)  # the default: people
    return out


def test_people_labels_follow_the_people_model_clear_of_the_threshold(people_dataset):
    from neipalette_tf.colour import people

    header, rows = _rows(people_dataset)
    assert tuple(header) == synth.CSV_COLUMNS + synth_dataset.PEOPLE_COLUMNS
    model = people.default()
    for r in rows:
        rating = float(model.rate(space.oklch_to_oklab(_lch(r, "top")), space.oklch_to_oklab(_lch(r, "bottom"))))
        assert abs(rating - float(r["rating"])) < 0.01  # the recorded colours are rounded to 4 decimals
        assert (rating >= people.RATING_THRESHOLD) == (r["label"] == "harmonious")
        assert abs(rating - people.RATING_THRESHOLD) >= synth.colours.PEOPLE_MARGIN - 0.01
    ds = json.loads((people_dataset / "dataset.json").read_text())
    assert ds["parameters"]["harmony"] == "people"
    assert ds["parameters"]["people_model"] == people.identity()
    for split in synth.SPLITS:  # still exactly 50/50
        assert ds["counts"][split]["harmonious"] == ds["counts"][split]["clashing"]


def test_a_data_set_of_the_other_label_source_is_rendered_again(people_dataset, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(people_dataset, copy)
    synth.generate(copy, pairs=PAIRS, seed=SEED, image_size=32, workers=1, progress=False)
    assert "reusing" in capsys.readouterr().out
    synth.generate(copy, pairs=PAIRS, seed=SEED, image_size=32, workers=1, progress=False, harmony="rule-v1")
    assert "rendered" in capsys.readouterr().out
    header, _ = _rows(copy)
    assert "rating" not in header  # a rule-v1 set carries nothing derived from the people model
