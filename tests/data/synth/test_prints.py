"""Prints, trims, details and hangers (neipalette_tf.data.synth.prints): what is painted on a garment in
other colours, kept at or under its share of the garment, and only on the garment.

tests/data/test_synth.py checks the 30 % bound on whole rendered photos; here `Printer` itself (the
bound, the clipping to the garment, the refusal that leaves the canvas as it was), the styles drawn,
details without prints, and where hangers go."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from neipalette_tf.data.synth import prints, shapes
from neipalette_tf.data.synth.drawing import Xf

GREY = (128, 128, 128)


def _garment(kind, seed, size=(96, 128)):
    """A garment's shape, its transform, a grey canvas with the garment in white and its mask."""
    rng = np.random.default_rng(seed)
    shape = shapes.top_shape(rng, kind) if kind in shapes.TOP_CATEGORIES else shapes.bottom_shape(rng, kind)
    pts = np.concatenate(shape.parts)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    xf = Xf(0.9 * size[1] / (np.ptp(pts[:, 1]) + 0.3), 0.0, centre, (size[0] / 2, size[1] / 2 + 8))
    canvas = Image.new("RGB", size, GREY)
    gmask = Image.new("L", size, 0)
    for part in shape.parts:
        ImageDraw.Draw(gmask).polygon(xf(part), fill=255)
    canvas.paste((255, 255, 255), mask=gmask)
    return rng, shape, xf, canvas, gmask


def _square_printer(cap=0.3):
    canvas = Image.new("RGB", (40, 40), GREY)
    gmask = Image.new("L", (40, 40), 0)
    ImageDraw.Draw(gmask).rectangle([10, 10, 29, 29], fill=255)  # a 20 x 20 px garment: 400 px
    return prints.Printer(canvas, gmask, cap), canvas


def test_style_tables_are_distributions():
    for styles, p in ((prints.TOP_STYLES, prints.TOP_STYLE_P), (prints.BOTTOM_STYLES, prints.BOTTOM_STYLE_P)):
        assert len(styles) == len(p) == len(set(styles)) and sum(p) == pytest.approx(1.0)
    assert 0 < prints.PRINT_P < 1 and prints.MAX_PRINT_FRACTION == 0.30


def test_printer_paints_an_element_on_the_garment_only():
    printer, canvas = _square_printer()
    assert printer.fraction == 0
    assert printer.add((255, 0, 0), lambda d, e: d.rectangle([0, 10, 14, 19], fill=255))  # half off the garment
    a = np.asarray(canvas)
    red = (a == (255, 0, 0)).all(axis=2)
    assert red.sum() == 5 * 10 and red[10:20, 10:15].all()  # only the 5 x 10 px on the garment
    assert printer.fraction == pytest.approx(50 / 400)
    assert printer.add((0, 0, 255), lambda d, e: d.rectangle([0, 0, 9, 9], fill=255))  # off the garment
    assert np.array_equal(np.asarray(canvas), a) and printer.fraction == pytest.approx(50 / 400)


def test_printer_counts_the_union_and_refuses_an_element_over_its_cap():
    printer, canvas = _square_printer(cap=0.3)  # 120 of 400 px
    element = lambda d, e: d.rectangle([10, 10, 29, 13], fill=255)  # noqa: E731 - 80 px
    assert printer.add((255, 0, 0), element) and printer.add((0, 255, 0), element)  # overlap counted once
    assert printer.fraction == pytest.approx(80 / 400)
    before = np.asarray(canvas).copy()
    assert not printer.add((0, 0, 255), lambda d, e: d.rectangle([10, 20, 29, 22], fill=255))  # 60 more: 140 > 120
    assert np.array_equal(np.asarray(canvas), before) and printer.fraction == pytest.approx(80 / 400)
    assert printer.add((0, 0, 255), lambda d, e: d.rectangle([10, 20, 29, 21], fill=255))  # 40 more: 120, at the cap
    assert printer.fraction == pytest.approx(0.3)


@pytest.mark.parametrize("kind", ["tshirt", "hoodie", "jeans", "skirt"])
def test_prints_stay_on_the_garment_under_the_cap_and_follow_the_seed(kind):
    top = kind in shapes.TOP_CATEGORIES
    styles, painted = set(), 0
    for seed in range(12):
        rng, shape, xf, canvas, gmask = _garment(kind, seed)
        printer = prints.Printer(canvas, gmask, prints.MAX_PRINT_FRACTION)
        style = prints.draw_prints(rng, shape, xf, printer, top)
        styles.add(style)
        assert style in (prints.TOP_STYLES if top else prints.BOTTOM_STYLES)
        assert 0 <= printer.fraction <= prints.MAX_PRINT_FRACTION
        painted += printer.fraction > 0.01
        a = np.asarray(canvas)
        outside = np.asarray(gmask) == 0
        assert (a[outside] == GREY).all(), (kind, seed, style)  # nothing painted off the garment
        again = _garment(kind, seed)
        p2 = prints.Printer(again[3], again[4], prints.MAX_PRINT_FRACTION)
        assert prints.draw_prints(again[0], again[1], again[2], p2, top) == style
        assert again[3].tobytes() == canvas.tobytes()
    assert len(styles) >= 3 and painted >= 6


def test_details_without_prints_go_to_the_shading_lines_not_the_canvas():
    seen = 0
    for seed in range(6):
        rng, shape, xf, canvas, gmask = _garment("jeans", seed)  # rivets and top-stitching
        lines = Image.new("L", canvas.size, 200)
        before = canvas.tobytes()
        printer = prints.Printer(canvas, gmask, prints.MAX_PRINT_FRACTION)
        prints.draw_details(rng, shape, xf, printer, ImageDraw.Draw(lines), prints=False)
        assert canvas.tobytes() == before and printer.fraction == 0
        values = set(np.unique(np.asarray(lines)).tolist())
        assert {165, 228} <= values  # rivets (darker) and top-stitching (lighter) in the shading
        seen += 1
    coloured = 0
    for seed in range(10):
        rng, shape, xf, canvas, gmask = _garment("jeans", seed)
        printer = prints.Printer(canvas, gmask, prints.MAX_PRINT_FRACTION)
        prints.draw_details(rng, shape, xf, printer, ImageDraw.Draw(Image.new("L", canvas.size, 200)), prints=True)
        coloured += printer.fraction > 0
        assert printer.fraction <= prints.MAX_PRINT_FRACTION
    assert seen == 6 and coloured >= 3  # with prints, details often take a colour of their own


def test_hangers_hook_above_a_top_and_clip_a_bottoms_waist():
    _, shape, xf, canvas, gmask = _garment("tshirt", 0)
    garment_top = np.nonzero(np.asarray(gmask).any(axis=1))[0].min()
    hook = Image.new("L", canvas.size, 0)
    prints.draw_hanger(ImageDraw.Draw(hook), shape, xf, 255, front=True)
    assert not np.asarray(hook).any()  # a hook has no front part
    prints.draw_hanger(ImageDraw.Draw(hook), shape, xf, 255, front=False)
    rows = np.nonzero(np.asarray(hook).any(axis=1))[0]
    assert rows.min() < garment_top - 2  # the hook rises above the neck

    _, shape, xf, canvas, gmask = _garment("trousers", 0)
    g = np.asarray(gmask) > 0
    waist = np.nonzero(g.any(axis=1))[0].min()
    clips = Image.new("L", canvas.size, 0)
    prints.draw_hanger(ImageDraw.Draw(clips), shape, xf, 255, front=True)
    c = np.asarray(clips) > 0
    ys, xs = np.nonzero(c)
    assert c.any() and ys.max() <= waist + 6 and (c & g).any()  # clips hold the waist band
    left, right = xs < canvas.size[0] / 2, xs >= canvas.size[0] / 2
    assert left.any() and right.any()  # one clip each side
    bar = Image.new("L", canvas.size, 0)
    prints.draw_hanger(ImageDraw.Draw(bar), shape, xf, 255, front=False)
    assert np.nonzero(np.asarray(bar).any(axis=1))[0].min() < waist - 2  # bar and hook above the waist


def test_hanger_colours_are_rgb_and_seeded():
    colours = [prints.hanger_colour(np.random.default_rng(s)) for s in range(40)]
    assert colours == [prints.hanger_colour(np.random.default_rng(s)) for s in range(40)]
    for c in colours:
        assert len(c) == 3 and all(0 <= int(v) <= 255 for v in c)
    assert len(set(map(tuple, colours))) >= 4
