"""The web service's images: sizes read from the headers, then decoded off the event loop, one at a time.

`Decoder.decode` takes a request's uploaded files and returns the model's
input arrays. Before any decoding it reads every image's header (in the
pool) and refuses, in the order of the files, an image above the per-image
pixel limit (422) and the file that takes the request's decoded pixels
above the per-request budget (413), both naming the file's field. A JPEG
counts the pixels it will be decoded at (`load_image` decodes large JPEGs
at 1/2 to 1/8 scale); other formats their full size. Then the images are
decoded one per pool task: a request's decoding interleaves with other
requests' instead of holding a thread for all its images, and a cancelled
request (its time limit) stops after the image in progress. A small
request (`SMALL_REQUEST_PIXELS` decoded pixels in all: a few milliseconds)
is checked and decoded in one task, sparing the event loop two hand-offs.

Error messages are `load_image`'s one-line reasons, without the decoder's
own words when those could carry exception names, object reprs or paths.
"""

import asyncio
import io
import re
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from neipalette_tf.core.preprocessing import FORMATS, ImageLoadError, load_image
from neipalette_tf.serving.guards import HTTPError

# Words that must not reach a client: exception class names, tracebacks, object reprs, absolute paths.
_UNSAFE = re.compile(r"[A-Za-z]*(Error|Exception|Warning)\b|Traceback|<[A-Za-z_.]+[ >]|object at 0x|"
                     r"(?<![\w.:/\\])(?:[A-Za-z]:)?[/\\][^\s/\\]+[/\\]")


def client_reason(error):
    """The one-line reason of an `ImageLoadError`, fit for a client (no exception names, reprs or paths)."""
    text = str(error).replace("<bytes>: ", "").strip()
    if not _UNSAFE.search(text):
        return text
    head = re.sub(r"\s*\(.*$", "", text)  # drop the parenthesised detail the decoder wrote
    return head if head and not _UNSAFE.search(head) else "unreadable image data"


def decoded_pixels(data, size, max_pixels):
    """(pixels in the file's header, pixels it will be decoded at), or an `ImageLoadError` message."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        w, h = image.size
        if 0 < w * h <= max_pixels:
            image.draft("RGB", (size * 4, size * 4))  # what load_image does: JPEGs decode at reduced scale
        return w * h, image.size[0] * image.size[1]
    except Exception:  # noqa: BLE001 - not an image: load_image says why, in its words
        try:
            load_image(data, size, max_pixels=max_pixels)
        except ImageLoadError as e:
            return client_reason(e)
        except Exception:  # noqa: BLE001
            pass
        return "unreadable image data"


def header_pass(datas, size, max_pixels):
    return [decoded_pixels(d, size, max_pixels) for d in datas]


# A request whose images decode to at most this many pixels in all is read and decoded in one pool task
# (a few milliseconds); larger ones one image per task.
SMALL_REQUEST_PIXELS = 4_000_000


class Decoder:
    """Uploaded image files -> model inputs, off the event loop, within a request's pixel budget."""

    def __init__(self, size, max_file_bytes, max_pixels, max_request_pixels, threads):
        self.size, self.max_file_bytes = size, max_file_bytes
        self.max_pixels, self.max_request_pixels = max_pixels, max_request_pixels
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")

    def _decode_one(self, data, field):
        try:
            return load_image(data, self.size, max_pixels=self.max_pixels)
        except ImageLoadError as e:
            raise HTTPError(422, f"{field}: {client_reason(e)}", field) from None

    def _check(self, fields, datas):
        """Read the headers; refuse (HTTPError) in the order of the files; the request's decoded pixels."""
        total = 0
        for field, info in zip(fields, header_pass(datas, self.size, self.max_pixels)):
            if isinstance(info, str):
                raise HTTPError(422, f"{field}: {info}", field)
            raw, decoded = info
            if raw > self.max_pixels:
                raise HTTPError(422, f"{field}: {raw} pixels is above the limit of {self.max_pixels} pixels "
                                     "per image", field)
            total += decoded
            if total > self.max_request_pixels:
                raise HTTPError(413, f"{field}: the request's images add up to {total} decoded pixels here, above "
                                     f"the limit of {self.max_request_pixels} per request", field)
        return total

    def _check_and_decode_small(self, fields, datas):
        """The headers checked; the images too when they are small in all (else None: one task each)."""
        if self._check(fields, datas) > SMALL_REQUEST_PIXELS:
            return None
        return [self._decode_one(d, f) for f, d in zip(fields, datas)]

    async def decode(self, files):
        """`files`: [(field, UploadFile or None)] -> [uint8 array], or an `HTTPError` naming the field."""
        loop = asyncio.get_running_loop()
        fields, datas = [field for field, _ in files], []
        for field, upload in files:
            if upload is None:
                raise HTTPError(422, f"{field}: missing image file", field)
            data = await upload.read(self.max_file_bytes + 1)
            if len(data) > self.max_file_bytes:
                raise HTTPError(413, f"{field}: image file above the limit of {self.max_file_bytes} bytes", field)
            datas.append(data)
        images = await loop.run_in_executor(self.pool, self._check_and_decode_small, fields, datas)
        if images is None:
            images = [await loop.run_in_executor(self.pool, self._decode_one, d, f) for f, d in zip(fields, datas)]
        return images
