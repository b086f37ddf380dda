"""Rendering: one garment photo (JPEG bytes and info) and one top/bottom pair."""

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from neipalette_tf.colour.harmony import NEUTRAL_ZONES
from neipalette_tf.data.synth import hard as hard_scenes_
from neipalette_tf.data.synth.backgrounds import (
    ASPECTS,
    busy_scene,
    busy_text,
    draw_background,
    draw_object,
    sample_scene,
)
from neipalette_tf.data.synth.colours import (
    LUM,
    quantise,
    sample_pair_colours,
    sample_people_pair_colours,
    to_linear,
    to_srgb,
)
from neipalette_tf.data.synth import patterns
from neipalette_tf.data.synth.drawing import Xf, grid, polyline, smooth_noise, waves
from neipalette_tf.data.synth.prints import (
    MAX_PRINT_FRACTION,
    PRINT_P,
    Printer,
    draw_details,
    draw_hanger,
    draw_prints,
    hanger_colour,
)
from neipalette_tf.data.synth.shapes import (
    TOP_CATEGORIES,
    TOP_CATEGORY_P,
    bottom_shape,
    top_shape,
    wobble,
)

JPEG_QUALITY = (70, 95)
JPEG_SUBSAMPLING = 2  # 4:2:0, like phone cameras
GLOBAL_LIGHT_RANGE = (0.85, 1.15)  # lighting factor allowed on the garment (linear light)
WHITE_BALANCE_SHIFT = 0.006  # per-channel gain, +-, in linear light

# --------------------------------------------------------------------------
# One photo
# --------------------------------------------------------------------------


def canvas_size(aspect, image_size):
    """(width, height) of a photo: the long side is image_size."""
    aw, ah = ASPECTS[aspect]
    if aw <= ah:
        return max(8, int(round(image_size * aw / ah))), image_size
    return image_size, max(8, int(round(image_size * ah / aw)))


def supersampling(image_size):
    """How many times larger the working canvas is drawn: round(384 / image_size), clamped to 1..3."""
    return int(max(1, min(3, round(384 / image_size))))


def render_garment(rng, main_rgb, category, image_size, scene=None, prints=True, with_masks=False, pattern=None,
                   hard=None):
    """Render one garment photo; returns a dict with the JPEG bytes and info.

    Args:
        rng: numpy Generator (all randomness of this photo).
        main_rgb: the main colour as an 8-bit sRGB tuple.
        category: one of TOP_CATEGORIES or BOTTOM_CATEGORIES.
        image_size: the long side in pixels.
        scene: a `sample_scene` dict (shared by the two photos of a pair
            sometimes); drawn from rng when None.
        prints: False renders no prints, trims or details in other colours.
        with_masks: also return `alpha` (garment coverage per final pixel,
            uint8) and `print_alpha` (prints and details in other colours).
        pattern: a `patterns.sample_pattern` dict: a multi-colour garment (no prints or
            details in other colours); `info["palette"]` records each colour (OKLCH, the main
            colour first) and its exact share of the garment.
        hard: a `hard.sample_hard_scene` dict: a hard scene (small and off-centre, coloured light, a hard
            shadow, a busy background); `info["hard_scene"]` records what was applied. The garment's own
            draws from rng stay the same, so without `busy` it is the same garment in the same scene;
            None: the photo as without hard scenes, the same pixels.
    """
    scene = scene if scene is not None else sample_scene(rng)
    applied = None
    if hard is not None:
        hr = np.random.default_rng(hard["seed"])  # this photo's own hard draws (the same on every re-render)
        applied = {"conditions": list(hard["conditions"])}
        if hard["busy"]:
            scene = busy_scene(hr, scene)
            applied["busy"] = busy_text(scene)
    small = hard["small"] if hard is not None else None
    W, H = canvas_size(scene["aspect"], image_size)
    ss = supersampling(image_size)
    Ww, Hw = W * ss, H * ss
    top = category in TOP_CATEGORIES
    shape = top_shape(rng, category) if top else bottom_shape(rng, category)
    hanging = scene["hanging"]

    # placement: scale, rotation, position
    pts = np.concatenate(shape.parts)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    bw, bh = hi - lo
    hook = 0.16 if hanging else 0.0
    hf = rng.uniform(0.5, 0.8) if hanging else rng.uniform(0.5, 0.9)
    if small is None:
        scale = min(hf * Hw / (bh + hook), rng.uniform(0.85, 1.0) * Ww / bw)
        if rng.random() < 0.1:  # a little cut off by the frame
            scale *= rng.uniform(1.0, 1.12)
    else:  # the draws all the same (the garment's other draws stay as they were); the scale below
        width_share = rng.uniform(0.85, 1.0)
        if rng.random() < 0.1:
            rng.uniform(1.0, 1.12)
    theta = rng.uniform(-3, 3) if hanging else rng.uniform(-12, 12)
    centre = (lo + hi) / 2
    if small is not None:  # the rotated garment's box `height` of the frame (less where the frame is narrow)
        unit = np.array(Xf(1.0, theta, centre, (0, 0))(pts))
        ext = unit.max(axis=0) - unit.min(axis=0)
        scale = min(small["height"] * Hw / ext[1], width_share * Ww / ext[0])
    q = np.array(Xf(scale, theta, centre, (0, 0))(pts))
    qlo, qhi = q.min(axis=0), q.max(axis=0)
    free = np.maximum(np.array([Ww, Hw]) - (qhi - qlo), 0)
    cx = Ww / 2 + rng.uniform(-0.4, 0.4) * free[0]
    if hanging:
        top_px = hook * scale + rng.uniform(0.01, 0.08) * Hw
        cy = top_px + (qhi[1] - qlo[1]) / 2
    else:
        cy = Hw / 2 + rng.uniform(-0.4, 0.4) * free[1]
    if small is not None:  # anywhere it fits: uniform over the free room on both axes
        fx, fy = small["at"]
        cx = Ww / 2 + (fx - 0.5) * free[0]
        if hanging:
            room = max(Hw - hook * scale - (qhi[1] - qlo[1]), 0.0)
            cy = hook * scale + fy * room + (qhi[1] - qlo[1]) / 2
        else:
            cy = Hw / 2 + (fy - 0.5) * free[1]
        applied["small"] = {"height": float((qhi[1] - qlo[1]) / Hw), "centre": (float(cx / Ww), float(cy / Hw))}
    xf = Xf(scale, theta, centre, (cx - (qlo[0] + qhi[0]) / 2, cy - (qlo[1] + qhi[1]) / 2))

    # working canvas: background, objects, hanger, garment, prints
    canvas, bfield = draw_background(rng, scene, (Ww, Hw), (W, H))
    draw = ImageDraw.Draw(canvas)
    if not hanging and rng.random() < 0.1:
        draw_object(rng, draw, (Ww, Hw))
    hanger_col = hanger_colour(rng)
    if hanging:
        draw_hanger(draw, shape, xf, hanger_col, front=False)
    gmask = Image.new("L", (Ww, Hw), 0)
    gdraw = ImageDraw.Draw(gmask)
    amp = rng.uniform(0.001, 0.006)
    for part in shape.parts:
        gdraw.polygon(xf(wobble(rng, part, amp)), fill=255)
    canvas.paste(tuple(main_rgb), mask=gmask)
    label = patterns.paint(canvas, gmask, pattern, ss) if pattern is not None else None
    if pattern is not None:
        prints = False
    lines = Image.new("L", (Ww, Hw), 200)  # 200 = unchanged lightness
    ldraw = ImageDraw.Draw(lines)
    for poly, f in shape.shade:
        ldraw.polygon(xf(poly), fill=int(200 * f))
    for pl, width, f in shape.seams:
        polyline(ldraw, xf(pl), int(200 * f), xf.px(width))
    printer = Printer(canvas, gmask, MAX_PRINT_FRACTION)
    draw_details(rng, shape, xf, printer, ldraw, prints)
    style = "none"
    if prints and rng.random() < PRINT_P:
        style = draw_prints(rng, shape, xf, printer, top)
    if hanging and shape.hanger[0] == "clip":
        draw_hanger(draw, shape, xf, hanger_col, front=True)
        draw_hanger(gdraw, shape, xf, 0, front=True)
    palette_shares = patterns.shares(label, gmask, ss, len(pattern["colours"])) if pattern is not None else None

    # down to the final size (box filter = antialiasing), then light in linear RGB
    if ss > 1:
        canvas, gmask, lines = canvas.reduce(ss), gmask.reduce(ss), lines.reduce(ss)
    alpha = np.asarray(gmask, dtype=np.float32) / 255.0
    xx, yy = grid(H, W)
    unit = scale / ss / max(H, W)  # one garment unit in normalised coordinates
    G = 1.0 + rng.uniform(0.02, 0.07) * smooth_noise(rng, H, W, 4)
    G += waves(rng, xx / unit, yy / unit, int(rng.integers(2, 6)), (0.1, 0.5), (0.015, 0.07))
    edge = gmask.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 2.0) * max(H, W) / 96))
    G *= 1.0 - rng.uniform(0.1, 0.35) * (1.0 - np.asarray(edge, dtype=np.float32) / 255.0)
    G += rng.uniform(0.004, 0.03) * rng.standard_normal((H, W)).astype(np.float32)
    if rng.random() < 0.4 or category == "jeans":  # knit / twill
        period = rng.uniform(2.0, 4.0) / max(H, W)
        direction = rng.uniform(0, math.pi)
        along = xx * math.cos(direction) + yy * math.sin(direction)
        G += rng.uniform(0.01, 0.04) * np.sin(2 * math.pi * along / period)
    G *= np.asarray(lines.filter(ImageFilter.GaussianBlur(0.35 * max(H, W) / 96)), dtype=np.float32) / 200.0
    inside = alpha > 0.99
    if np.count_nonzero(inside) >= 4:
        G /= np.median(G[inside])
    G = np.clip(G, 0.55, 1.25)
    shadow = 1.0
    if rng.random() < 0.55:
        off = rng.normal(0, 0.012, size=2) * max(W, H) + (np.array([0.0, 0.02]) * max(W, H) if hanging else 0.0)
        sh = Image.new("L", (W, H), 0)
        sh.paste(gmask, (int(round(off[0])), int(round(off[1]))))
        sh = sh.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 4.0) * max(H, W) / 96))
        shadow = 1.0 - rng.uniform(0.15, 0.45) * np.asarray(sh, dtype=np.float32) / 255.0

    lin = to_linear(np.asarray(canvas))
    lin = lin * (alpha * G + (1.0 - alpha) * bfield * shadow)[..., None]
    hard_shadow = None
    if hard is not None and hard["shadow"] is not None:  # the scene's light: the whole photo, garment too
        s = hard["shadow"]
        hard_shadow, on_garment, on_background = hard_scenes_.shadow_mask(hr, s["kind"], (W, H), ss, alpha)
        lin = lin * (1.0 - s["depth"] * hard_shadow)[..., None].astype(np.float32)
        applied["shadow"] = {**s, "garment": on_garment, "background": on_background}
    if hard is not None and hard["light"] is not None:
        lin = lin * np.asarray(hard["light"]["gains"], dtype=np.float32)
        applied["light"] = hard["light"]
    Y = np.maximum(lin @ LUM, 1e-3)
    vignette = 1.0 - rng.uniform(0.0, 0.3) * ((xx - 0.5 * W / max(H, W)) ** 2 + (yy - 0.5 * H / max(H, W)) ** 2) / 0.5
    F = rng.uniform(0.88, 1.12) * vignette * np.power(Y / 0.18, rng.uniform(-0.08, 0.08))
    F = alpha * np.clip(F, *GLOBAL_LIGHT_RANGE) + (1.0 - alpha) * F
    wb = 1.0 + rng.uniform(-WHITE_BALANCE_SHIFT, WHITE_BALANCE_SHIFT, size=3).astype(np.float32)
    wb /= float(wb @ LUM)
    lin = lin * F[..., None] * wb
    lin /= np.maximum(lin.max(axis=-1, keepdims=True), 1.0)  # keep hue where it overflows
    out = to_srgb(lin)
    out += rng.normal(0, rng.uniform(0.3, 1.8), size=out.shape)
    img = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
    u = rng.random()
    if u < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.25, 0.55) * max(H, W) / 96))
    elif u < 0.4:
        img = img.filter(ImageFilter.UnsharpMask(radius=1, percent=int(rng.integers(30, 90)), threshold=2))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
             subsampling=JPEG_SUBSAMPLING, optimize=False)
    result = {
        "jpeg": buf.getvalue(),
        "size": (W, H),
        "info": {
            "category": category,
            "aspect": scene["aspect"],
            "background": scene["kind"] + (f"/{scene['style']}" if "style" in scene else ""),
            "hanging": hanging,
            "print_style": style,
            "print_fraction": float(printer.fraction),
            "pattern": pattern["kind"] if pattern is not None else "none",
        },
    }
    if pattern is not None:
        result["info"]["palette_shares"] = palette_shares
    if applied is not None:
        result["info"]["hard_scene"] = applied
    if with_masks:
        acc = Image.fromarray(printer.acc.astype(np.uint8) * 255)
        result["alpha"] = np.asarray(gmask, dtype=np.uint8)
        result["print_alpha"] = np.asarray(acc.reduce(ss) if ss > 1 else acc, dtype=np.uint8)
        if hard_shadow is not None:
            result["shadow_alpha"] = np.round(hard_shadow * 255).astype(np.uint8)
    return result


# --------------------------------------------------------------------------
# One pair
# --------------------------------------------------------------------------


def _pair_rngs(seed, index):
    """Independent generators for the colours, the top, the bottom and the scene."""
    children = np.random.SeedSequence([int(seed), int(index)]).spawn(4)
    return [np.random.default_rng(c) for c in children]


def _choose_categories(rng, bottom_lch):
    top = str(rng.choice(TOP_CATEGORIES, p=TOP_CATEGORY_P))
    low, high, below = NEUTRAL_ZONES["navy_denim"]
    denim_like = low <= bottom_lch[2] <= high and bottom_lch[1] < below + 0.03
    if rng.random() < (0.45 if denim_like else 0.12):
        return top, "jeans"
    return top, str(rng.choice(["trousers", "shorts", "skirt"], p=[0.45, 0.28, 0.27]))


def _palette(lch, info):
    """[(OKLCH, share)] of a rendered garment, main colour first (a plain garment: its main colour, 1.0)."""
    if "palette_shares" not in info:
        return [(tuple(lch), 1.0)]
    return list(zip(info["palette_colours"], info["palette_shares"]))


def _outfit_rating(top, bottom):
    """People's rating of the outfit palette: both garments' colours, each weighing half its share."""
    from neipalette_tf.colour import people
    from neipalette_tf.colour.space import oklch_to_oklab

    labs = oklch_to_oklab(np.array([c for c, _ in top + bottom]))
    weights = np.array([0.5 * s for _, s in top + bottom])
    return people.default().palette_rating(labs, weights)


PATTERN_TRIES = 4  # patterns tried per pair before its garments are rendered plain


def _render_multicolour(rng, tops, bottoms, top, bottom, multicolour, harmony, harmonious_target, rating, render):
    """Render a pair whose garments may be multi-colour (each with probability `multicolour`).

    People labels: the outfit palette's rating must stay on the target's side of the threshold by
    the sampling margin (else another pattern, and after PATTERN_TRIES plain garments). Rule v1:
    each garment's main colour must keep >= patterns.RULE_MIN_DOMINANT of it. Returns
    (top render, bottom render, rating).
    """
    from neipalette_tf.colour import people
    from neipalette_tf.data.synth.colours import PEOPLE_MARGIN

    for _ in range(PATTERN_TRIES):
        specs = [patterns.sample_pattern(rng, lch, harmony) if rng.random() < multicolour else None
                 for lch in (top, bottom)]
        if specs == [None, None]:
            break
        states = [r.bit_generator.state for r in (tops, bottoms)]
        out = [render(r, lch, spec) for r, lch, spec in zip((tops, bottoms), (top, bottom), specs)]
        palettes = [_palette(lch, o["info"]) for lch, o in zip((top, bottom), out)]
        if harmony == "people":
            r = _outfit_rating(*palettes)
            t = people.RATING_THRESHOLD
            ok = (r >= t + PEOPLE_MARGIN) if harmonious_target else (r <= t - PEOPLE_MARGIN)
        else:
            r, ok = rating, all(p[0][1] >= patterns.RULE_MIN_DOMINANT for p in palettes)
        if ok:
            return out[0], out[1], r
        for g, state in zip((tops, bottoms), states):  # the same garments, plain, if no pattern fits
            g.bit_generator.state = state
    return render(tops, top, None), render(bottoms, bottom, None), rating


def render_pair(seed, index, image_size, harmonious_target, hue_margin=5.0, chroma_margin=0.012,
                prints=True, with_masks=False, harmony="rule-v1", multicolour=0.0, hard_scenes=0.0):
    """Everything about pair `index` of a data set with this seed.

    Returns a dict: `top_lch`, `bottom_lch` (main colours, OKLCH), `reason`
    (why the pair has its label), `rating` (people's predicted rating of the main colours for
    `harmony="people"`, whose labels it decides; else None), `top_category`, `bottom_category`,
    and `top` / `bottom`: the `render_garment` results; `top_palette` / `bottom_palette`:
    [(OKLCH, share)], the main colour first.

    `multicolour`: the share of garments drawn multi-colour (`patterns`; 0: the data set as
    before, the same pixels). Their pairs' labels: people's rating of the outfit palette (shares
    as weights) for people labels; the main colour, kept >= 70 % of each garment, for rule v1.

    `hard_scenes`: the share of photos drawn as hard scenes (`hard`; 0: the data set as before, the
    same pixels). Each photo's draw and conditions come from the pair's own hard-scene stream, so a
    photo hard at a share stays hard, with the same conditions, at every larger share. Labels and
    recorded colours are the garment's own.
    """
    rc, rt, rb, rs = _pair_rngs(seed, index)
    rating = None
    if harmony == "people":
        top, bottom, reason, rating = sample_people_pair_colours(rc, harmonious_target, hue_margin=hue_margin,
                                                                 chroma_margin=chroma_margin)
    else:
        top, bottom, reason = sample_pair_colours(rc, harmonious_target, hue_margin, chroma_margin)
    top_cat, bottom_cat = _choose_categories(rc, bottom)
    scene = sample_scene(rs) if rs.random() < 0.3 else None  # both photos in the same place
    cats = {id(rt): top_cat, id(rb): bottom_cat}
    hards = {id(rt): None, id(rb): None}
    if hard_scenes > 0:
        rh = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 2]))  # hard scenes' own
        for g in (rt, rb):
            drawn = rh.random() < hard_scenes
            spec = hard_scenes_.sample_hard_scene(rh)  # drawn either way: the same conditions at any share
            hards[id(g)] = spec if drawn else None

    def render(rng, lch, pattern):
        out = render_garment(rng, quantise(lch)[0], cats[id(rng)], image_size, scene, prints, with_masks, pattern,
                             hards[id(rng)])
        if pattern is not None:
            out["info"]["palette_colours"] = [tuple(lch)] + [tuple(c) for c in pattern["colours"]]
        return out

    if multicolour > 0:
        rp = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))  # patterns' own
        top_render, bottom_render, rating = _render_multicolour(rp, rt, rb, top, bottom, multicolour, harmony,
                                                                harmonious_target, rating, render)
    else:
        top_render, bottom_render = render(rt, top, None), render(rb, bottom, None)
    return {
        "top_lch": top,
        "bottom_lch": bottom,
        "reason": reason,
        "rating": rating,
        "top_category": top_cat,
        "bottom_category": bottom_cat,
        "top": top_render,
        "bottom": bottom_render,
        "top_palette": _palette(top, top_render["info"]),
        "bottom_palette": _palette(bottom, bottom_render["info"]),
    }
