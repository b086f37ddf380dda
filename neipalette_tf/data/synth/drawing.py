"""Drawing helpers: the garment-to-pixel transform, lines, discs, text masks and noise fields."""

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


class Xf:
    """Garment units -> working-canvas pixels: scale, rotate, translate."""

    def __init__(self, scale, theta_deg, centre_local, centre_px):
        t = math.radians(theta_deg)
        self.scale = scale
        self.theta = theta_deg
        self.m = scale * np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        self.c0 = np.asarray(centre_local, dtype=np.float64)
        self.t = np.asarray(centre_px, dtype=np.float64)

    def __call__(self, pts):
        pts = (np.atleast_2d(np.asarray(pts, dtype=np.float64)) - self.c0) @ self.m.T + self.t
        return [tuple(p) for p in pts.tolist()]

    def px(self, length):
        return max(1, int(round(length * self.scale)))


def polyline(draw, pts, fill, width):
    if len(pts) >= 2:
        draw.line(pts, fill=fill, width=width, joint="curve" if len(pts) > 2 else None)


def disc(draw, centre, r, fill):
    x, y = centre
    draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


@functools.lru_cache(maxsize=64)
def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


_WORDS = ("GAP", "JUST DO IT", "KEEP CALM", "NYC", "SPORT", "CHICAGO", "ORIGINAL", "1987", "LOVE",
          "BROOKLYN", "TEAM", "VIBES", "RUN", "CLUB", "ATHLETIC", "SUMMER", "NO. 7", "CALIFORNIA",
          "BASIC", "WILD", "THE DOCTOR", "EVOLUTION", "OK", "SURF", "AUTHENTIC", "85", "PARIS", "HELLO")


def text_mask(text, height_px, width_px):
    """An 'L' image of the text, about height_px tall and at most width_px wide."""
    ref = _font(32)
    left, top, right, bottom = ref.getbbox(text)
    size = min(height_px * 32.0 / max(bottom - top, 1), width_px * 32.0 / max(right - left, 1))
    size = int(max(6, min(size, 400)))
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(img).text((1 - left, 1 - top), text, fill=255, font=font)
    return img


def smooth_noise(rng, h, w, cells):
    """Low-frequency noise, about N(0, 1), at h x w from a cells grid."""
    cy = max(2, int(round(cells * h / max(h, w))) + 1)
    cx = max(2, int(round(cells * w / max(h, w))) + 1)
    small = Image.fromarray(rng.standard_normal((cy, cx)).astype(np.float32))
    return np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float32)


def grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx / max(h, w), yy / max(h, w)


def waves(rng, xx, yy, n, wavelength, amp):
    """A sum of n random plane waves (folds, wrinkles)."""
    out = np.zeros_like(xx)
    for _ in range(n):
        a = rng.uniform(0, 2 * math.pi)
        lam = rng.uniform(*wavelength)
        out += rng.uniform(*amp) * np.sin(
            2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / lam + rng.uniform(0, 2 * math.pi)
        )
    return out
