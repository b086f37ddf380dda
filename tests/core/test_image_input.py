"""Bad and unusual image files: each loads correctly (pixels checked) or fails
with one line naming the file and the reason (`ImageLoadError`)."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from neipalette_tf.core.preprocessing import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    load_image,
)

RED, BLUE, GREEN = (220, 20, 30), (20, 40, 220), (10, 200, 30)


def _save(path, image, fmt=None, **kw):
    image.save(path, format=fmt, **kw)
    return path


def _halves(size, top, bottom, mode="RGB"):
    """A `size` (w, h) image, upper half `top`, lower half `bottom`."""
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2], arr[h // 2 :] = top, bottom
    return Image.fromarray(arr).convert(mode)


def _close(pixel, expected, tol=6):
    assert np.abs(np.asarray(pixel, int) - np.asarray(expected, int)).max() <= tol, (pixel.tolist(), expected)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width, height, bit_depth, colour_type, raw_rows):
    """A PNG written by hand (16-bit colour, or a header that lies about the size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw_rows))
            + _png_chunk(b"IEND", b""))


def _fails(path, *words):
    with pytest.raises(ImageLoadError) as e:
        load_image(path, 32)
    message = str(e.value)
    assert "\n" not in message and str(path) in message, message
    for word in words:
        assert word in message, message
    return message


# --- files that cannot be used: one line naming the file -------------------------------------


def test_truncated_jpeg_and_png(tmp_path):
    for fmt, suffix in (("JPEG", "jpg"), ("PNG", "png")):
        buf = io.BytesIO()
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
        path = tmp_path / f"cut.{suffix}"
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        _fails(path, "truncated")


def test_zero_byte_file_text_file_folder_and_missing_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _fails(tmp_path / "empty.jpg", "empty file (0 bytes)")
    (tmp_path / "notes.jpg").write_text("this is a shopping list, not a photo\n")
    _fails(tmp_path / "notes.jpg", "not a supported image")
    (tmp_path / "pbm.jpg").write_text("P1\n2 2\n0 1 1 0\n")  # netpbm text: not a photo format
    _fails(tmp_path / "pbm.jpg", "not a supported image")
    (tmp_path / "folder.jpg").mkdir()
    _fails(tmp_path / "folder.jpg", "is a folder")
    _fails(tmp_path / "missing.jpg", "file not found")


def test_decompression_bomb_refused_before_decoding(tmp_path, monkeypatch):
    # Headers that claim a huge image; no pixel data is ever decoded.
    huge = tmp_path / "bomb.png"
    huge.write_bytes(_png(20000, 20000, 8, 2, b"\0"))  # 400 Mpx: beyond Pillow's own hard limit too
    _fails(huge, "decompression bomb")
    above = tmp_path / "above.png"
    above.write_bytes(_png(11000, 11000, 8, 2, b"\0"))  # 121 Mpx > our default 120 Mpx
    assert 11000 * 11000 > DEFAULT_MAX_PIXELS
    _fails(above, "above the limit of 120000000")
    # The limit is configurable: per call and through NEIPALETTE_MAX_PIXELS.
    small = _save(tmp_path / "small.png", Image.new("RGB", (40, 40), GREEN))
    with pytest.raises(ImageLoadError, match="1600 pixels is above the limit of 1000"):
        load_image(small, 32, max_pixels=1000)
    monkeypatch.setenv("NEIPALETTE_MAX_PIXELS", "1000")
    _fails(small, "above the limit of 1000")
    monkeypatch.setenv("NEIPALETTE_MAX_PIXELS", "2000")
    _close(load_image(small, 32)[16, 16], GREEN, 0)


# --- files that load: the pixels are checked ------------------------------------------------


def test_png_with_alpha_is_composited_on_white(tmp_path):
    arr = np.zeros((20, 20, 4), np.uint8)
    arr[:10] = (255, 0, 0, 0)  # fully transparent red -> white
    arr[10:] = (0, 0, 255, 128)  # half-transparent blue -> light blue
    x = load_image(_save(tmp_path / "a.png", Image.fromarray(arr, "RGBA")), 20)
    _close(x[2, 10], (255, 255, 255), 0)
    _close(x[17, 10], (127, 127, 255), 1)


def test_grayscale_and_palette_pngs(tmp_path):
    _close(load_image(_save(tmp_path / "g.png", Image.new("L", (12, 12), 77)), 16)[8, 8], (77, 77, 77), 0)
    la = Image.new("LA", (12, 12), (0, 0))  # transparent black -> white
    _close(load_image(_save(tmp_path / "la.png", la), 16)[8, 8], (255, 255, 255), 0)
    palette = _halves((16, 16), RED, BLUE).convert("P", palette=Image.ADAPTIVE, colors=4)
    x = load_image(_save(tmp_path / "p.png", palette), 16)
    _close(x[2, 8], RED, 2)
    _close(x[13, 8], BLUE, 2)
    transparent = Image.new("P", (16, 16), 1)
    transparent.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    x = load_image(_save(tmp_path / "pt.png", transparent, transparency=1), 16)
    _close(x[8, 8], (255, 255, 255), 0)


def test_16_bit_pngs(tmp_path):
    gray = Image.fromarray(np.full((10, 10), 32896, np.uint16))  # 32896 / 65535 * 255 = 128
    path = _save(tmp_path / "g16.png", gray)
    assert Image.open(path).mode.startswith("I;16")
    _close(load_image(path, 16)[8, 8], (128, 128, 128), 0)
    dark = _save(tmp_path / "dark16.png", Image.fromarray(np.full((10, 10), 200, np.uint16)))
    _close(load_image(dark, 16)[8, 8], (1, 1, 1), 0)  # 200 of 65535 is nearly black, not 200 of 255
    rgb = np.full((6, 6, 3), [65535, 32768, 0], np.uint16)
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb)
    (tmp_path / "rgb16.png").write_bytes(_png(6, 6, 16, 2, raw))
    _close(load_image(tmp_path / "rgb16.png", 16)[8, 8], (255, 128, 0), 1)


def test_cmyk_jpeg(tmp_path):
    path = _save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95)
    assert Image.open(path).mode == "CMYK"
    _close(load_image(path, 16)[8, 8], (255, 0, 0), 3)


@pytest.mark.parametrize("fmt,suffix,kw", [("WEBP", "webp", {"lossless": True}), ("BMP", "bmp", {}),
                                           ("TIFF", "tif", {})])
def test_webp_bmp_tiff(tmp_path, fmt, suffix, kw):
    x = load_image(_save(tmp_path / f"x.{suffix}", _halves((16, 16), RED, BLUE), fmt, **kw), 16)
    _close(x[3, 8], RED, 0)
    _close(x[12, 8], BLUE, 0)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 2
    _close(load_image(path, 16)[8, 8], (255, 0, 0), 0)


def test_mpo_camera_jpeg_first_image(tmp_path):
    # Some cameras and phones save multi-picture JPEGs (MPO); Pillow opens them as JPEG's variant.
    path = tmp_path / "camera.jpg"
    Image.new("RGB", (20, 20), RED).save(path, "MPO", save_all=True, append_images=[Image.new("RGB", (20, 20), BLUE)])
    assert Image.open(path).format == "MPO"
    _close(load_image(path, 16)[8, 8], RED)


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_rotated_phone_photo_is_upright(tmp_path, orientation):
    # The sensor stores a landscape frame; EXIF says how to turn it. Stored:
    # left half red, right half blue (40 wide, 20 high).
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20], arr[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path / "phone.jpg", Image.fromarray(arr), "JPEG", exif=exif, quality=95)
    x = load_image(path, 40)
    if orientation == 6:  # rotate 90 degrees clockwise: portrait, the left (red) half on top
        _close(x[5, 20], RED)
        _close(x[35, 20], BLUE)
        _close(x[20, 2], x[20, 37], 0)  # padded left and right: the frame is portrait
    elif orientation == 8:  # counter-clockwise: the left (red) half at the bottom
        _close(x[5, 20], BLUE)
        _close(x[35, 20], RED)
    else:  # 180 degrees: landscape, red on the right
        _close(x[20, 5], BLUE)
        _close(x[20, 35], RED)


def test_corrupt_exif_is_ignored_not_fatal(tmp_path):
    path = _save(tmp_path / "x.jpg", Image.new("RGB", (16, 16), GREEN), "JPEG", exif=b"Exif\x00\x00II*\x00garbage",
                 quality=95)
    _close(load_image(path, 16)[8, 8], GREEN)


def test_tiny_8x8_image(tmp_path):
    x = load_image(_save(tmp_path / "tiny.png", _halves((8, 8), RED, BLUE)), 32)
    assert x.shape == (32, 32, 3) and x.dtype == np.uint8
    _close(x[4, 16], RED, 0)
    _close(x[28, 16], BLUE, 0)


@pytest.fixture(scope="module")
def huge_jpeg(tmp_path_factory):
    """A 12000 x 9000 JPEG (108 Mpx): upper half red, lower half blue."""
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"
    image = Image.new("RGB", (12000, 9000), RED)
    image.paste(BLUE, (0, 4500, 12000, 9000))
    image.save(path, quality=90)
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from /proc (Linux)")
def test_very_large_jpeg_decodes_with_bounded_memory(huge_jpeg):
    # In a fresh process, so that its peak memory is the decode's alone: a
    # full decode would need 12000 * 9000 * 3 = 324 MB for the pixels.
    script = (
        "import json, sys; from neipalette_tf.core.preprocessing import load_image; "
        "x = load_image(sys.argv[1], 64); "
        "peak = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]; "
        "print(json.dumps([x[10, 32].tolist(), x[54, 32].tolist(), peak]))"
    )  # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork + exec
    done = subprocess.run([sys.executable, "-c", script, str(huge_jpeg)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0, done.stderr
    top, bottom, peak_kb = json.loads(done.stdout.strip().splitlines()[-1])
    _close(np.array(top), RED)
    _close(np.array(bottom), BLUE)
    assert peak_kb < 200_000, f"peak memory {peak_kb // 1024} MB"
    # The decoder itself works at 1/8 scale (JPEG draft mode).
    with Image.open(huge_jpeg) as image:
        image.draft("RGB", (256, 256))
        assert image.size == (1500, 1125)
