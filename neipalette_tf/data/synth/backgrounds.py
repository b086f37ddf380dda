"""Scenes: a photo's aspect, background and hanging, and the background drawn with its shading."""

import math

import numpy as np
from PIL import Image, ImageDraw

from neipalette_tf.data.synth.colours import lch_rgb, print_colour, random_rgb
from neipalette_tf.data.synth.drawing import disc, grid, smooth_noise, waves

# Canvas aspects, (width, height) ratio, and how often each is drawn.
ASPECTS = {"3:4": (3, 4), "1:1": (1, 1), "9:16": (9, 16), "4:3": (4, 3)}
ASPECT_P = (0.62, 0.14, 0.12, 0.12)

BG_KINDS = ("plain", "boards", "tiles", "sheet", "rug", "wall")


def sample_scene(rng):
    """The scene of a photo: aspect, background kind and its colours, hanging or not."""
    hanging = bool(rng.random() < 0.18)
    spec = {"aspect": str(rng.choice(list(ASPECTS), p=ASPECT_P)), "hanging": hanging}
    if hanging:
        kind = str(rng.choice(["wall", "boards", "tiles", "sheet"], p=[0.6, 0.14, 0.14, 0.12]))
    else:
        kind = str(rng.choice(["plain", "boards", "tiles", "sheet", "rug"], p=[0.2, 0.2, 0.17, 0.21, 0.22]))
    spec["kind"] = kind
    u = rng.random()
    if kind == "wall":
        if u < 0.8:
            spec["colour"] = lch_rgb(rng.uniform(0.78, 0.97), rng.uniform(0, 0.025), rng.uniform(0, 360))
        else:
            spec["colour"] = random_rgb(rng, L=(0.6, 0.92), sat=(0.05, 0.4))
        spec["fleece"] = False
    elif kind == "plain":
        if u < 0.3:
            spec["colour"] = lch_rgb(rng.uniform(0.75, 0.96), rng.uniform(0, 0.03), rng.uniform(0, 360))
        elif u < 0.65:
            spec["colour"] = random_rgb(rng, L=(0.3, 0.8), sat=(0.45, 1.0))
        else:
            spec["colour"] = random_rgb(rng, L=(0.2, 0.75), sat=(0.0, 0.35))
        spec["fleece"] = bool(rng.random() < 0.55)
    elif kind == "boards":
        if u < 0.6:
            spec["lch"] = (rng.uniform(0.4, 0.8), rng.uniform(0.03, 0.1), rng.uniform(45, 80))
        elif u < 0.85:
            spec["lch"] = (rng.uniform(0.4, 0.85), rng.uniform(0.0, 0.02), rng.uniform(0, 360))
        else:
            spec["lch"] = (rng.uniform(0.78, 0.9), rng.uniform(0.01, 0.03), rng.uniform(50, 90))
        spec["plank"] = rng.uniform(0.1, 0.3)
        spec["angle"] = float(rng.choice([0.0, 90.0])) + rng.uniform(-8, 8)
        spec["gap"] = rng.uniform(0.35, 0.75)
    elif kind == "tiles":
        if u < 0.6:
            spec["colour"] = lch_rgb(rng.uniform(0.8, 0.96), rng.uniform(0, 0.03), rng.uniform(0, 360))
        elif u < 0.85:
            spec["colour"] = lch_rgb(rng.uniform(0.45, 0.7), rng.uniform(0.0, 0.09), rng.uniform(30, 80))
        else:
            spec["colour"] = random_rgb(rng, L=(0.4, 0.9), sat=(0.1, 0.8))
        spec["tile"] = rng.uniform(0.15, 0.45)
        spec["angle"] = 45.0 if rng.random() < 0.12 else rng.uniform(-6, 6)
        spec["grout"] = lch_rgb(rng.uniform(0.45, 0.95), rng.uniform(0, 0.02), rng.uniform(0, 360))
    elif kind == "sheet":
        _sheet(rng, spec, u)
    else:  # rug
        _rug(rng, spec)
    return spec


SHEET_PATTERNS = ("none", "stripes", "dots", "flowers", "checks")
SHEET_PATTERN_P = (0.35, 0.2, 0.15, 0.2, 0.1)
RUG_STYLES = ("shaggy", "plaid", "geometric")
RUG_STYLE_P = (0.45, 0.35, 0.2)


def _patterned(names, p, busy):
    """The choices and their probabilities; `busy`: the patterned ones only (plain "none" / "shaggy" left out)."""
    if not busy:
        return list(names), list(p)
    keep = [(n, q) for n, q in zip(names, p) if n not in ("none", "shaggy")]
    total = sum(q for _, q in keep)
    return [n for n, _ in keep], [q / total for _, q in keep]


def _sheet(rng, spec, u, busy=False):
    if u < 0.5:
        spec["colour"] = random_rgb(rng, L=(0.82, 0.97), sat=(0.0, 0.35))
    elif u < 0.8:
        spec["colour"] = random_rgb(rng, L=(0.55, 0.9), sat=(0.1, 0.6))
    else:
        spec["colour"] = random_rgb(rng, L=(0.3, 0.85), sat=(0.3, 1.0))
    names, p = _patterned(SHEET_PATTERNS, SHEET_PATTERN_P, busy)
    spec["pattern"] = str(rng.choice(names, p=p))
    spec["ink"] = [random_rgb(rng, L=(0.3, 0.95), sat=(0.1, 1.0)) for _ in range(3)]
    spec["scale"] = rng.uniform(0.04, 0.14)


def _rug(rng, spec, busy=False):
    names, p = _patterned(RUG_STYLES, RUG_STYLE_P, busy)
    spec["style"] = str(rng.choice(names, p=p))
    if spec["style"] == "shaggy":
        spec["colour"] = lch_rgb(rng.uniform(0.45, 0.82), rng.uniform(0, 0.04), rng.uniform(0, 360))
    else:
        spec["colour"] = random_rgb(rng, L=(0.3, 0.75), sat=(0.4, 1.0))
    spec["ink"] = [random_rgb(rng, L=(0.2, 0.95), sat=(0.0, 1.0)) for _ in range(3)]
    spec["scale"] = rng.uniform(0.08, 0.25)


def busy_scene(rng, scene):
    """`scene` with a busy background (`synth --hard-scenes`): a patterned bed sheet (stripes, dots,
    flowers, checks) or, for a garment lying flat, as often a plaid or geometric rug. Aspect and
    hanging are kept."""
    spec = {"aspect": scene["aspect"], "hanging": scene["hanging"]}
    if scene["hanging"] or rng.random() < 0.5:
        spec["kind"] = "sheet"
        _sheet(rng, spec, rng.random(), busy=True)
    else:
        spec["kind"] = "rug"
        _rug(rng, spec, busy=True)
    return spec


def busy_text(scene):
    """What a busy background is, e.g. "sheet/flowers" or "rug/plaid"."""
    return f"{scene['kind']}/{scene.get('pattern', scene.get('style'))}"


def _rotated_pattern(size, angle, colour, draw_fn):
    """Draw a pattern axis-aligned on a larger square, rotate it, crop to size."""
    w, h = size
    d = int(math.ceil(math.hypot(w, h))) + 2
    img = Image.new("RGB", (d, d), colour)
    draw_fn(ImageDraw.Draw(img), d)
    if abs(angle) > 0.01:
        img = img.rotate(angle, resample=Image.NEAREST, fillcolor=colour)
    x0, y0 = (d - w) // 2, (d - h) // 2
    return img.crop((x0, y0, x0 + w, y0 + h))


def _jitter_rgb(rng, rgb, dl):
    """A colour a little lighter or darker (same hue)."""
    f = max(0.0, 1.0 + rng.normal(0, dl))
    return tuple(int(min(255, max(0, round(v * f)))) for v in rgb)


def draw_background(rng, spec, size, final_size):
    """The background at working size (PIL RGB) and its shading field at final size."""
    w, h = size
    fw, fh = final_size
    short = min(w, h)
    kind = spec["kind"]
    xx, yy = grid(fh, fw)
    field = np.ones((fh, fw), dtype=np.float32)
    if kind in ("plain", "wall"):
        img = Image.new("RGB", size, spec["colour"])
        if spec.get("fleece"):
            field += waves(rng, xx, yy, 4, (0.2, 0.6), (0.01, 0.04))
            field += 0.03 * rng.standard_normal((fh, fw)).astype(np.float32)
        else:
            field += 0.008 * rng.standard_normal((fh, fw)).astype(np.float32)
    elif kind == "boards":
        base = lch_rgb(*spec["lch"])
        pw = max(4, int(spec["plank"] * short))
        gap = tuple(int(v * spec["gap"]) for v in base)

        def boards(draw, d):
            for x in range(0, d, pw):
                draw.rectangle([x, 0, x + pw, d], fill=_jitter_rgb(rng, base, 0.07))
                y = rng.uniform(-d, 0)
                while y < d:
                    draw.line([(x, y), (x + pw, y)], fill=gap, width=max(1, short // 150))
                    y += rng.uniform(0.6, 1.6) * d
                draw.line([(x, 0), (x, d)], fill=gap, width=max(1, short // 120))

        img = _rotated_pattern(size, spec["angle"], base, boards)
        t = math.radians(spec["angle"])
        u = xx * math.cos(t) + yy * math.sin(t)
        v = -xx * math.sin(t) + yy * math.cos(t)
        grain = np.zeros_like(xx)
        for _ in range(3):
            wavy = 2.0 * np.sin(2 * math.pi * v * rng.uniform(0.5, 3))
            grain += rng.uniform(0.01, 0.03) * np.sin(2 * math.pi * u * rng.uniform(20, 80) + rng.uniform(0, 6) + wavy)
        field += grain + 0.015 * rng.standard_normal((fh, fw)).astype(np.float32)
    elif kind == "tiles":
        tile = max(6, int(spec["tile"] * short))
        grout_w = max(1, int(short * rng.uniform(0.004, 0.012)))

        def tiles(draw, d):
            off = int(rng.integers(0, tile))
            for x in range(-off, d, tile):
                for y in range(-off, d, tile):
                    draw.rectangle([x, y, x + tile, y + tile], fill=_jitter_rgb(rng, spec["colour"], 0.025))
            for x in range(-off, d, tile):
                draw.line([(x, 0), (x, d)], fill=spec["grout"], width=grout_w)
            for y in range(-off, d, tile):
                draw.line([(0, y), (d, y)], fill=spec["grout"], width=grout_w)

        img = _rotated_pattern(size, spec["angle"], spec["colour"], tiles)
        gx, gy = rng.uniform(0, 1, size=2)
        field += rng.uniform(0.0, 0.2) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / rng.uniform(0.02, 0.15))
        field += 0.008 * rng.standard_normal((fh, fw)).astype(np.float32)
    elif kind == "sheet":
        pattern = spec["pattern"]
        sc = max(3, int(spec["scale"] * short))
        ink = spec["ink"]

        def sheet(draw, d):
            if pattern == "stripes":
                for x in range(0, d, sc):
                    draw.rectangle([x, 0, x + max(1, sc // 4), d], fill=ink[0])
            elif pattern == "checks":
                for x in range(0, d, 2 * sc):
                    draw.rectangle([x, 0, x + sc, d], fill=ink[0])
                for y in range(0, d, 2 * sc):
                    draw.rectangle([0, y, d, y + sc], fill=ink[1])
            elif pattern == "dots":
                r = max(1, sc // 5)
                for i, y in enumerate(range(0, d, sc)):
                    for x in range(0, d, sc):
                        disc(draw, (x + (sc // 2) * (i % 2), y), r, ink[0])
            elif pattern == "flowers":
                for _ in range(int((d / sc) ** 2 * 0.5)):
                    cx, cy = rng.uniform(0, d, size=2)
                    r = sc * rng.uniform(0.15, 0.3)
                    col = ink[int(rng.integers(0, 2))]
                    for k in range(5):
                        a = 2 * math.pi * k / 5
                        disc(draw, (cx + r * math.cos(a), cy + r * math.sin(a)), r * 0.6, col)
                    disc(draw, (cx, cy), r * 0.45, ink[2])

        img = _rotated_pattern(size, rng.uniform(-30, 30), spec["colour"], sheet)
        field += waves(rng, xx, yy, 5, (0.15, 0.6), (0.015, 0.05))
        field += 0.04 * smooth_noise(rng, fh, fw, 5)
        field += 0.01 * rng.standard_normal((fh, fw)).astype(np.float32)
    else:  # rug
        style = spec["style"]
        ink = spec["ink"]
        sc = max(4, int(spec["scale"] * short))
        if style == "shaggy":
            img = Image.new("RGB", size, spec["colour"])
            field += 0.1 * smooth_noise(rng, fh, fw, max(fw, fh) / 2.5)
            field += 0.07 * rng.standard_normal((fh, fw)).astype(np.float32)
            field += 0.04 * smooth_noise(rng, fh, fw, 4)
        elif style == "plaid":
            bands = [(int(rng.integers(1, max(2, sc // 2))), ink[i % 3]) for i in range(int(rng.integers(2, 5)))]

            def stripes(draw, d):
                x = 0
                while x < d:
                    for bw, col in bands:
                        draw.rectangle([x, 0, x + bw, d], fill=col)
                        x += bw + sc // 2

            a = rng.uniform(-10, 10)
            v = _rotated_pattern(size, a, spec["colour"], stripes)
            hz = _rotated_pattern(size, a + 90, spec["colour"], stripes)
            img = Image.blend(v, hz, 0.5)
            field += 0.05 * rng.standard_normal((fh, fw)).astype(np.float32)
        else:
            def geometric(draw, d):
                for i, y in enumerate(range(0, d, sc)):
                    for j, x in enumerate(range(0, d, sc)):
                        col = ink[(i + j) % 3]
                        if (i + j) % 2:
                            draw.polygon([(x + sc / 2, y), (x + sc, y + sc / 2), (x + sc / 2, y + sc),
                                          (x, y + sc / 2)], fill=col)

            img = _rotated_pattern(size, rng.uniform(-10, 10), spec["colour"], geometric)
            field += 0.05 * rng.standard_normal((fh, fw)).astype(np.float32)
    # light from one side, on the floor too
    a = rng.uniform(0, 2 * math.pi)
    field *= 1 + rng.uniform(0, 0.12) * ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a))
    return img, field


def draw_object(rng, draw, size):
    """A small second object near a corner (a sock, a tag)."""
    w, h = size
    short = min(w, h)
    r = short * rng.uniform(0.05, 0.09)
    corners = [(r * 1.5, r * 1.5), (w - r * 1.5, r * 1.5), (r * 1.5, h - r * 1.5), (w - r * 1.5, h - r * 1.5)]
    cx, cy = corners[int(rng.integers(0, 4))]
    cx, cy = cx + rng.uniform(-r, r) * 0.5, cy + rng.uniform(-r, r) * 0.5
    col = print_colour(rng)
    if rng.random() < 0.6:  # sock
        a = rng.uniform(0, 2 * math.pi)
        p0 = (cx - r * math.cos(a), cy - r * math.sin(a))
        p1 = (cx + r * math.cos(a), cy + r * math.sin(a))
        p2 = (p1[0] + 0.7 * r * math.cos(a + 1.6), p1[1] + 0.7 * r * math.sin(a + 1.6))
        draw.line([p0, p1, p2], fill=col, width=max(2, int(r * 0.7)), joint="curve")
    else:  # tag
        draw.rectangle([cx - r * 0.5, cy - r * 0.8, cx + r * 0.5, cy + r * 0.8], fill=col)
        draw.line([(cx, cy - r * 0.8), (cx + r * 0.6, cy - r * 1.6)], fill=(240, 240, 240), width=max(1, int(r * 0.08)))
