"""Fuzzing the decode path: random bytes, truncations and bit flips of real
JPEG / PNG / GIF / WebP files fed to `load_image`.

Every input must end in one of two ways: a uint8 `[32, 32, 3]` array, or an
`ImageLoadError` whose message is one line. Any other exception fails the
test (a crash); an example slower than the deadline (5 s, with the pixel
limit at 8 Mpx) fails it (a hang), and a watchdog ends the process if a
decoder never returns.

CI runs a bounded, derandomised number of examples. A longer, random
campaign:

    NEIPALETTE_FUZZ_EXAMPLES=5000 python -m pytest -q tests/core/test_fuzz_images.py --hypothesis-show-statistics

(`--hypothesis-show-statistics` prints, per test, how many inputs decoded
and how many ended in a clean error.)
"""

import faulthandler
import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from neipalette_tf.core.preprocessing import ImageLoadError, load_image

CAMPAIGN = os.environ.get("NEIPALETTE_FUZZ_EXAMPLES")
EXAMPLES = int(CAMPAIGN) if CAMPAIGN else 300
# Decoding time grows with the pixel count that a (corrupted) header claims, up to
# the pixel limit: a JPEG header turned into 55088 x 174 px by a 2-byte overwrite
# takes 0.7 s. The fuzz test uses a lower limit so that the deadline means "hang".
MAX_PIXELS = 8_000_000
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize=not CAMPAIGN, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SIZE = 32


def _photo(w, h, seed):
    """A photo-like image: smooth gradients, an edge and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w * 255, y / h * 200, (x + y) / (w + h) * 255], axis=-1)
    base[h // 3 : h // 2, w // 4 : w // 2] = (200, 30, 40)
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))


def _encode(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _seeds():
    photo = _photo(48, 36, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(48, dtype=np.uint8) * 5, (36, 1))))
    frames = [_photo(24, 24, 1).convert("P"), _photo(24, 24, 2).convert("P")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    return [
        _encode(photo, "JPEG", quality=85),
        _encode(photo, "JPEG", quality=70, progressive=True, exif=exif),
        _encode(photo.convert("CMYK"), "JPEG"),
        _encode(photo, "PNG"),
        _encode(rgba, "PNG"),
        _encode(photo.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG"),
        _encode(Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257)), "PNG"),
        gif.getvalue(),
        _encode(photo, "WEBP", quality=80),
    ]


SEEDS = _seeds()


def _check(data, record=True):
    try:
        x = load_image(data, SIZE, max_pixels=MAX_PIXELS)
    except ImageLoadError as e:
        assert "\n" not in str(e) and str(e).startswith("<bytes>: "), repr(str(e))
        if record:
            event("clean ImageLoadError")
        return "error"
    assert isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.shape == (SIZE, SIZE, 3)
    if record:
        event("decoded to uint8 [32, 32, 3]")
    return "image"


@pytest.fixture(autouse=True)
def watchdog():
    """A decoder stuck in C code cannot be interrupted: end the process with a traceback instead."""
    faulthandler.dump_traceback_later(max(120, EXAMPLES * 3), exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def test_seeds_decode():
    assert [_check(s, record=False) for s in SEEDS] == ["image"] * len(SEEDS)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    _check(data)


@FUZZ
@given(st.sampled_from(range(len(SEEDS))), st.floats(0, 1, exclude_max=True), st.binary(max_size=8))
def test_truncations(index, fraction, tail):
    seed = SEEDS[index]
    _check(seed[: int(fraction * len(seed))] + tail)


@FUZZ
@given(st.sampled_from(range(len(SEEDS))),
       st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=16))
def test_bit_flips(index, flips):
    data = bytearray(SEEDS[index])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    _check(bytes(data))


@FUZZ
@given(st.sampled_from(range(len(SEEDS))), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=64))
def test_overwritten_spans(index, where, patch):
    data = bytearray(SEEDS[index])
    start = int(where * len(data))
    data[start : start + len(patch)] = patch
    _check(bytes(data))
