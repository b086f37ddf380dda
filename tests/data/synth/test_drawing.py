"""Drawing helpers of the synthetic data (neipalette_tf.data.synth.drawing): the garment-to-pixel
transform, lines and discs, text masks and the noise fields that shade fabric and backgrounds."""

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from neipalette_tf.data.synth import drawing


def test_xf_scales_rotates_and_translates_about_the_garment_centre():
    xf = drawing.Xf(10.0, 0.0, (1.0, 2.0), (50.0, 60.0))
    assert xf([(1.0, 2.0)]) == [(50.0, 60.0)]  # the garment centre lands on the pixel centre
    assert xf([(2.0, 2.0), (1.0, 3.5)]) == [(60.0, 60.0), (50.0, 75.0)]
    turned = drawing.Xf(10.0, 90.0, (0.0, 0.0), (0.0, 0.0))
    (x, y), = turned([(1.0, 0.0)])  # y grows downwards: +90 degrees turns +x towards +y
    assert x == pytest.approx(0.0, abs=1e-12) and y == pytest.approx(10.0)
    pts = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    moved = np.array(drawing.Xf(7.0, 33.0, (0.2, 0.1), (5.0, 5.0))(pts))
    d0 = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
    d1 = np.hypot(*(moved[:, None] - moved[None]).transpose(2, 0, 1))
    assert np.allclose(d1, 7.0 * d0)  # a similarity: distances scale, shapes do not bend


def test_xf_lengths_in_pixels_are_at_least_one():
    xf = drawing.Xf(100.0, 12.0, (0, 0), (0, 0))
    assert xf.px(0.05) == 5 and xf.px(0.0001) == 1 and xf.px(0.0) == 1


def test_disc_and_polyline_draw_where_they_are_asked():
    img = Image.new("L", (40, 40), 0)
    draw = ImageDraw.Draw(img)
    drawing.disc(draw, (20, 20), 8, 255)
    a = np.asarray(img) > 0
    assert abs(a.sum() - math.pi * 8 ** 2) < 0.2 * math.pi * 8 ** 2
    ys, xs = np.nonzero(a)
    assert abs(xs.mean() - 20) < 0.6 and abs(ys.mean() - 20) < 0.6
    img = Image.new("L", (40, 40), 0)
    draw = ImageDraw.Draw(img)
    drawing.polyline(draw, [(5.0, 5.0)], 255, 3)  # one point is no line: nothing drawn
    assert not np.asarray(img).any()
    drawing.polyline(draw, [(5.0, 10.0), (35.0, 10.0), (35.0, 30.0)], 255, 3)
    b = np.asarray(img) > 0
    assert b[10, 5:36].all() and b[10:31, 35].all() and not b[25, 10]


@pytest.mark.parametrize("text", ["OK", "JUST DO IT", "1987"])
def test_text_mask_fits_the_requested_box(text):
    m = drawing.text_mask(text, 20, 200)
    assert m.mode == "L"
    a = np.asarray(m) > 127
    assert a.any() and not a.all()
    rows = np.nonzero(a.any(axis=1))[0]
    assert 10 <= np.ptp(rows) + 1 <= 24  # about 20 px tall
    narrow = drawing.text_mask(text, 200, 40)
    assert narrow.width <= 40 + 2  # at most 40 px wide (plus the 1 px margin each side)
    assert (np.asarray(narrow) > 127).any()


def test_smooth_noise_is_seeded_unit_scale_and_low_frequency():
    a = drawing.smooth_noise(np.random.default_rng(3), 60, 90, 4)
    b = drawing.smooth_noise(np.random.default_rng(3), 60, 90, 4)
    c = drawing.smooth_noise(np.random.default_rng(4), 60, 90, 4)
    assert a.shape == (60, 90) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.allclose(a, c)
    values = np.concatenate([drawing.smooth_noise(np.random.default_rng(s), 60, 90, 4).ravel() for s in range(30)])
    assert abs(values.mean()) < 0.2 and 0.4 < values.std() < 1.3  # about N(0, 1)
    white = np.random.default_rng(0).standard_normal((60, 90))
    step = lambda f: np.abs(np.diff(f, axis=1)).mean() / f.std()  # noqa: E731
    assert step(a) < 0.25 * step(white)  # neighbours alike: smooth, unlike white noise


def test_grid_is_normalised_by_the_long_side():
    xx, yy = drawing.grid(4, 8)
    assert xx.shape == yy.shape == (4, 8) and xx.dtype == np.float32
    assert xx[0].tolist() == [i / 8 for i in range(8)] and (xx == xx[0]).all()
    assert yy[:, 0].tolist() == [i / 8 for i in range(4)] and (yy.T == yy[:, 0]).all()


def test_waves_are_bounded_by_their_amplitudes_and_seeded():
    xx, yy = drawing.grid(50, 70)
    assert not drawing.waves(np.random.default_rng(0), xx, yy, 0, (0.1, 0.5), (0.01, 0.05)).any()
    w = drawing.waves(np.random.default_rng(1), xx, yy, 4, (0.1, 0.5), (0.01, 0.05))
    assert w.shape == xx.shape and np.abs(w).max() <= 4 * 0.05 + 1e-6 and w.std() > 0.005
    assert np.array_equal(w, drawing.waves(np.random.default_rng(1), xx, yy, 4, (0.1, 0.5), (0.01, 0.05)))
