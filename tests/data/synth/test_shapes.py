"""Garment geometry (neipalette_tf.data.synth.shapes): tops and bottoms as polygons in garment units.

The rendered photos are checked in tests/data/test_synth.py; here the shapes themselves: one connected
garment per category that covers its own region and not the background around it, details that lie on
it, the same shape for the same seed, and the outline helpers (`arc`, `points`, `wobble`).
"""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from neipalette_tf.data.synth import shapes
from neipalette_tf.data.synth.drawing import Xf

CATEGORIES = list(shapes.TOP_CATEGORIES) + list(shapes.BOTTOM_CATEGORIES)
SEEDS = range(8)
CANVAS = 128
# Garment units -> a 128 px canvas at 40 px per unit: x -1.6..1.6, y -0.35..1.25 all in view.
XF = Xf(40.0, 0.0, (0.0, 0.45), (CANVAS / 2, CANVAS / 2))


def _shape(kind, seed):
    rng = np.random.default_rng(seed)
    return shapes.top_shape(rng, kind) if kind in shapes.TOP_CATEGORIES else shapes.bottom_shape(rng, kind)


def _raster(polygons):
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    for poly in polygons:
        draw.polygon(XF(poly), fill=255)
    return img


def _at(mask, x, y):
    (px, py), = XF([(x, y)])
    return bool(mask[int(round(py)), int(round(px))])


def _inside(poly, x, y):
    """Even-odd point-in-polygon test in garment units."""
    px, py = np.asarray(poly, dtype=np.float64).T
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    crosses = (py > y) != (qy > y)
    at = px + (y - py) * (qx - px) / np.where(qy == py, 1.0, qy - py)
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def _facts(shape):
    """Everything a shape holds, as plain data (to compare two shapes)."""
    def arrays(items):
        return [np.asarray(a).round(12).tolist() for a in items]
    return {
        "parts": arrays(shape.parts), "trims": arrays(shape.trims), "panels": arrays(shape.panels),
        "side": arrays(shape.side), "stitches": arrays(shape.stitches),
        "shade": [(arrays([p]), f) for p, f in shape.shade],
        "seams": [(arrays([p]), w, f) for p, w, f in shape.seams],
        "lines": [(arrays([p]), w) for p, w in shape.lines],
        "dots": shape.dots, "chest": shape.chest, "hanger": shape.hanger,
    }


def test_category_lists_and_probabilities():
    assert len(shapes.TOP_CATEGORY_P) == len(shapes.TOP_CATEGORIES)
    assert sum(shapes.TOP_CATEGORY_P) == pytest.approx(1.0)
    assert not set(shapes.TOP_CATEGORIES) & set(shapes.BOTTOM_CATEGORIES)
    assert len(set(CATEGORIES)) == len(CATEGORIES)


@pytest.mark.parametrize("kind", CATEGORIES)
def test_garment_is_one_connected_region_that_covers_its_body_and_not_the_background(kind):
    top = kind in shapes.TOP_CATEGORIES
    for seed in SEEDS:
        s = _shape(kind, seed)
        assert s.kind == kind and s.parts
        pts = np.concatenate(s.parts)
        assert pts.ndim == 2 and pts.shape[1] == 2 and np.isfinite(pts).all()
        # about one unit tall, x centred: inside the documented garment-unit frame
        assert pts[:, 1].min() > -0.35 and pts[:, 1].max() < 1.1, (kind, seed)
        assert np.abs(pts[:, 0]).max() < 1.6, (kind, seed)
        assert pts[:, 1].max() - pts[:, 1].min() > 0.8, (kind, seed)
        img = _raster(s.parts)
        mask = np.asarray(img) > 0
        ys, xs = np.nonzero(mask)
        assert mask.sum() > 0.3 * np.ptp(ys) * np.ptp(xs), (kind, seed)  # a garment, not a few strokes
        # the body just below the neck / waist is garment, the canvas corners are background
        assert _at(mask, 0.0, 0.15), (kind, seed)
        for x, y in ((-1.55, -0.3), (1.55, -0.3), (-1.55, 1.2), (1.55, 1.2)):
            assert not _at(mask, x, y), (kind, seed, x, y)
        if kind in ("trousers", "jeans", "shorts"):
            # the gap between the legs (narrower than a pixel here at times) is background
            assert not any(_inside(part, 0.0, 0.96) for part in s.parts), (kind, seed)
            xs = np.linspace(0.01, 1.5, 150)
            for sign in (1, -1):  # with a leg either side
                assert any(_inside(s.parts[0], sign * x, 0.96) for x in xs), (kind, seed)
        # one region: flood-filling from the body reaches every garment pixel
        (px, py), = XF([(0.0, 0.15)])
        ImageDraw.floodfill(img, (int(round(px)), int(round(py))), 128)
        assert not (np.asarray(img) == 255).any(), (kind, seed)
        assert s.hanger[0] == ("hook" if top else "clip")


@pytest.mark.parametrize("kind", CATEGORIES)
def test_details_lie_on_the_garment(kind):
    for seed in SEEDS:
        s = _shape(kind, seed)
        garment = np.asarray(_raster(s.parts)) > 0
        near = np.asarray(_raster(s.parts).filter(ImageFilter.MaxFilter(3))) > 0
        for x, y, r in s.dots:  # buttons, rivets
            assert r > 0 and _at(near, x, y), (kind, seed, x, y)
        cx, cy, cw, ch = s.chest  # the logo area's centre
        assert cw > 0 and ch > 0 and _at(garment, cx, cy), (kind, seed, s.chest)
        for trim in s.trims:  # collars, cuffs, bands: (almost) all on the garment
            t = np.asarray(_raster([trim])) > 0
            if t.sum() >= 4:
                assert (t & near).sum() >= 0.8 * t.sum(), (kind, seed)
        for poly, factor in s.shade:
            assert 0 < factor < 1  # shaded areas are darker
        for line, width, factor in s.seams:
            assert len(line) >= 2 and 0 < width < 0.05 and 0.5 < factor < 1.2


@pytest.mark.parametrize("kind", CATEGORIES)
def test_the_same_seed_gives_the_same_shape_and_another_seed_another(kind):
    a, b, c = _shape(kind, 5), _shape(kind, 5), _shape(kind, 6)
    assert _facts(a) == _facts(b)
    assert _facts(a)["parts"] != _facts(c)["parts"]


def test_a_bottoms_clip_spans_its_waist():
    for kind in shapes.BOTTOM_CATEGORIES:
        for seed in SEEDS:
            s = _shape(kind, seed)
            body = s.parts[0]
            waist = np.abs(body[np.abs(body[:, 1]) < 1e-9, 0]).max()
            assert s.hanger[1:3] == (0.0, 0.0) and s.hanger[3] == pytest.approx(waist), (kind, seed)


def test_a_tops_hook_sits_on_its_highest_middle_point():
    for kind in shapes.TOP_CATEGORIES:
        for seed in SEEDS:
            s = _shape(kind, seed)
            pts = np.concatenate(s.parts)
            middle = pts[np.abs(pts[:, 0]) < 0.02]
            _, x, y = s.hanger
            assert x == 0.0 and y <= middle[:, 1].min() + 0.02 and y >= pts[:, 1].min() - 0.02, (kind, seed)


def test_arc_points_lie_on_the_ellipse_and_90_degrees_is_down():
    pts = shapes.arc(1.0, 2.0, 0.5, 0.25, 0, 180, 7)
    assert pts.shape == (7, 2)
    assert np.allclose(((pts[:, 0] - 1.0) / 0.5) ** 2 + ((pts[:, 1] - 2.0) / 0.25) ** 2, 1.0)
    assert np.allclose(pts[0], (1.5, 2.0)) and np.allclose(pts[-1], (0.5, 2.0))
    assert np.allclose(pts[3], (1.0, 2.25))  # 90 degrees: below the centre (y grows downwards)


def test_points_joins_single_points_and_arrays_in_order():
    out = shapes.points([0, 1], np.array([[2, 3], [4, 5]]), (6, 7))
    assert out.dtype == np.float64 and out.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_wobble_without_amplitude_resamples_the_outline_itself():
    square = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.3], [0.0, 0.3]])
    out = shapes.wobble(np.random.default_rng(0), square, 0.0)
    assert len(out) > 20  # every edge cut into steps of about 0.04 units
    for vertex in square:  # the corners are kept
        assert np.min(np.hypot(*(out - vertex).T)) < 1e-12
    on_edge = (np.isclose(out[:, 0], 0) | np.isclose(out[:, 0], 0.5) | np.isclose(out[:, 1], 0)
               | np.isclose(out[:, 1], 0.3))
    assert on_edge.all()
    steps = np.hypot(*np.diff(np.vstack([out, out[:1]]), axis=0).T)
    assert steps.max() < 0.08


def test_wobble_moves_the_outline_a_little_and_by_the_seed():
    square = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.3], [0.0, 0.3]])
    flat = shapes.wobble(np.random.default_rng(0), square, 0.0)
    a = shapes.wobble(np.random.default_rng(1), square, 0.004)
    b = shapes.wobble(np.random.default_rng(1), square, 0.004)
    c = shapes.wobble(np.random.default_rng(2), square, 0.004)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    moved = np.hypot(*(a - flat).T)
    assert moved.max() > 0.001 and moved.max() < 0.004 * 4  # small next to the garment (about 1 unit)
