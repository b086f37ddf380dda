"""Hard scenes in the synthetic data (neipalette_tf.data.synth.hard, `hard_scenes`)."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from neipalette_tf.colour import space
from neipalette_tf.data import synth
from neipalette_tf.data.synth import dataset as synth_dataset
from neipalette_tf.data.synth import hard
from neipalette_tf.data.synth.colours import quantise
from neipalette_tf.data.synth.render import render_garment, render_pair

ROOT = Path(__file__).resolve().parents[2]
MAIN = quantise((0.6, 0.1, 150.0))[0]


def _rows(folder):
    with open(Path(folder) / "pairs.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _files(folder):
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _spec(**conditions):
    """A hard-scene spec with exactly these conditions (small=..., light=..., shadow=..., busy=True)."""
    spec = {"conditions": tuple(c for c in hard.CONDITIONS if c in conditions), "small": None, "light": None,
            "shadow": None, "busy": False, "seed": 11}
    spec.update(conditions)
    return spec


def _render(seed, spec, category="tshirt", size=96):
    return render_garment(np.random.default_rng(seed), MAIN, category, size, hard=spec, with_masks=True)


def _pixels(out):
    return np.asarray(Image.open(io.BytesIO(out["jpeg"])).convert("RGB"))


def _inner(mask, size=5):
    """The pixels well inside a boolean mask (eroded: no edge, no JPEG ringing)."""
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(size))) == 255


def test_without_hard_scenes_the_bytes_are_unchanged(tmp_path):
    """generate() without the flag and with hard_scenes=0.0 write the same files, and so does the
    renderer with a share of 0, multi-colour garments included."""
    synth.generate(tmp_path / "a", pairs=20, seed=2, image_size=32, workers=1, progress=False)
    synth.generate(tmp_path / "b", pairs=20, seed=2, image_size=32, workers=1, progress=False, hard_scenes=0.0)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and len(a) == 42
    assert "hard_scenes" not in json.loads(a["dataset.json"])["parameters"]
    header, _ = _rows(tmp_path / "a")
    assert not set(header) & set(synth_dataset.HARD_SCENE_COLUMNS)
    r0 = render_pair(4, 3, 48, 1, harmony="rule-v1", multicolour=0.6)
    r1 = render_pair(4, 3, 48, 1, harmony="rule-v1", multicolour=0.6, hard_scenes=0.0)
    assert r0["top"]["jpeg"] == r1["top"]["jpeg"] and r0["bottom"]["jpeg"] == r1["bottom"]["jpeg"]


def test_a_spec_that_changes_nothing_keeps_the_garments_pixels():
    """The hard draws come from their own stream: neutral light (6504 K, gains 1) leaves the photo as it was."""
    light = {"kind": "cool", "kelvin": 6504.0, "gains": hard.kelvin_gains(6504.0)}
    assert np.allclose(light["gains"], 1.0, atol=1e-9)
    for seed in range(3):
        assert _render(seed, _spec(light=light))["jpeg"] == _render(seed, None)["jpeg"]


def test_every_photo_of_a_full_share_records_its_conditions(tmp_path):
    out = tmp_path / "full"
    synth.generate(out, pairs=20, seed=5, image_size=32, workers=1, progress=False, hard_scenes=1.0, multicolour=0.5)
    header, rows = _rows(out)
    assert tuple(header) == (synth.CSV_COLUMNS + synth_dataset.PEOPLE_COLUMNS + synth_dataset.PALETTE_COLUMNS
                             + synth_dataset.HARD_SCENE_COLUMNS)
    seen = set()
    for r in rows:
        for role in ("top", "bottom"):
            conditions = r[f"{role}_scene"].split("+")
            assert conditions and set(conditions) <= set(hard.CONDITIONS), r[f"{role}_scene"]
            info = dict(part.split("=", 1) for part in r[f"{role}_scene_info"].split(";"))
            assert "background" in info and set(conditions) <= set(info), r[f"{role}_scene_info"]
            seen |= set(conditions)
    assert seen == set(hard.CONDITIONS)
    stats = json.loads((out / "dataset.json").read_text())["stats"]["hard_scenes"]
    assert stats["photos"] == 40 and stats["none"] == 0
    # a smaller share: a subset of the photos, each with the conditions it had at 1.0
    half = tmp_path / "half"
    synth.generate(half, pairs=20, seed=5, image_size=32, workers=1, progress=False, hard_scenes=0.5, multicolour=0.5)
    _, rows_half = _rows(half)
    scenes = [(r[f"{role}_scene"], h[f"{role}_scene"]) for r, h in zip(rows, rows_half) for role in ("top", "bottom")]
    assert 5 <= sum(s != "none" for _, s in scenes) <= 35
    assert all(s in ("none", full) for full, s in scenes)


def test_small_garments_cover_a_smaller_part_of_the_frame():
    rng = np.random.default_rng(3)
    default, small, offsets, heights = [], [], [], []
    for seed in range(10):
        spec = _spec(small={"height": float(rng.uniform(*hard.SMALL_HEIGHT)), "at": tuple(rng.random(2))})
        d, s = _render(seed, None), _render(seed, spec, category="trousers" if seed % 2 else "tshirt")
        default.append(d["alpha"].mean() / 255)
        small.append(s["alpha"].mean() / 255)
        rec = s["info"]["hard_scene"]["small"]
        ys = np.nonzero(s["alpha"].max(axis=1) > 127)[0]
        assert abs((ys[-1] - ys[0] + 1) / s["alpha"].shape[0] - rec["height"]) < 0.05  # the recorded height
        assert rec["height"] <= spec["small"]["height"] + 0.01  # less only where the frame is too narrow
        offsets.append(np.hypot(rec["centre"][0] - 0.5, rec["centre"][1] - 0.5))
        heights.append(rec["height"])
    assert np.mean(small) < 0.6 * np.mean(default), (np.mean(small), np.mean(default))
    assert np.median(offsets) > 0.1  # mostly off-centre
    assert np.mean([h >= 0.25 for h in heights]) >= 0.7


@pytest.mark.parametrize("kind,kelvin,sign", [("warm", 4500.0, 1), ("cool", 8500.0, -1)])
def test_coloured_light_moves_background_and_garment_together(kind, kelvin, sign):
    """A warm light moves the OKLab b (blue-yellow) of garment and background towards yellow, a cool one
    towards blue, by comparable amounts: the whole photo, never one garment alone."""
    light = {"kind": kind, "kelvin": kelvin, "gains": hard.kelvin_gains(kelvin)}
    shifts = {"garment": [], "background": []}
    for seed in range(4):
        plain, lit = _render(seed, None), _render(seed, _spec(light=light))
        garment = _inner(plain["alpha"] == 255)
        background = _inner(plain["alpha"] == 0)
        lab0, lab1 = space.srgb_to_oklab(_pixels(plain)), space.srgb_to_oklab(_pixels(lit))
        for name, m in (("garment", garment), ("background", background)):
            shifts[name].append(np.mean(lab1[m][:, 2] - lab0[m][:, 2]))
    g, b = np.mean(shifts["garment"]), np.mean(shifts["background"])
    assert sign * g > 0.01 and sign * b > 0.01, (g, b)
    assert 0.33 < g / b < 3.0


def test_hard_shadow_darkens_garment_and_background_by_its_depth():
    depth = 0.45
    ratios = {"garment": [], "background": []}
    for seed in range(4):
        spec = _spec(shadow={"kind": ("window", "person", "edge")[seed % 3], "depth": depth})
        plain, shaded = _render(seed, None, size=128), _render(seed, spec, size=128)
        rec = shaded["info"]["hard_scene"]["shadow"]
        assert rec["depth"] == depth and 0.0 < rec["garment"] < 1.0 and 0.0 < rec["background"] < 1.0
        lum0 = space.srgb_to_linear(_pixels(plain) / 255.0) @ [0.2126, 0.7152, 0.0722]
        lum1 = space.srgb_to_linear(_pixels(shaded) / 255.0) @ [0.2126, 0.7152, 0.0722]
        in_shadow = _inner(shaded["shadow_alpha"] == 255, 3)
        out_shadow = _inner(shaded["shadow_alpha"] == 0, 3)
        assert np.median(lum1[out_shadow] / lum0[out_shadow]) == pytest.approx(1.0, abs=0.03)
        for name, m in (("garment", plain["alpha"] == 255), ("background", plain["alpha"] == 0)):
            sel = _inner(m, 3) & in_shadow
            if sel.sum() >= 20:
                ratios[name].append(np.median(lum1[sel] / lum0[sel]))
    assert ratios["garment"] and ratios["background"]
    for name, r in ratios.items():  # the camera's tone curve bends it a little
        assert np.median(r) == pytest.approx(1 - depth, abs=0.08), (name, r)


def test_busy_backgrounds_are_patterned_sheets_and_rugs():
    busy = set()
    for seed in range(12):
        info = _render(seed, {**_spec(busy=True), "seed": seed}, size=48)["info"]
        busy.add(info["hard_scene"]["busy"])
        assert info["background"].split("/")[0] in ("sheet", "rug") and info["background"] != "rug/shaggy"
    assert busy <= {"sheet/stripes", "sheet/dots", "sheet/flowers", "sheet/checks", "rug/plaid", "rug/geometric"}
    assert len(busy) >= 3


def test_light_ranges_are_the_documented_casts():
    for k in (4200.0, 5600.0, 7000.0, 9000.0):
        g = hard.kelvin_gains(k)
        assert float(g @ [0.2126, 0.7152, 0.0722]) == pytest.approx(1.0)
        assert (g[0] > g[1] > g[2]) if k < 6504 else (g[0] < g[1] < g[2])
    assert hard.white_chroma(hard.kelvin_gains(4200.0)) == pytest.approx(0.044, abs=0.002)
    assert hard.white_chroma(hard.kelvin_gains(5600.0)) == pytest.approx(0.014, abs=0.002)
    assert hard.white_chroma(hard.kelvin_gains(9000.0)) == pytest.approx(0.024, abs=0.002)
    for hue in (0.0, 120.0, 250.0):
        assert hard.white_chroma(hard.tint_gains(0.02, hue)) == pytest.approx(0.02, abs=1e-4)
    rng = np.random.default_rng(0)
    for _ in range(200):
        li = hard.sample_light(rng)
        c = hard.white_chroma(li["gains"])
        lo, hi = {"warm": (0.013, 0.045), "cool": (0.005, 0.025), "tint": (0.0079, 0.0251)}[li["kind"]]
        assert lo <= c <= hi, li
    with pytest.raises(ValueError, match="colour temperature"):
        hard.kelvin_gains(1000.0)


@pytest.mark.parametrize("value", ["-0.1", "1.5", "x", "nan"])
def test_bad_share_is_one_line_naming_the_flag(value, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neipalette_tf.data.synth", "--out", str(tmp_path / "x"),
                           "--pairs", "20", "--hard-scenes", value], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--hard-scenes" in lines[0], proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("value", [-0.1, 1.5, "x", True])
def test_generate_rejects_a_bad_share(value, tmp_path):
    with pytest.raises(ValueError, match="hard_scenes"):
        synth.generate(tmp_path / "y", pairs=20, image_size=32, workers=1, progress=False, hard_scenes=value)
    assert not (tmp_path / "y").exists()
