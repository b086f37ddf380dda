"""Garment geometry: tops and bottoms as polygons and details in garment units.

Garment units: y down, about 1 unit tall, x centred. `top_shape` and
`bottom_shape` draw a garment from a random generator; `render` places it on
the canvas with a `drawing.Xf`.
"""

import math

import numpy as np

TOP_CATEGORIES = ("tshirt", "shirt", "longsleeve", "hoodie", "jacket")
TOP_CATEGORY_P = (0.30, 0.17, 0.23, 0.18, 0.12)
BOTTOM_CATEGORIES = ("trousers", "jeans", "shorts", "skirt")


def arc(cx, cy, rx, ry, a0, a1, n=10):
    """Points on an ellipse from angle a0 to a1 (degrees; 90 = down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _bezier(p0, p1, p2, n=8):
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def points(*pieces):
    """Points and arrays of points joined into one (n, 2) float array (a polygon or polyline)."""
    return np.concatenate([np.atleast_2d(np.asarray(p, dtype=np.float64)) for p in pieces], axis=0)


def _mirror(pts):
    pts = np.array(pts, dtype=np.float64)
    pts[:, 0] *= -1
    return pts


class _Shape:
    """A garment drawn as polygons plus the places where details go."""

    def __init__(self, kind):
        self.kind = kind
        self.parts = []      # polygons: their union is the garment
        self.shade = []      # (polygon, factor): areas seen darker (inside of the neck, hood)
        self.seams = []      # (polyline, width, factor): seams, hems, pocket outlines, creases
        self.trims = []      # polygons that may take a trim colour (collar, cuffs, bands)
        self.stitches = []   # polylines of top-stitching (jeans)
        self.lines = []      # (polyline, width) structural lines in another colour (zip, strings)
        self.dots = []       # (x, y, r) buttons, rivets
        self.panels = []     # polygons for colour blocks
        self.side = []       # polygons for side stripes
        self.chest = (0.0, 0.35, 0.3, 0.2)  # logo area (cx, cy, w, h)
        self.hanger = None   # ("hook", x, y) or ("clip", x, y, half_width)


def _creases(rng, s, box, n):
    """Folds: a dark line with a lighter ridge beside it."""
    x0, y0, x1, y1 = box
    for _ in range(n):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        ang = rng.uniform(0, math.pi)
        ln = rng.uniform(0.08, 0.3)
        d = np.array([math.cos(ang), math.sin(ang)])
        nrm = np.array([-d[1], d[0]])
        mid = np.array([cx, cy]) + nrm * rng.uniform(-0.04, 0.04)
        line = _bezier(np.array([cx, cy]) - ln * d, mid, np.array([cx, cy]) + ln * d)
        width = rng.uniform(0.008, 0.02)
        s.seams.append((line, width, rng.uniform(0.72, 0.88)))
        s.seams.append((line + nrm * width * 1.2, width, rng.uniform(1.05, 1.15)))


def wobble(rng, poly, amp):
    """Resample a polygon's outline and displace it a little (cloth is not straight)."""
    poly = np.asarray(poly, dtype=np.float64)
    closed = np.vstack([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    out = []
    for i in range(len(poly)):
        k = max(1, int(seg[i] / 0.04))
        t = np.arange(k)[:, None] / k
        out.append(closed[i] + t * (closed[i + 1] - closed[i]))
    pts = np.concatenate(out)
    n = len(pts)
    phase = rng.uniform(0, 2 * math.pi, size=3)
    idx = np.arange(n) / n * 2 * math.pi
    noise = sum(np.sin(f * idx + p) / f for f, p in zip((3.0, 7.0, 13.0), phase))
    noise += rng.normal(0, 0.3, size=n)
    centre = pts.mean(axis=0)
    radial = pts - centre
    radial /= np.maximum(np.hypot(*radial.T)[:, None], 1e-6)
    return pts + radial * (amp * noise)[:, None]


def top_shape(rng, kind):
    """A top of `kind` (one of TOP_CATEGORIES) with random proportions and details."""
    s = _Shape(kind)
    long_sleeves = kind in ("longsleeve", "hoodie", "jacket") or (kind == "shirt" and rng.random() < 0.6)
    half = rng.uniform(0.29, 0.41)
    sh_half = half * rng.uniform(1.0, 1.1)
    y_sh = rng.uniform(0.03, 0.08)
    nw = rng.uniform(0.085, 0.13)
    nd = rng.uniform(0.05, 0.14)
    arm_y = y_sh + rng.uniform(0.19, 0.29)
    hem_half = half * rng.uniform(0.93, 1.07)
    if kind == "shirt":
        hem = arc(0, 0.93, hem_half, 0.07, 0, 180, 9)
    else:
        hem = arc(0, 0.99, hem_half, 0.01, 0, 180, 5)
    back_neck = arc(0, 0, nw, 0.015, 180, 0, 7)
    front_neck = arc(0, 0, nw, nd, 180, 0, 9)
    P2, A = np.array([sh_half, y_sh]), np.array([half, arm_y])
    body = points(back_neck, P2, A, hem, _mirror([A])[0], _mirror([P2])[0])
    s.parts.append(body)
    # sleeves
    if long_sleeves:
        sl = rng.uniform(0.55, 0.85)
        base = rng.uniform(22, 52) if rng.random() < 0.55 else rng.uniform(58, 80)
        end_w = rng.uniform(0.09, 0.15)
    else:
        sl = rng.uniform(0.15, 0.32)
        base = rng.uniform(12, 45)
        end_w = rng.uniform(0.14, 0.23)
    cuff = rng.uniform(0.035, 0.07) if long_sleeves else rng.uniform(0.02, 0.04)
    for sign in (1.0, -1.0):
        a = math.radians(base + rng.uniform(-7, 7))
        d = np.array([sign * math.cos(a), math.sin(a)])
        n = np.array([-sign * math.sin(a), math.cos(a)])
        p2 = np.array([sign * sh_half, y_sh])
        pa = np.array([sign * half, arm_y])
        e1 = p2 + sl * d
        e2 = e1 + end_w * n
        s.parts.append(points(p2, e1, e2, pa))
        s.seams.append((points(p2, pa), 0.006, 0.88))
        s.seams.append((points(pa, e2), 0.008, 0.85))  # sleeve's lower edge over the body
        c1, c2 = e1 - cuff * d, e2 - cuff * d
        s.trims.append(points(c1, e1, e2, c2))
        s.seams.append((points(c1, c2), 0.005, 0.85))
    # neck: the inside of the back shows above the front neckline
    s.shade.append((points(front_neck, back_neck[::-1]), rng.uniform(0.6, 0.8)))
    rib = rng.uniform(0.015, 0.03)
    s.trims.append(points(front_neck, arc(0, 0, nw + rib, nd + rib, 0, 180, 9)))
    s.seams.append((arc(0, 0, nw + rib, nd + rib, 180, 0, 9), 0.005, 0.85))
    hem_band = rng.uniform(0.03, 0.08)
    s.trims.append(points(hem[:, :] - [0, hem_band], hem[::-1]))
    s.seams.append((hem - [0, hem_band], 0.005, 0.86))
    s.chest = (0.0, arm_y + rng.uniform(0.02, 0.18), 2 * half * rng.uniform(0.35, 0.8), rng.uniform(0.12, 0.35))
    s.panels.append(points([-3, arm_y + 0.1], [3, arm_y + 0.1], [3, arm_y + 0.1 + rng.uniform(0.08, 0.2)],
                           [-3, arm_y + 0.1 + 0.14]))
    s.panels.append(points([half * 0.55, arm_y], [half * 1.1, arm_y], [hem_half * 1.1, 1.0], [hem_half * 0.6, 1.0]))
    s.panels.append(points([-half * 1.2, -0.2], [half * 1.2, -0.2], [half * 1.2, y_sh + 0.1],
                           [-half * 1.2, y_sh + 0.1]))
    y_top = 0.0
    if kind == "shirt":
        wing = rng.uniform(0.05, 0.09)
        stand = points(arc(0, 0.0, nw + 0.02, 0.04, 180, 360, 9), arc(0, 0.0, nw, 0.015, 0, 180, 7))
        s.parts.append(stand)
        s.trims.append(stand)
        for sign in (1.0, -1.0):
            w = np.array([[0.005, 0.0], [nw + 0.025, -0.015], [nw + 0.03 + wing * 0.5, 0.04 + wing],
                          [0.01, nd + 0.02]])
            w[:, 0] *= sign
            s.parts.append(w)
            s.trims.append(w)
            s.seams.append((points(w, w[:1]), 0.005, 0.8))
        s.shade = []
        for x in (-0.028, 0.028):
            s.seams.append((points([x, nd + 0.02], [x, 0.98]), 0.004, 0.85))
        for y in np.arange(nd + 0.08, 0.95, rng.uniform(0.1, 0.14)):
            s.dots.append((0.0, float(y), 0.011))
        if rng.random() < 0.5:
            x0, y0 = -half * 0.75, arm_y - 0.02
            s.seams.append((points([x0, y0], [x0 + 0.14, y0], [x0 + 0.14, y0 + 0.15],
                                   [x0 + 0.07, y0 + 0.17], [x0, y0 + 0.15], [x0, y0]), 0.005, 0.85))
        y_top = -0.04
    if kind in ("hoodie", "jacket"):
        hood = kind == "hoodie" or rng.random() < 0.4
        zipped = kind == "jacket" or rng.random() < 0.35
        if hood:
            rx, ry = nw + rng.uniform(0.05, 0.1), rng.uniform(0.13, 0.25)
            outer = arc(0, 0.03, rx, ry, 180, 360, 13)
            s.parts.append(outer)
            inner = points(arc(0, 0.03, nw + 0.005, ry * 0.55, 180, 360, 11), front_neck[::-1])
            s.trims.append(inner)
            s.shade = [(inner, rng.uniform(0.55, 0.75))]
            y_top = 0.03 - ry
            if not zipped or rng.random() < 0.5:
                length = rng.uniform(0.1, 0.25)
                for x in (-0.05, 0.05):
                    s.lines.append((points([x, nd], [x * 1.2, nd + length]), 0.012))
        else:
            collar = points(arc(0, 0.0, nw + 0.025, 0.06, 180, 360, 9), arc(0, 0.0, nw, 0.02, 0, 180, 7))
            s.parts.append(collar)
            s.trims.append(collar)
            y_top = -0.06
        if zipped:
            s.lines.append((points([0.0, nd * 0.6], [0.0, 0.99]), 0.016))
            for sign in (1.0, -1.0):
                s.seams.append((points([sign * half * 0.45, 0.62], [sign * half * 0.7, 0.82]), 0.008, 0.7))
        else:
            kp = points([-0.2, 0.6], [0.2, 0.6], [0.27, 0.88], [-0.27, 0.88], [-0.2, 0.6])
            s.seams.append((kp * [half / 0.38, 1.0], 0.006, 0.82))
    if kind == "tshirt" and rng.random() < 0.25:  # a pocket
        x0, y0 = half * 0.3, arm_y
        s.seams.append((points([x0, y0], [x0 + 0.12, y0], [x0 + 0.12, y0 + 0.13], [x0, y0 + 0.13], [x0, y0]),
                        0.005, 0.85))
    _creases(rng, s, (-half, 0.15, half, 0.95), int(rng.integers(0, 5)))
    s.hanger = ("hook", 0.0, y_top)
    return s


def bottom_shape(rng, kind):
    """A bottom of `kind` (one of BOTTOM_CATEGORIES) with random proportions and details."""
    s = _Shape(kind)
    if kind == "skirt":
        w = 1.0 / (2 * rng.uniform(0.75, 1.8))
        hw = w * rng.uniform(1.02, 1.12)
        y_hip = rng.uniform(0.1, 0.2)
        hh = hw * rng.uniform(1.05, 1.8)
        dip = rng.uniform(0.0, 0.06)
        hem = arc(0, 1.0 - dip, hh, dip, 0, 180, 11)
        s.parts.append(points([-w, 0], [w, 0], [hw, y_hip], hem, [-hw, y_hip]))
        wb = rng.uniform(0.04, 0.09)
        band = points([-w * 1.02, -0.005], [w * 1.02, -0.005], [w * 1.03, wb], [-w * 1.03, wb])
        s.trims.append(band)
        s.seams.append((points([-w, wb], [w, wb]), 0.006, 0.85))
        if rng.random() < 0.35:  # pleats
            for x in np.linspace(-0.8, 0.8, rng.integers(5, 11)):
                s.seams.append((points([x * w, wb], [x * hh, 1.0 - dip * (1 - x * x) * 0.2]), 0.006, 0.82))
        s.side.append(points([-hh * 2, 0.8], [hh * 2, 0.8], [hh * 2, 0.86], [-hh * 2, 0.86]))
        s.panels.append(points([-hh * 2, 0.65], [hh * 2, 0.65], [hh * 2, 1.2], [-hh * 2, 1.2]))
        s.chest = (w * 0.5, 0.3, w * 0.5, 0.12)
        _creases(rng, s, (-hw, 0.15, hw, 0.95), int(rng.integers(0, 4)))
        s.hanger = ("clip", 0.0, 0.0, w)
        return s
    if kind in ("trousers", "jeans"):
        w = 1.0 / (2 * rng.uniform(2.1, 3.0))
        y_c = rng.uniform(0.27, 0.37)
        hw = w * rng.uniform(1.03, 1.18)
        y_hip = rng.uniform(0.12, 0.2)
        ho = hw * rng.uniform(0.62, 1.35)
        lw = rng.uniform(0.09, 0.19)
        jog = kind == "trousers" and rng.random() < 0.3  # sweatpants / joggers
        if jog:
            ho = hw * rng.uniform(0.6, 0.85)
            lw = rng.uniform(0.07, 0.11)
    else:  # shorts
        w = 1.0 / (2 * rng.uniform(1.0, 1.45))
        y_c = rng.uniform(0.45, 0.65)
        hw = w * rng.uniform(1.03, 1.15)
        y_hip = rng.uniform(0.15, 0.3)
        ho = hw * rng.uniform(1.0, 1.22)
        lw = ho * rng.uniform(0.55, 0.8)
        jog = False
    xi = max(ho - lw, 0.02)
    jr, jl = rng.uniform(0, 0.03, size=2)
    s.parts.append(points([-w, 0], [w, 0], [hw, y_hip], [ho, 1 - jr], [xi, 1 - jr], [0, y_c],
                          [-xi, 1 - jl], [-ho, 1 - jl], [-hw, y_hip]))
    wb = rng.uniform(0.035, 0.06) if not jog else rng.uniform(0.06, 0.09)
    s.trims.append(points([-w * 1.02, -0.005], [w * 1.02, -0.005], [w * 1.03, wb], [-w * 1.03, wb]))
    s.seams.append((points([-w, wb], [w, wb]), 0.006, 0.82))
    cuff = rng.uniform(0.03, 0.08)
    for sign, j in ((1.0, jr), (-1.0, jl)):
        o, i = np.array([sign * ho, 1 - j]), np.array([sign * xi, 1 - j])
        top_o = o + (np.array([sign * hw, y_hip]) - o) * cuff / (1 - j - y_hip)
        top_i = i + (np.array([0, y_c]) - i) * cuff / (1 - j - y_c)
        s.trims.append(points(top_o, o, i, top_i))
        s.seams.append((points(top_o, top_i), 0.005, 0.85))
        # a side stripe along the outer seam
        k1, k2 = rng.uniform(0.01, 0.02), rng.uniform(0.03, 0.05)
        outer = np.array([[sign * w, 0], [sign * hw, y_hip], [sign * ho, 1 - j]])
        s.side.append(points(outer - [sign * k1, 0], (outer - [sign * k2, 0])[::-1]))
        s.panels.append(points([sign * 0.0, 1 - j - 0.25], [sign * 2.0, 1 - j - 0.25], [sign * 2.0, 1.2],
                               [0.0, 1.2]))
        # crease down the leg
        if kind != "shorts" and rng.random() < 0.6:
            s.seams.append((points([sign * hw * 0.55, y_hip + 0.05], [sign * (ho + xi) / 2, 1 - j]),
                            0.006, 0.9))
        # front pocket
        if not jog:
            pocket = _bezier([sign * w * 0.45, wb], [sign * w * 0.6, y_hip * 0.9], [sign * hw * 0.98, y_hip + 0.03])
            s.seams.append((pocket, 0.006, 0.8))
            if kind == "jeans":
                s.stitches.append(pocket + [-sign * 0.012, 0.004])
                s.dots.append((sign * w * 0.45, wb + 0.01, 0.008))
                s.dots.append((sign * hw * 0.97, y_hip + 0.025, 0.008))
    if not jog:  # fly
        fly = points([0.05, wb], [0.05, y_c - 0.1], [0.0, y_c - 0.04])
        s.seams.append((fly, 0.006, 0.82))
        if kind == "jeans":
            s.stitches.append(fly + [-0.012, 0])
            s.stitches.append(points([-w, wb - 0.01], [w, wb - 0.01]))
            for sign in (1.0, -1.0):
                s.stitches.append(points([sign * (ho - 0.01), 1 - 0.03], [sign * (xi + 0.01), 1 - 0.03]))
        for x in (-0.8, -0.3, 0.3, 0.8):  # belt loops
            s.seams.append((points([x * w - 0.01, -0.005], [x * w - 0.01, wb + 0.01], [x * w + 0.01, wb + 0.01],
                                   [x * w + 0.01, -0.005]), 0.005, 0.8))
    else:  # drawstring
        for x in (-0.03, 0.03):
            s.lines.append((points([x, wb * 0.6], [x * 1.5, wb + rng.uniform(0.06, 0.12)]), 0.01))
    if kind == "shorts":
        s.chest = (rng.choice([-1.0, 1.0]) * (ho + xi) / 2, 1 - 0.1 - cuff, lw * 0.75, 0.08)
    else:
        s.chest = (rng.choice([-1.0, 1.0]) * w * 0.55, y_hip, w * 0.4, 0.06)
    _creases(rng, s, (-ho, y_hip, ho, 0.95), int(rng.integers(0, 5)))
    s.hanger = ("clip", 0.0, 0.0, w)
    return s
