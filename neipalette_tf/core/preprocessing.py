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
size in the file's own mode; right after decoding, 16-bit and 32-bit
images become 8-bit a band of rows at a time, and images above
`REDUCE_ABOVE_PIXELS` are box-reduced (`Image.reduce`) before any other
copy. Peak memory per image is therefore about the decoded image
(`max_pixels` x its bytes per pixel: 2 for 16-bit grey, 4 for 16-bit
grey + alpha or RGBA) plus one 8-bit copy: under 400 MB for a
10,900 x 10,900 16-bit grey PNG, times the decode threads
(`neipalette_tf.data.pipeline.load_images`).

Silent wrong decodes are refused: a baseline JPEG whose scan data ends
early (a cut file with an end marker) is an error, not grey fill; a float
image (TIFF mode F) with values in 0..1 is scaled by 255, not read as black.

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
import math
import os
import warnings

import numpy as np
from PIL import Image

from neipalette_tf.core.errors import ImageLoadError  # noqa: F401 - raised here, importable from here

try:  # Phones save HEIC; support it when the optional plugin is present.
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - optional dependency
    pass

# ImageNet's channel mean and std of x / 255 (the normalisation of KerasHub's ResNet presets).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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


ROWS_PER_CHUNK = 256  # rows converted at a time from 16/32-bit modes (bounded temporaries)


def _scale_top(image):
    """The value that maps to 255 for an I / F image: 1.0 for floats in 0..1, 65535 for 16-bit values, else 255."""
    low, high = image.getextrema()
    if high is None or not math.isfinite(high):
        high = 0
    if image.mode == "F" and high <= 1.0:
        return 1.0  # a float image in 0..1 (e.g. a float TIFF): scaled, not decoded as black
    return 65535.0 if high > 255 else 255.0


def _to_8bit(image):
    """A 16-bit / 32-bit int / float image -> mode L, a band of rows at a time (no full-size float copy).

    I;16*: full range 0..65535. I and F: 8-bit values, or 16-bit ones when
    larger; F in 0..1 is scaled by 255. NaN and infinities become 0.
    Other modes are returned unchanged.
    """
    if not (image.mode.startswith("I;16") or image.mode in ("I", "F")):
        return image
    top = 65535.0 if image.mode.startswith("I;16") else _scale_top(image)
    w, h = image.size
    out = np.empty((h, w), np.uint8)
    for y in range(0, h, ROWS_PER_CHUNK):
        band = np.asarray(image.crop((0, y, w, min(h, y + ROWS_PER_CHUNK))), dtype=np.float64)
        band = np.nan_to_num(band, nan=0.0, posinf=0.0, neginf=0.0)
        out[y:y + band.shape[0]] = np.clip(band / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


REDUCE_ABOVE_PIXELS = 16_000_000  # larger images are box-reduced in the decoder's mode before any conversion
REDUCIBLE = ("L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "I", "F", "PA")


def _reduce_large(image, size):
    """Shrink a large decoded image early (box average, `Image.reduce`) to about 3x the model size.

    `letterbox` would do the same reduction inside its resize (`reducing_gap`);
    doing it first keeps every later copy (mode conversion, alpha
    compositing) small. Images up to `REDUCE_ABOVE_PIXELS` are left as they are.
    """
    w, h = image.size
    if w * h <= REDUCE_ABOVE_PIXELS:
        return image
    factor = int(max(w, h) / size / 3.0)
    if factor < 2:
        return image
    if image.mode in ("LA", "RGBA"):
        image = _composite_on_white(image)  # band by band: Pillow's own reduce would copy it premultiplied
    if image.mode not in REDUCIBLE:
        image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB") \
            if image.mode == "P" else image.convert("L") if image.mode == "1" else image
        if image.mode not in REDUCIBLE:
            return image
    return image.reduce(factor)


def _composite_on_white(image):
    """An LA / RGBA image composited on white, as L / RGB, a band of rows at a time."""
    w, h = image.size
    channels = 1 if image.mode == "LA" else 3
    out = np.empty((h, w, channels), np.uint8)
    for y in range(0, h, ROWS_PER_CHUNK):
        band = np.asarray(image.crop((0, y, w, min(h, y + ROWS_PER_CHUNK))), dtype=np.float32)
        alpha = band[..., -1:] / 255.0
        out[y:y + band.shape[0]] = np.clip(band[..., :channels] * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255)
    return Image.fromarray(out[..., 0] if channels == 1 else out, "L" if channels == 1 else "RGB")


def _to_rgb(image):
    """Any Pillow mode -> 8-bit RGB; transparency composited on white."""
    image = _to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB")


def _truncated_jpeg(image):
    """A baseline JPEG whose scan data ended early (and an end marker follows) decodes without
    an error: libjpeg fills the missing blocks with mid-grey (128 in every channel). True when
    the last row is that fill and the first is not (a flat mid-grey photo is not flagged).
    Progressive JPEGs are not checked: missing scans there blur the image instead."""
    if image.format != "JPEG" or image.info.get("progressive") or image.info.get("progression"):
        return False
    if image.mode not in ("L", "RGB"):
        return False
    w, h = image.size
    last = np.asarray(image.crop((0, h - 1, w, h)))
    if not (last == 128).all():
        return False
    first = np.asarray(image.crop((0, 0, w, 1)))
    return not (first == 128).all()


_ORIENTATION = 0x0112
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _orientation(image):
    """The EXIF orientation (1..8); a corrupt EXIF block counts as 1 (pixels as stored), as viewers do."""
    try:
        value = image.getexif().get(_ORIENTATION, 1)
        return value if value in _TRANSPOSE else 1
    except Exception:  # noqa: BLE001 - any broken EXIF: keep the pixels unrotated
        return 1


def _exif_transpose(image, orientation=None):
    """Apply the EXIF orientation (read from `image` unless given); no copy when there is none."""
    orientation = _orientation(image) if orientation is None else orientation
    return image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image


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
        if _truncated_jpeg(image):
            raise ImageLoadError(f"{name}: truncated JPEG data (the scan data ends early; the decoder "
                                 "would fill the rest with grey)")
        orientation = _orientation(image)  # read now: the conversions below drop the EXIF block
        image = _reduce_large(_to_8bit(image), size)  # 8-bit per channel and small, before any other copy
        image = _exif_transpose(image, orientation)
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
