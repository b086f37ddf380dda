"""Scenes of the synthetic photos (neipalette_tf.data.synth.backgrounds): the sampled scene spec, the
background drawn for each kind with its shading field, busy backgrounds and the small second object.

Whole photos are checked in tests/data/test_synth.py (aspects) and test_synth_hard_scenes.py (busy
scenes as rendered); here the module's own pieces."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from neipalette_tf.data.synth import backgrounds

SIZE, FINAL = (72, 96), (24, 32)  # working canvas (3x supersampled) and final size, 3:4


def _scenes(n, seed=0):
    rng = np.random.default_rng(seed)
    return [backgrounds.sample_scene(rng) for _ in range(n)]


def _rgb(value):
    return isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value)


def _spec(kind, seed=0, **fixed):
    """A sampled scene of `kind` (drawn until one comes), with `fixed` keys overridden."""
    rng = np.random.default_rng(seed)
    while True:
        spec = backgrounds.sample_scene(rng)
        if spec["kind"] == kind:
            spec.update(fixed)
            return spec


def test_probability_tables_are_distributions():
    assert set(backgrounds.ASPECTS) == {"3:4", "1:1", "9:16", "4:3"}
    assert len(backgrounds.ASPECT_P) == len(backgrounds.ASPECTS) and sum(backgrounds.ASPECT_P) == pytest.approx(1)
    assert sum(backgrounds.SHEET_PATTERN_P) == pytest.approx(1) and sum(backgrounds.RUG_STYLE_P) == pytest.approx(1)


def test_sampled_scenes_hold_what_their_kind_needs():
    needs = {"plain": {"colour", "fleece"}, "wall": {"colour", "fleece"}, "boards": {"lch", "plank", "angle", "gap"},
             "tiles": {"colour", "tile", "angle", "grout"}, "sheet": {"colour", "pattern", "ink", "scale"},
             "rug": {"style", "colour", "ink", "scale"}}
    scenes = _scenes(600)
    assert {s["kind"] for s in scenes} == set(backgrounds.BG_KINDS)
    for s in scenes:
        assert s["aspect"] in backgrounds.ASPECTS and isinstance(s["hanging"], bool)
        assert needs[s["kind"]] <= set(s), s
        for key in ("colour", "grout"):
            if key in s:
                assert _rgb(s[key]), s
        for ink in s.get("ink", []):
            assert _rgb(ink), s
        if s["kind"] == "sheet":
            assert s["pattern"] in backgrounds.SHEET_PATTERNS
        if s["kind"] == "rug":
            assert s["style"] in backgrounds.RUG_STYLES
        if s["hanging"]:  # a hanging garment hangs in front of a wall, boards, tiles or a sheet, not a rug
            assert s["kind"] in ("wall", "boards", "tiles", "sheet"), s
        else:
            assert s["kind"] != "wall", s


def test_scenes_follow_the_aspect_probabilities_and_mostly_lie_flat():
    scenes = _scenes(2000, seed=1)
    share = {a: sum(s["aspect"] == a for s in scenes) / len(scenes) for a in backgrounds.ASPECTS}
    for aspect, p in zip(backgrounds.ASPECTS, backgrounds.ASPECT_P):
        assert abs(share[aspect] - p) < 0.04, (aspect, share)
    hanging = np.mean([s["hanging"] for s in scenes])
    assert 0.12 < hanging < 0.24  # 18 % hang


def test_the_same_seed_gives_the_same_scene_and_background():
    a, b = _scenes(20, seed=7), _scenes(20, seed=7)
    assert a == b and a != _scenes(20, seed=8)
    for kind in backgrounds.BG_KINDS:
        spec = _spec(kind, seed=3)
        img1, f1 = backgrounds.draw_background(np.random.default_rng(5), spec, SIZE, FINAL)
        img2, f2 = backgrounds.draw_background(np.random.default_rng(5), spec, SIZE, FINAL)
        img3, f3 = backgrounds.draw_background(np.random.default_rng(6), spec, SIZE, FINAL)
        assert img1.tobytes() == img2.tobytes() and np.array_equal(f1, f2), kind
        assert not np.array_equal(f1, f3), kind  # the shading depends on the draws


@pytest.mark.parametrize("kind", backgrounds.BG_KINDS)
def test_every_kind_draws_an_rgb_canvas_and_a_shading_field_near_one(kind):
    for seed in range(4):
        spec = _spec(kind, seed=seed)
        img, field = backgrounds.draw_background(np.random.default_rng(seed), spec, SIZE, FINAL)
        assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == SIZE
        assert field.shape == (FINAL[1], FINAL[0]) and field.dtype == np.float32 and np.isfinite(field).all()
        assert 0.5 < field.min() and field.max() < 1.6 and abs(float(field.mean()) - 1) < 0.2, (kind, seed)


def test_plain_and_wall_backgrounds_are_their_colour_everywhere():
    for kind in ("plain", "wall"):
        spec = _spec(kind, seed=2)
        img, _ = backgrounds.draw_background(np.random.default_rng(0), spec, SIZE, FINAL)
        assert np.array_equal(np.unique(np.asarray(img).reshape(-1, 3), axis=0), [spec["colour"]]), kind


def test_fleece_shades_more_than_a_smooth_blanket():
    spec = _spec("plain", seed=0)
    flat, fleece = ({**spec, "fleece": False}, {**spec, "fleece": True})
    std = lambda s: np.mean([backgrounds.draw_background(np.random.default_rng(k), s, SIZE, FINAL)[1].std()  # noqa: E731
                             for k in range(6)])
    assert std(fleece) > 2 * std(flat)


def test_tiles_show_their_grout_and_patterned_sheets_their_ink():
    tiles = _spec("tiles", seed=0, angle=0.0, tile=0.3, colour=(230, 230, 230), grout=(40, 40, 40))
    img, _ = backgrounds.draw_background(np.random.default_rng(0), tiles, SIZE, FINAL)
    px = np.asarray(img).reshape(-1, 3)
    assert (px == 40).all(axis=1).any() and (np.abs(px.astype(int) - 230) <= 20).all(axis=1).mean() > 0.7
    for pattern in ("stripes", "dots", "checks"):
        sheet = _spec("sheet", seed=0, pattern=pattern, colour=(240, 240, 240), scale=0.12,
                      ink=[(200, 0, 0), (0, 0, 200), (0, 150, 0)])
        img, _ = backgrounds.draw_background(np.random.default_rng(1), sheet, SIZE, FINAL)
        px = np.asarray(img).reshape(-1, 3)
        inked = (px == (200, 0, 0)).all(axis=1).mean()
        assert 0.01 < inked < 0.6, pattern
    plain = _spec("sheet", seed=0, pattern="none", colour=(240, 240, 240))
    img, _ = backgrounds.draw_background(np.random.default_rng(1), plain, SIZE, FINAL)
    assert (np.asarray(img) == 240).all()  # an unpatterned sheet is its colour; folds are in the field


def test_busy_scenes_keep_aspect_and_hanging_and_are_always_patterned():
    rng = np.random.default_rng(4)
    kinds = set()
    for scene in _scenes(300, seed=4):
        busy = backgrounds.busy_scene(rng, scene)
        assert (busy["aspect"], busy["hanging"]) == (scene["aspect"], scene["hanging"])
        assert busy["kind"] in ("sheet", "rug")
        if scene["hanging"]:
            assert busy["kind"] == "sheet"  # nothing hangs in front of a rug
        assert busy.get("pattern") != "none" and busy.get("style") != "shaggy"
        text = backgrounds.busy_text(busy)
        assert text == f"{busy['kind']}/{busy.get('pattern', busy.get('style'))}"
        kinds.add(text)
    assert kinds == {f"sheet/{p}" for p in backgrounds.SHEET_PATTERNS if p != "none"} | {
        f"rug/{s}" for s in backgrounds.RUG_STYLES if s != "shaggy"}


def test_the_second_object_stays_near_a_corner():
    w, h = 120, 160
    centre = np.zeros((h, w), bool)
    centre[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = True
    for seed in range(20):
        img = Image.new("RGB", (w, h), (128, 128, 128))
        backgrounds.draw_object(np.random.default_rng(seed), ImageDraw.Draw(img), (w, h))
        changed = (np.asarray(img) != 128).any(axis=2)
        assert changed.sum() > 10, seed  # something was drawn
        assert not (changed & centre).any(), seed
