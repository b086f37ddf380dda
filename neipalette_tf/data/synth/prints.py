"""Prints, trims, details and the hanger: what is painted on a garment in other colours."""

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from neipalette_tf.data.synth.colours import lch_rgb, print_colour, random_rgb
from neipalette_tf.data.synth.drawing import disc, polyline, text_mask
from neipalette_tf.data.synth.shapes import arc, points

MAX_PRINT_FRACTION = 0.30  # prints / trims cover at most this share of a garment
PRINT_P = 0.5  # share of garments with prints, stripes, logos or trims

TOP_STYLES = ("graphic", "text", "stripes", "checks", "dots", "trims", "panel")
TOP_STYLE_P = (0.27, 0.15, 0.15, 0.07, 0.06, 0.16, 0.14)
BOTTOM_STYLES = ("side", "trims", "graphic", "text", "stripes", "checks", "dots", "panel")
BOTTOM_STYLE_P = (0.2, 0.22, 0.1, 0.1, 0.1, 0.09, 0.09, 0.1)

_WORDS = ("GAP", "JUST DO IT", "KEEP CALM", "NYC", "SPORT", "CHICAGO", "ORIGINAL", "1987", "LOVE",
          "BROOKLYN", "TEAM", "VIBES", "RUN", "CLUB", "ATHLETIC", "SUMMER", "NO. 7", "CALIFORNIA",
          "BASIC", "WILD", "THE DOCTOR", "EVOLUTION", "OK", "SURF", "AUTHENTIC", "85", "PARIS", "HELLO")


class Printer:
    """Paints elements in other colours on the garment, keeping their union
    at or below `cap` of the garment's area (measured on the working mask)."""

    def __init__(self, canvas, gmask, cap):
        self.canvas, self.gmask, self.cap = canvas, gmask, cap
        self.g = np.asarray(gmask) > 127
        self.gsum = max(1, int(np.count_nonzero(self.g)))
        self.acc = np.zeros_like(self.g)

    @property
    def fraction(self):
        return np.count_nonzero(self.acc) / self.gsum

    def add(self, colour, draw_fn):
        e = Image.new("L", self.canvas.size, 0)
        draw_fn(ImageDraw.Draw(e), e)
        new = self.acc | ((np.asarray(e) > 127) & self.g)
        if np.count_nonzero(new) > self.cap * self.gsum:
            return False
        self.canvas.paste(colour, mask=ImageChops.multiply(e, self.gmask))
        self.acc = new
        return True


def _add_text(printer, xf, text, centre, h_units, w_units, colour):
    m = text_mask(text, xf.scale * h_units, xf.scale * w_units)
    m = m.rotate(-xf.theta, resample=Image.BILINEAR, expand=True)
    (px, py), = xf([centre])
    box = (int(round(px - m.width / 2)), int(round(py - m.height / 2)))
    return printer.add(colour, lambda d, e: e.paste(255, box, m))


def _star(cx, cy, r, n=5):
    t = np.linspace(-math.pi / 2, 1.5 * math.pi, 2 * n, endpoint=False)
    rr = np.where(np.arange(2 * n) % 2 == 0, r, r * 0.45)
    return np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)


def draw_details(rng, shape, xf, printer, lines_draw, prints):
    """Zips, drawstrings, buttons, rivets and top-stitching."""
    for pl, width in shape.lines:
        if prints and rng.random() < 0.75:
            col = [(170, 172, 176), (30, 30, 32), (235, 235, 232), print_colour(rng)][int(rng.integers(0, 4))]
            printer.add(col, lambda d, e, pl=pl, width=width: polyline(d, xf(pl), 255, xf.px(width)))
        else:
            polyline(lines_draw, xf(pl), 150, xf.px(width))
    if shape.dots:
        r = lambda rad: max(1.0, rad * xf.scale)  # noqa: E731
        if prints and rng.random() < 0.5:
            col = print_colour(rng) if shape.kind != "jeans" else (176, 120, 60)
            printer.add(col, lambda d, e: [disc(d, xf([(x, y)])[0], r(rad), 255) for x, y, rad in shape.dots])
        else:
            for x, y, rad in shape.dots:
                disc(lines_draw, xf([(x, y)])[0], r(rad), 165)
    if shape.stitches:
        width = xf.px(0.0045)
        if prints and rng.random() < 0.7:
            col = [(205, 150, 60), (225, 120, 40), (235, 225, 200)][int(rng.integers(0, 3))]
            printer.add(col, lambda d, e: [polyline(d, xf(pl), 255, width) for pl in shape.stitches])
        else:
            for pl in shape.stitches:
                polyline(lines_draw, xf(pl), 228, width)


def draw_prints(rng, shape, xf, printer, top):
    """One print style in other colours; returns the style's name."""
    styles, p = (TOP_STYLES, TOP_STYLE_P) if top else (BOTTOM_STYLES, BOTTOM_STYLE_P)
    style = str(rng.choice(styles, p=p))
    cx, cy, cw, ch = shape.chest
    if style == "graphic":
        for _ in range(int(rng.integers(1, 4))):
            col = print_colour(rng)
            item = str(rng.choice(["disc", "rect", "tri", "star", "text", "ring"]))
            sz = rng.uniform(0.3, 0.9) * min(cw, ch)
            px = cx + rng.uniform(-0.5, 0.5) * max(cw - sz, 0)
            py = cy + rng.uniform(-0.5, 0.5) * max(ch - sz, 0)
            if item == "text":
                _add_text(printer, xf, str(rng.choice(_WORDS)), (px, py), sz * 0.5, cw, col)
                continue
            if item in ("disc", "ring"):
                poly = arc(px, py, sz / 2, sz / 2, 0, 360, 24)
            elif item == "rect":
                poly = points([px - sz / 2, py - sz / 3], [px + sz / 2, py - sz / 3], [px + sz / 2, py + sz / 3],
                              [px - sz / 2, py + sz / 3])
            elif item == "tri":
                poly = points([px, py - sz / 2], [px + sz / 2, py + sz / 2], [px - sz / 2, py + sz / 2])
            else:
                poly = _star(px, py, sz / 2)
            if item == "ring":
                printer.add(col, lambda d, e, poly=poly: d.line(xf(poly), fill=255, width=xf.px(sz * 0.12)))
            else:
                printer.add(col, lambda d, e, poly=poly: d.polygon(xf(poly), fill=255))
    elif style == "text":
        col = print_colour(rng)
        n = int(rng.integers(1, 4))
        for i in range(n):
            y = cy - ch / 2 + (i + 0.5) * ch / n
            _add_text(printer, xf, str(rng.choice(_WORDS)), (cx, y), ch / n * rng.uniform(0.6, 0.9), cw, col)
    elif style in ("stripes", "checks"):
        period = rng.uniform(0.04, 0.2)
        duty = rng.uniform(0.08, 0.3) if style == "stripes" else rng.uniform(0.06, 0.15)
        col = print_colour(rng)
        horizontal = rng.random() < (0.75 if top else 0.4)
        phase = rng.uniform(0, period)
        for direction in ((horizontal,) if style == "stripes" else (True, False)):
            for attempt in range(3):
                polys = []
                for v in np.arange(-2.0 + phase, 2.0, period):
                    a, b = v, v + duty * period
                    if direction:
                        polys.append(points([-3, a], [3, a], [3, b], [-3, b]))
                    else:
                        polys.append(points([a, -1], [b, -1], [b, 2], [a, 2]))
                if printer.add(col, lambda d, e, polys=polys: [d.polygon(xf(q), fill=255) for q in polys]):
                    break
                duty *= 0.6
    elif style == "dots":
        spacing = rng.uniform(0.05, 0.15)
        rad = spacing * rng.uniform(0.1, 0.28)
        col = print_colour(rng)
        centres = [(x + (spacing / 2) * (i % 2), y) for i, y in enumerate(np.arange(-0.5, 1.5, spacing))
                   for x in np.arange(-1.5, 1.5, spacing)]
        printer.add(col, lambda d, e: [disc(d, xf([c])[0], rad * xf.scale, 255) for c in centres])
    elif style == "trims":
        col = print_colour(rng)
        order = rng.permutation(len(shape.trims))
        for i in order[: int(rng.integers(1, len(order) + 1))]:
            printer.add(col, lambda d, e, q=shape.trims[i]: d.polygon(xf(q), fill=255))
    elif style == "panel":
        col = print_colour(rng)
        q = shape.panels[int(rng.integers(0, len(shape.panels)))]
        if not printer.add(col, lambda d, e: d.polygon(xf(q), fill=255)):
            printer.add(col, lambda d, e: d.polygon(xf(shape.trims[0]), fill=255))
    elif style == "side":
        col = print_colour(rng)
        printer.add(col, lambda d, e: [d.polygon(xf(q), fill=255) for q in shape.side])
    return style


def hanger_colour(rng):
    return [(28, 28, 30), (236, 236, 234), lch_rgb(0.55, 0.07, 65), (172, 174, 178),
            random_rgb(rng, L=(0.4, 0.8), sat=(0.3, 0.9))][int(rng.integers(0, 5))]


def draw_hanger(draw, shape, xf, colour, front):
    """A hanger: a hook above the neck (tops) or a clip bar above the waist."""
    kind = shape.hanger[0]
    x, y = shape.hanger[1], shape.hanger[2]
    r = 0.035
    if kind == "hook" and not front:
        top = y - 0.07
        hook = points([x, y + 0.03], [x, top], arc(x + r, top, r, r, 180, 390, 12))
        polyline(draw, xf(hook), colour, xf.px(0.012))
        polyline(draw, xf([[-0.34, 0.1], [x, y + 0.03], [0.34, 0.1]]), colour, xf.px(0.014))
    elif kind == "clip":
        w = shape.hanger[3]
        bar = y - 0.045
        if not front:
            polyline(draw, xf([[-w * 1.15, bar], [w * 1.15, bar]]), colour, xf.px(0.018))
            top = bar - 0.06
            hook = points([x, bar], [x, top], arc(x + r, top, r, r, 180, 390, 12))
            polyline(draw, xf(hook), colour, xf.px(0.012))
        else:
            for sign in (1.0, -1.0):
                cx = sign * w * 0.8
                draw.polygon(xf([[cx - 0.02, bar], [cx + 0.02, bar], [cx + 0.02, y + 0.035],
                                 [cx - 0.02, y + 0.035]]), fill=colour)
