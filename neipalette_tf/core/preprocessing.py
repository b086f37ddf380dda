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
(composited on white), grayscale / palette / 16-bit / CMYK modes, the photo
formats in `FORMATS` (JPEG, PNG, WebP, BMP, GIF first frame, TIFF, AVIF),
and HEIC/HEIF when `pillow-heif` is installed. Other formats Pillow knows
(TGA, PCX, netpbm, ...) are refused: a text file named `.jpg` must not be
read as some headerless format. Images above `max_pixels` are refused
before decoding (decompression bombs; default `DEFAULT_MAX_PIXELS`, or the
environment variable `NEIPALETTE_MAX_PIXELS`); large JPEGs are decoded at
reduced scale (`draft`, 1/2 to 1/8 in the decoder) so memory stays bounded:
a 12000 x 9000 JPEG decodes at 1500 x 1125. Other formats decode at full
size, so their memory is bounded by `max_pixels`.

Every failure, whatever the decoder raised, is an `ImageLoadError`: one
line naming the file and the reason. A corrupt EXIF block is ignored (the
pixels are used unrotated), as image viewers do.

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
import warnings

import numpy as np
from PIL import Image, ImageOps

from neipalette_tf.core.errors import ImageLoadError  # noqa: F401 - raised here, importable from here

try:  # Phones save HEIC; support it when the optional plugin is present.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - optional dependency
    pass

DEFAULT_MAX_PIXELS = 120_000_000
# Photo formats only; `Image.open` tries no other decoder.
FORMATS = tuple(f for f in ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "AVIF", "HEIF") if f in Image.registered_extensions().values())

# NeiPalette applies its own limit (`max_pixels`) before decoding; Pillow's
# warning between its soft and hard limits would only repeat it. Pillow's
# hard limit (DecompressionBombError, 2 x Image.MAX_IMAGE_PIXELS) stays.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _describe(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return os.fspath(source)


def _read(source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ImageLoadError(f"{path}: file not found")
        if os.path.isdir(path):
            raise ImageLoadError(f"{path}: is a folder, not an image file")
        with open(path, "rb") as f:
            data = f.read()
    if not data:
        raise ImageLoadError(f"{_describe(source)}: empty file (0 bytes)")
    return data


def max_pixels_limit():
    """The pixel limit: `NEIPALETTE_MAX_PIXELS` if set, else `DEFAULT_MAX_PIXELS`."""
    value = os.environ.get("NEIPALETTE_MAX_PIXELS")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise ImageLoadError(f"NEIPALETTE_MAX_PIXELS={value!r} is not an integer") from None
    if limit <= 0:
        raise ImageLoadError(f"NEIPALETTE_MAX_PIXELS={value!r} must be positive")
    return limit


def _to_rgb(image):
    """Any Pillow mode -> 8-bit RGB; transparency composited on white."""
    if image.mode.startswith("I;16"):  # 16-bit grayscale (PNG, TIFF): full range 0..65535
        arr = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(arr / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif image.mode in ("I", "F"):  # 32-bit int / float: 8-bit values, or 16-bit ones when larger
        arr = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = 65535.0 if arr.size and arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def _exif_transpose(image):
    """Apply the EXIF orientation; a corrupt EXIF block leaves the image as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - any broken EXIF: keep the pixels unrotated
        return image


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


def load_image(source, size, max_pixels=None):
    """Decode an image file or bytes into RGB uint8 `[size, size, 3]`.

    Args:
        source: a path or the encoded bytes.
        size: the model's square input size (from the model's config).
        max_pixels: images with more pixels are refused (decompression
            bomb); default: `max_pixels_limit()`.

    Raises:
        ImageLoadError: one line naming the file and the reason. Nothing
            else: every decoder failure is turned into this error.
    """
    name = _describe(source)
    max_pixels = max_pixels_limit() if max_pixels is None else max_pixels
    image = None
    try:
        data = _read(source)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except Image.UnidentifiedImageError:
            raise ImageLoadError(
                f"{name}: not a supported image ({len(data)} bytes; expected {'/'.join(FORMATS)})"
            ) from None
        w, h = image.size
        if w < 1 or h < 1:
            raise ImageLoadError(f"{name}: the image has no pixels ({w}x{h})")
        if w * h > max_pixels:
            raise ImageLoadError(
                f"{name}: {w}x{h} = {w * h} pixels is above the limit of {max_pixels} "
                "(decompression bomb guard; raise NEIPALETTE_MAX_PIXELS to allow it)"
            )
        # Decode big JPEGs at a reduced scale: bounded memory, same result
        # after the downscale below.
        image.draft("RGB", (size * 4, size * 4))
        image.load()
        image = _exif_transpose(image)
        image = _to_rgb(image)
        return letterbox(image, size)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{name}: refused as a decompression bomb ({e})") from None
    except MemoryError:
        raise ImageLoadError(f"{name}: out of memory while decoding") from None
    except Exception as e:  # noqa: BLE001 - a decoder may raise anything on a corrupt file
        reason = str(e).splitlines()[0].strip() if str(e).strip() else type(e).__name__
        fmt = getattr(image, "format", None)
        what = f"corrupt or truncated {fmt} data" if fmt else "corrupt or truncated image data"
        raise ImageLoadError(f"{name}: {what} ({reason})") from None
