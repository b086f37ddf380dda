"""Hard scenes (`synth --hard-scenes SHARE`): small off-centre garments, coloured light, hard shadows, busy backgrounds.

A photo drawn hard (with probability SHARE, from the pair's own hard-scene stream, so every other
photo keeps its pixels) gets one or more CONDITIONS:

- `small`: the garment's bounding box is 25-50 % of the frame height (SMALL_HEIGHT), placed anywhere it
  fits: its position is uniform over the free room on both axes, so it is mostly off-centre.
- `light`: the whole photo, garment and background alike, is lit by a tinted illuminant: per-channel
  gains in linear RGB with unit luminance (`light_gains`), what a phone's auto white balance leaves of
  warm tungsten light (WARM_K), cool shade or overcast daylight (COOL_K) or another mild cast (TINT_C).
- `shadow`: a sharp-edged polygon shadow (a window frame, a person, a wall or door edge) across the
  garment and its background, darkening both by 30-60 % in linear light (SHADOW_DEPTH).
- `busy`: the background is a patterned bed sheet or a plaid/geometric rug (`backgrounds.busy_scene`).

Labels stay the garment's true colours: nothing here changes one garment's hue or saturation alone
(the light tints the whole photo; the shadow darkens in proportion to R, G and B). `scene_text` /
`scene_info_text` are what pairs.csv records per photo (`table.HARD_SCENE_COLUMNS`).
"""

import math

import numpy as np
from PIL import Image, ImageDraw

from neipalette_tf.colour import space

CONDITIONS = ("small", "light", "shadow", "busy")
HARD_CONDITIONS = CONDITIONS  # the name the package exports
EXTRA_CONDITION_P = 0.25  # each condition besides the first one drawn joins it with this probability
SMALL_HEIGHT = (0.25, 0.50)  # garment bounding box / frame height
# What auto white balance leaves of the light, as the colour temperature (kelvin) a white sheet looks on a
# photo balanced for D65: tungsten / warm LED at 2700-3200 K is 160-215 mired from D65, and phones keep a
# fifth to a third of a warm shift on purpose (incomplete adaptation: a lamp-lit room should look warm),
# i.e. a residual of about 4400-5400 K (drawn: 4200-5600 K); shade and overcast sky (7500-12000 K, 20-70
# mired from D65) keep 10-43 mired: 7000-9000 K (the shares kept are an assumption, not a measurement).
# Other casts (a green fluorescent tube, a magenta LED, light bounced off a coloured wall) are mostly
# removed: a mid grey's OKLab chroma 0.008-0.025 in any direction. For scale, a mid grey (linear 0.18) lit
# at 4200 K has OKLab chroma 0.044, at 5600 K 0.014, at 7000 K 0.006, at 9000 K 0.024 (`white_chroma`;
# docs/synthetic_data.md#hard-scenes).
WARM_K = (4200.0, 5600.0)
COOL_K = (7000.0, 9000.0)
TINT_C = (0.008, 0.025)
LIGHT_KINDS = ("warm", "cool", "tint")
LIGHT_P = (0.4, 0.35, 0.25)
SHADOW_DEPTH = (0.30, 0.60)  # share of the light a hard shadow takes away, in linear light
SHADOW_KINDS = ("window", "person", "edge")
SHADOW_P = (0.4, 0.3, 0.3)
SHADOW_GARMENT_SHARE = (0.15, 0.85)  # the share of the garment a hard shadow covers (tried for, up to 12 times)
SHADOW_TRIES = 12

_LUM = np.array([0.2126, 0.7152, 0.0722])
_XYZ_TO_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                         [-0.9692660, 1.8760108, 0.0415560],
                         [0.0556434, -0.2040259, 1.0572252]])
_D65_K = 6504.0


def planckian_xy(kelvin):
    """CIE 1931 (x, y) of a black body at `kelvin` (Kim et al.'s cubic fit, 1667..25000 K)."""
    t = float(kelvin)
    if not 1667.0 <= t <= 25000.0:
        raise ValueError(f"colour temperature must be in 1667..25000 K, got {kelvin!r}")
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def _planck_rgb(kelvin):
    x, y = planckian_xy(kelvin)
    return _XYZ_TO_SRGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])


def kelvin_gains(kelvin):
    """Linear-RGB gains (unit luminance) that make a white look like a black body at `kelvin` does on a
    photo balanced for 6504 K (1, 1, 1 at 6504 K)."""
    g = _planck_rgb(kelvin) / _planck_rgb(_D65_K)
    return g / float(g @ _LUM)


def tint_gains(chroma, hue_deg):
    """Linear-RGB gains (unit luminance) that move a mid grey to OKLab chroma `chroma` at hue `hue_deg`."""
    grey = np.full(3, 0.18)
    L = float(space.srgb_to_oklab(space.linear_to_srgb(grey) * 255.0)[0])
    h = math.radians(hue_deg)
    target = space.oklab_to_srgb(np.array([L, chroma * math.cos(h), chroma * math.sin(h)]))
    g = space.srgb_to_linear(np.asarray(target, dtype=np.float64) / 255.0) / grey
    return g / float(g @ _LUM)


def white_chroma(gains):
    """OKLab chroma of a mid grey lit with `gains` (how strong a cast is)."""
    lab = space.srgb_to_oklab(space.linear_to_srgb(0.18 * np.asarray(gains, dtype=np.float64)) * 255.0)
    return float(math.hypot(lab[1], lab[2]))


def sample_light(rng):
    """A coloured illuminant: {"kind", "kelvin" or "chroma"/"hue", "gains"}."""
    kind = str(rng.choice(LIGHT_KINDS, p=LIGHT_P))
    if kind == "tint":
        chroma, hue = rng.uniform(*TINT_C), rng.uniform(0.0, 360.0)
        return {"kind": kind, "chroma": float(chroma), "hue": float(hue), "gains": tint_gains(chroma, hue)}
    # uniform in mired (1e6 / K): equal steps of what the eye sees as equal shifts
    lo, hi = WARM_K if kind == "warm" else COOL_K
    kelvin = 1e6 / rng.uniform(1e6 / hi, 1e6 / lo)
    return {"kind": kind, "kelvin": float(kelvin), "gains": kelvin_gains(kelvin)}


def sample_hard_scene(rng):
    """The hard conditions of one photo and their parameters (all drawn here, from the hard stream).

    Returns {"conditions": tuple in CONDITIONS order, "small": {...} | None, "light": {...} | None,
    "shadow": {...} | None, "busy": bool, "seed": int (the photo's own draws: shadow shape, busy scene)}.
    """
    first = int(rng.integers(len(CONDITIONS)))
    extra = rng.random(len(CONDITIONS)) < EXTRA_CONDITION_P
    chosen = tuple(c for i, c in enumerate(CONDITIONS) if i == first or extra[i])
    spec = {"conditions": chosen, "small": None, "light": None, "shadow": None, "busy": "busy" in chosen,
            "seed": int(rng.integers(2**31))}
    if "small" in chosen:
        spec["small"] = {"height": float(rng.uniform(*SMALL_HEIGHT)), "at": tuple(float(v) for v in rng.random(2))}
    if "light" in chosen:
        spec["light"] = sample_light(rng)
    if "shadow" in chosen:
        spec["shadow"] = {"kind": str(rng.choice(SHADOW_KINDS, p=SHADOW_P)),
                          "depth": float(rng.uniform(*SHADOW_DEPTH))}
    return spec


# --------------------------------------------------------------------------
# Hard shadows
# --------------------------------------------------------------------------


def _rotate(points, angle, centre):
    c, s = math.cos(angle), math.sin(angle)
    p = np.asarray(points, dtype=np.float64) - centre
    return p @ np.array([[c, s], [-s, c]]) + centre


def _shadow_polygons(rng, kind, w, h, target):
    """Polygons (pixel coordinates on a w x h canvas) of one hard shadow aimed at `target` (x, y).

    window: the light of a window (a skewed quadrilateral cut into panes by its bars) falls on the
    scene; the shadow is everything else (returned as the shadow's complement with `lit=True`).
    person: head, neck and shoulders entering from one edge. edge: a half-plane (a wall or a door).
    Returns (polygons, lit): when lit, the polygons are where the light falls and the rest is shadow.
    """
    d = math.hypot(w, h)
    tx, ty = target
    if kind == "window":
        pw, ph = rng.uniform(0.35, 0.7) * d, rng.uniform(0.35, 0.7) * d
        ang = rng.uniform(-0.6, 0.6)
        skew = rng.uniform(-0.35, 0.35)
        cx, cy = tx + rng.uniform(-0.35, 0.35) * pw, ty + rng.uniform(-0.35, 0.35) * ph
        nx, ny = int(rng.integers(1, 4)), int(rng.integers(1, 3))  # panes across, down
        bar = rng.uniform(0.03, 0.08) * min(pw, ph)
        polys = []
        for i in range(nx):
            for j in range(ny):
                x0 = -pw / 2 + i * pw / nx + bar / 2
                x1 = -pw / 2 + (i + 1) * pw / nx - bar / 2
                y0 = -ph / 2 + j * ph / ny + bar / 2
                y1 = -ph / 2 + (j + 1) * ph / ny - bar / 2
                quad = np.array([[x0 + skew * y0, y0], [x1 + skew * y0, y0],
                                 [x1 + skew * y1, y1], [x0 + skew * y1, y1]])
                polys.append(_rotate(quad + (cx, cy), ang, np.array([cx, cy])))
        return polys, True
    if kind == "person":
        s = rng.uniform(0.25, 0.5) * d  # shoulder width
        ang = rng.uniform(0, 2 * math.pi)  # the direction the person stands in, from the target
        head = np.array([tx, ty]) + rng.uniform(-0.3, 0.3, size=2) * s
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        hr = s * rng.uniform(0.2, 0.26)
        head_poly = np.stack([hr * 0.85 * np.cos(t), hr * np.sin(t)], axis=1)  # x across, y along the body
        neck = np.array([[-0.1 * s, 0.8 * hr], [0.1 * s, 0.8 * hr], [0.12 * s, 1.4 * hr], [-0.12 * s, 1.4 * hr]])
        far = 3.0 * d
        body = np.array([[-0.15 * s, 1.3 * hr], [0.15 * s, 1.3 * hr], [0.5 * s, 1.3 * hr + 0.25 * s],
                         [0.55 * s, far], [-0.55 * s, far], [-0.5 * s, 1.3 * hr + 0.25 * s]])
        # y along the body points away from the head: rotate so it points along `ang`
        rot = ang - math.pi / 2
        return [_rotate(p, rot, np.zeros(2)) + head for p in (head_poly, neck, body)], False
    # edge: a straight shadow line through a point near the target, the shadow on one side
    ang = rng.uniform(0, 2 * math.pi)
    px, py = tx + rng.uniform(-0.15, 0.15) * d, ty + rng.uniform(-0.15, 0.15) * d
    ux, uy = math.cos(ang), math.sin(ang)  # along the line
    nx_, ny_ = -uy, ux  # into the shadow
    far = 3.0 * d
    return [np.array([[px - far * ux, py - far * uy], [px + far * ux, py + far * uy],
                      [px + far * ux + far * nx_, py + far * uy + far * ny_],
                      [px - far * ux + far * nx_, py - far * uy + far * ny_]])], False


def shadow_mask(rng, kind, size, ss, garment):
    """A sharp shadow over a photo: coverage in 0..1 at final size (drawn at `ss` x and box-filtered).

    `garment`: the garment's coverage (float, final size). Shapes are drawn again (up to SHADOW_TRIES)
    until the shadow covers SHADOW_GARMENT_SHARE of the garment and some of the background; the last
    try is kept otherwise. Returns (mask, garment share, background share).
    """
    w, h = size
    gsum = float(garment.sum())
    bg = 1.0 - garment
    bsum = float(bg.sum())
    ys, xs = np.nonzero(garment > 0.5)
    best = None
    for _ in range(SHADOW_TRIES):
        if len(xs):
            k = int(rng.integers(len(xs)))
            target = ((xs[k] + 0.5) * ss, (ys[k] + 0.5) * ss)
        else:
            target = (rng.uniform(0, w) * ss, rng.uniform(0, h) * ss)
        polys, lit = _shadow_polygons(rng, kind, w * ss, h * ss, target)
        img = Image.new("L", (w * ss, h * ss), 0)
        draw = ImageDraw.Draw(img)
        for p in polys:
            draw.polygon([tuple(v) for v in p], fill=255)
        if ss > 1:
            img = img.reduce(ss)
        mask = np.asarray(img, dtype=np.float32) / 255.0
        if lit:
            mask = 1.0 - mask
        g = float((mask * garment).sum()) / max(gsum, 1e-6)
        b = float((mask * bg).sum()) / max(bsum, 1e-6)
        best = (mask, g, b)
        if SHADOW_GARMENT_SHARE[0] <= g <= SHADOW_GARMENT_SHARE[1] and 0.05 <= b <= 0.95:
            break
    return best


# --------------------------------------------------------------------------
# What pairs.csv records
# --------------------------------------------------------------------------


def scene_text(info):
    """pairs.csv's `*_scene`: the hard conditions applied to a photo joined by "+", or "none"."""
    applied = info.get("hard_scene")
    return "+".join(applied["conditions"]) if applied else "none"


def scene_info_text(info):
    """pairs.csv's `*_scene_info`: the photo's background and each applied condition's parameters,
    "key=value" joined by ";" (docs/synthetic_data.md#hard-scenes)."""
    parts = [f"background={info['background']}"]
    applied = info.get("hard_scene")
    if applied:
        if "small" in applied:
            s = applied["small"]
            parts.append(f"small=height {s['height']:.3f},centre {s['centre'][0]:.3f} {s['centre'][1]:.3f}")
        if "light" in applied:
            li = applied["light"]
            what = f"{li['kelvin']:.0f}K" if "kelvin" in li else f"chroma {li['chroma']:.3f} hue {li['hue']:.0f}"
            g = li["gains"]
            parts.append(f"light={li['kind']} {what},gains {g[0]:.3f} {g[1]:.3f} {g[2]:.3f}")
        if "shadow" in applied:
            s = applied["shadow"]
            parts.append(f"shadow={s['kind']},depth {s['depth']:.3f},garment {s['garment']:.3f},"
                         f"background {s['background']:.3f}")
        if "busy" in applied:
            parts.append(f"busy={applied['busy']}")
    return ";".join(parts)
