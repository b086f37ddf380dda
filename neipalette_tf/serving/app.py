"""The NeiPalette web service: the library behind `python -m neipalette_tf.serve`.

The command, its flags and what it writes are described in `neipalette_tf/serve.py`;
this module holds the work, callable from Python.
"""

import asyncio
import base64
import io
import json
import os
import time

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image
from starlette.datastructures import UploadFile

from neipalette_tf.core import cli
from neipalette_tf.core.preprocessing import ImageLoadError, load_image
from neipalette_tf.explanation import explain
from neipalette_tf.ranking.diversity import mmr

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_UPLOAD_MB = 10.0
MAX_PIXELS = 40_000_000
TIMEOUT_S = 10.0
QUEUE_TIMEOUT_S = 5.0
MAX_RANK_GARMENTS = 64
PICTURE_SIZE = 192  # px of the overlay / preview pictures (`images=1`)


class HTTPError(Exception):
    """An answer with a status, a message and the offending field."""

    def __init__(self, status, message, field=None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _error(status, message, field=None):
    return JSONResponse({"error": message, "field": field}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse a request body above `limit` bytes (declared or streamed) with 413."""

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _error(413, f"request body of {int(declared)} bytes is above the limit of "
                                     f"{self.limit} bytes", "body")(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPError(413, f"request body above the limit of {self.limit} bytes", "body")
            return message

        try:
            await self.app(scope, limited, send)
        except HTTPError as e:  # raised while the body streamed in, before any answer
            await _error(e.status, e.message, e.field)(scope, receive, send)


class Workers:
    """Backends (one runtime, one CPU thread each); a request borrows one.

    LiteRT interpreters are not thread-safe and ONNX Runtime sessions share
    their thread pool: one backend per concurrent request keeps both right
    and bounds the CPU work in flight. The queue of free backends belongs to
    the event loop that serves (made on first use in each loop).
    """

    def __init__(self, backends):
        self.backends = list(backends)
        self.loop = self.free = None

    def _queue(self):
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.free = loop, asyncio.Queue()
            for b in self.backends:
                self.free.put_nowait(b)
        return self.free

    async def run(self, fn, timeout):
        free = self._queue()
        try:
            backend = await asyncio.wait_for(free.get(), QUEUE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise HTTPError(503, f"busy: every worker was taken for {QUEUE_TIMEOUT_S:g} s; try again") from None
        task = asyncio.get_running_loop().run_in_executor(None, fn, backend)
        task.add_done_callback(lambda _: free.put_nowait(backend))  # back once really done
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            raise HTTPError(503, f"the computation took longer than {timeout:g} s") from None


def _png_data_url(image, size=PICTURE_SIZE):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.NEAREST).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _flag(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


# `python -m neipalette_tf.serve --processes N`: each server process builds its app from this variable
# (JSON of `create_app`'s arguments), set by the parent before uvicorn starts them.
APP_ARGS_ENV = "NEIPALETTE_SERVE_APP"


def check_model(model):
    """`model` as a path the service can run (`.onnx`, `.tflite` or an export folder), or a one-line error."""
    model = os.fspath(model)
    if os.path.splitext(model)[1] not in (".onnx", ".tflite") and not (
            os.path.isdir(model) and os.path.isfile(os.path.join(model, "model.onnx"))):
        raise cli.UserError(f"{model}: the service runs exported models without TensorFlow: "
                            "give model.onnx, model*.tflite or an export folder")
    return model


def app_from_environment():
    """The app of one server process of several (uvicorn's factory; see `APP_ARGS_ENV`)."""
    return create_app(**json.loads(os.environ[APP_ARGS_ENV]))


def create_app(model, workers=None, max_upload_mb=MAX_UPLOAD_MB, max_pixels=MAX_PIXELS, timeout=TIMEOUT_S,
               processes=1):
    """The FastAPI app serving `model` (`.onnx`, `.tflite` or an export folder; no TensorFlow).

    `workers`: requests this process computes at once (one runtime each);
    `processes`: how many such processes serve (reported in `/v1/model`).
    """
    model = check_model(model)
    workers = max(1, int(workers or min(os.cpu_count() or 1, 4)))
    max_file = int(max_upload_mb * 1024 * 1024)
    limits = {"max_upload_bytes": max_file, "max_request_bytes": int(2.5 * max_file), "max_pixels": max_pixels,
              "timeout_s": timeout, "workers": workers, "processes": int(processes), "queue_timeout_s": QUEUE_TIMEOUT_S,
              "max_rank_garments": MAX_RANK_GARMENTS}
    first = explain.load_backend(model, threads=1)  # fail now, in one line, on a bad model
    pool = Workers([first] + [explain.load_backend(model, threads=1) for _ in range(workers - 1)])
    card = getattr(first, "card", None) or {}

    app = FastAPI(title="NeiPalette", description="Does this top go with this bottom, colour-wise?",
                  docs_url="/docs", redoc_url=None)
    app.add_middleware(BodyLimit, limit=limits["max_request_bytes"])

    @app.exception_handler(HTTPError)
    async def _http_error(request, e):
        return _error(e.status, e.message, e.field)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e):
        first_error = (e.errors() or [{}])[0]
        field = next((str(x) for x in reversed(first_error.get("loc", ())) if isinstance(x, str)), None)
        return _error(422, f"{field or 'request'}: {first_error.get('msg', 'invalid')}", field)

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        return _error(500, f"internal error ({type(e).__name__}); the request was not scored", None)

    async def form_of(request):
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPError(415, "send the images as multipart/form-data", "body")
        try:
            return await request.form(max_files=MAX_RANK_GARMENTS + 2, max_fields=16)
        except HTTPError:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed multipart body
            raise HTTPError(400, f"unreadable multipart body ({type(e).__name__}: {str(e)[:120]})", "body") from None

    async def image_of(form_value, field, size):
        if form_value is None:
            raise HTTPError(422, f"{field}: missing image file", field)
        if not isinstance(form_value, UploadFile):
            raise HTTPError(422, f"{field}: expected an image file, got a text field", field)
        data = await form_value.read(max_file + 1)
        if len(data) > max_file:
            raise HTTPError(413, f"{field}: image file above the limit of {max_file} bytes", field)
        try:
            return load_image(data, size, max_pixels=max_pixels)
        except ImageLoadError as e:
            raise HTTPError(422, f"{field}: {str(e).replace('<bytes>: ', '')}", field) from None

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "model": os.path.basename(first.path), "format": first.format, "pid": os.getpid()}

    @app.get("/v1/model")
    async def model_card():
        return {"model": first.path, "format": first.format, "image_size": first.image_size,
                "attention": bool(getattr(first, "files", {}).get("attention")), "limits": limits, "card": card}

    @app.post("/v1/score")
    async def score(request: Request):
        form = await form_of(request)
        top = await image_of(form.get("top"), "top", first.image_size)
        bottom = await image_of(form.get("bottom"), "bottom", first.image_size)
        pictures, suggest = _flag(form.get("images", "0")), _flag(form.get("suggest", "0"))
        try:
            target = float(form.get("target", explain.TARGET_P))
        except (TypeError, ValueError):
            raise HTTPError(422, "target: not a number", "target") from None
        if not 0.0 < target < 1.0:
            raise HTTPError(422, f"target: must be between 0 and 1, got {target:g}", "target")

        def work(backend):
            # one encoder pass for the verdict (head on the embeddings read), pixel checks until found
            result = explain.explain_images(backend, top, bottom, target=target, always_suggest=suggest,
                                            check_all=False, full_model=False)
            out = explain.public(result)
            if pictures:
                att = result.get("_attention") or [None, None]
                out["images"] = {
                    "top": _png_data_url(explain.heat_overlay(top, att[0])),
                    "bottom": _png_data_url(explain.heat_overlay(bottom, att[1])),
                    "top_photo": _png_data_url(top), "bottom_photo": _png_data_url(bottom),
                    "previews": [_png_data_url(p) for p in result["_previews"]]}
            return out

        start = time.perf_counter()
        out = await pool.run(work, timeout)
        out["elapsed_ms"] = round((time.perf_counter() - start) * 1e3, 2)
        return JSONResponse(out)  # plain JSON types already: no jsonable_encoder pass

    @app.post("/v1/rank")
    async def rank(request: Request):
        form = await form_of(request)
        role = str(form.get("role", "top"))
        if role not in explain.ROLES:
            raise HTTPError(422, f"role: must be 'top' (rank bottoms) or 'bottom' (rank tops), got {role[:20]!r}",
                            "role")
        try:
            k = int(form.get("k", 5))
        except ValueError:
            raise HTTPError(422, "k: not an integer", "k") from None
        if k < 1:
            raise HTTPError(422, "k: must be at least 1", "k")
        query = await image_of(form.get("query"), "query", first.image_size)
        files = form.getlist("garments")
        if not files:
            raise HTTPError(422, "garments: give at least one garment image", "garments")
        if len(files) > MAX_RANK_GARMENTS:
            raise HTTPError(413, f"garments: at most {MAX_RANK_GARMENTS} per request, got {len(files)}", "garments")
        garments = [await image_of(f, f"garments[{i}]", first.image_size) for i, f in enumerate(files)]
        names = [getattr(f, "filename", None) or f"garment {i}" for i, f in enumerate(files)]
        diverse = _flag(form.get("diverse", "0"))

        def work(backend):
            embeddings, labs, _ = explain.read_garments(backend, np.stack([query, *garments]))
            e_q, e_g = np.broadcast_to(embeddings[0], embeddings[1:].shape), embeddings[1:]
            p = backend.score_batch(e_q, e_g) if role == "top" else backend.score_batch(e_g, e_q)
            order = mmr(p, labs[1:], k) if diverse else list(np.argsort(-p, kind="stable")[:k])
            return {"role": role, "query_colour": explain.colour_info(labs[0]), "diverse": diverse,
                    "ranking": [{"rank": r + 1, "index": int(i), "file": names[i], "p_harmonious": round(float(p[i]), 6),
                                 "label": "harmonious" if p[i] >= explain.THRESHOLD else "clashing",
                                 "colour": explain.colour_info(labs[1 + i])} for r, i in enumerate(order)]}

        return await pool.run(work, timeout)

    return app
