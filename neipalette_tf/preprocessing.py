"""The one image preprocessing function of NeiPalette.

`load_image` turns a file (or its bytes) into the model's input: an RGB
uint8 array `[size, size, 3]`. Training, evaluation, prediction, export
calibration and the TensorFlow-free runtime all call it; the model itself
does the rest (normalisation lives inside the model, see
`neipalette_tf.models.preprocessor`).

Choice: **pad, don't crop.** The whole garment stays in view. The image is
scaled so that its longer side equals `size` (aspect ratio kept) and the
shorter side is padded symmetrically with the mean colour of the image's
border, so the padding continues the background rather than adding a new
colour. Resampling is bilinear with antialiasing (PIL `BILINEAR` with
`reducing_gap`), the same everywhere.

Handled: EXIF orientation (portrait phone photos stay upright), alpha
(composited on white), grayscale / palette / 16-bit / CMYK modes, every
format Pillow reads (JPEG, PNG, WebP, BMP, GIF first frame, TIFF, ...), and
HEIC/HEIF when `pillow-heif` is installed. Images above `max_pixels` are
refused before decoding (decompression bombs); large JPEGs are decoded
at reduced scale (`draft`) so memory stays bounded.

This module imports NumPy and Pillow only.

Example:

>>> import numpy as np
>>> from PIL import Image
>>> import io
>>> buf = io.BytesIO()
>>> Image.new("RGB", (40, 20), (200, 10, 10)).save(buf, format="PNG")
>>> x = load_image(buf.getvalue(), 16)
>>> x.shape, x.dtype, x[8, 8].tolist()
((16, 16, 3), dtype('uint8'), [200, 10, 10])
"""

import io
import os

import numpy as np
from PIL import Image, ImageOps

try:  # Phones save HEIC; support it when the optional plugin is present.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - optional dependency
    pass

DEFAULT_MAX_PIXELS = 120_000_000


class ImageLoadError(ValueError):
    """An image could not be used; the message names the file and why."""


def _describe(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return os.fspath(source)


def _open(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ImageLoadError(f"{path}: file not found")
        if os.path.getsize(path) == 0:
            raise ImageLoadError(f"{path}: empty file (0 bytes)")
        with open(path, "rb") as f:
            data = f.read()
    if not data:
        raise ImageLoadError(f"{_describe(source)}: empty file (0 bytes)")
    return Image.open(io.BytesIO(data))


def _to_rgb(image):
    """Any Pillow mode -> 8-bit RGB; transparency composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def _border_colour(arr):
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]], axis=0)
    return tuple(int(v) for v in np.round(border.mean(axis=0)))


def letterbox(image, size):
    """Scale a PIL RGB image to fit `size` x `size` and pad with its border colour."""
    w, h = image.size
    scale = size / max(w, h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = image.resize((new_w, new_h), Image.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(resized)
    canvas = Image.new("RGB", (size, size), _border_colour(arr))
    canvas.paste(resized, ((size - new_w) // 2, (size - new_h) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def load_image(source, size, max_pixels=DEFAULT_MAX_PIXELS):
    """Decode an image file or bytes into RGB uint8 `[size, size, 3]`.

    Args:
        source: a path or the encoded bytes.
        size: the model's square input size (from the model's config).
        max_pixels: images with more pixels are refused (decompression bomb).

    Raises:
        ImageLoadError: one line naming the file and the reason.
    """
    name = _describe(source)
    try:
        image = _open(source)
        w, h = image.size
        if w * h > max_pixels:
            raise ImageLoadError(
                f"{name}: {w}x{h} = {w * h} pixels is above the limit of {max_pixels}"
            )
        if getattr(image, "is_animated", False):
            image.seek(0)
        # Decode big JPEGs at a reduced scale: bounded memory, same result
        # after the downscale below.
        image.draft("RGB", (size * 4, size * 4))
        image.load()
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
        return letterbox(image, size)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{name}: refused as a decompression bomb ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "cannot identify image file" in reason:
            reason = "not an image Pillow can read"
        raise ImageLoadError(f"{name}: {reason}") from None
