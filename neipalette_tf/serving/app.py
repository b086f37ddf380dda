"""The NeiPalette web service: the library behind `python -m neipalette_tf.serve`.

The command, its flags and what it writes are described in `neipalette_tf/serve.py`,
the limits in docs/serving.md; this module holds the work, callable from Python.

Nothing here blocks the event loop: image headers are read, images decoded
(`images.py`) and the model run in thread pools, so `/healthz` and other
requests keep being answered while one request decodes large images.
"""

import asyncio
import base64
import io
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from neipalette_tf.core import cli
from neipalette_tf.explanation import explain
from neipalette_tf.explanation.figure import heat_overlay
from neipalette_tf.explanation.readings import colour_info, read_garments
from neipalette_tf.ranking.diversity import mmr
from neipalette_tf.serving import images, web_runtime
from neipalette_tf.serving.guards import RETRY_AFTER_S, BodyLimit, HTTPError, RequestGuard

__all__ = ["HTTPError", "create_app", "check_model", "app_from_environment"]

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_UPLOAD_MB = 10.0
MAX_PIXELS = 40_000_000            # per image, read from its header before decoding
MAX_REQUEST_PIXELS = 100_000_000   # per request: the decoded pixels of all its images together
TIMEOUT_S = 30.0                   # a request's whole time: upload, decoding, model
BODY_TIMEOUT_S = 10.0              # the longest gap while a request body streams in
MAX_IN_FLIGHT = 64                 # requests in progress per server process (`--limit-concurrency`)
QUEUE_TIMEOUT_S = 5.0
MAX_RANK_GARMENTS = 64
MAX_TEXT_FIELD = 64                # characters of a text field (role, k, target, flags)
PICTURE_SIZE = 192  # px of the overlay / preview pictures (`images=1`)


def _error(status, message, field=None, headers=None):
    """The service's refusal: JSON `{"error", "field"}`; the connection is closed (the body may be unread)."""
    headers = {"Connection": "close", **(headers or {})}
    if status in (429, 503):
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


class Workers:
    """Backends (one runtime, one CPU thread each); a request borrows one.

    LiteRT interpreters are not thread-safe and ONNX Runtime sessions share
    their thread pool: one backend per concurrent request keeps both right
    and bounds the CPU work in flight. The queue of free backends belongs to
    the event loop that serves (made on first use in each loop). A backend
    goes back to the queue when its computation has really finished, even
    if the request was cancelled (its time limit) meanwhile.
    """

    def __init__(self, backends):
        self.backends = list(backends)
        self.loop = self.free = None
        self.pool = ThreadPoolExecutor(max_workers=len(self.backends), thread_name_prefix="model")

    def _queue(self):
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop, self.free = loop, asyncio.Queue()
            for b in self.backends:
                self.free.put_nowait(b)
        return self.free

    async def run(self, fn):
        free = self._queue()
        try:
            backend = await asyncio.wait_for(free.get(), QUEUE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise HTTPError(503, f"busy: every worker was taken for {QUEUE_TIMEOUT_S:g} s; try again") from None
        task = asyncio.get_running_loop().run_in_executor(self.pool, fn, backend)
        task.add_done_callback(lambda _: free.put_nowait(backend))  # back once really done
        return await asyncio.shield(task)  # cancelled (time limit): the answer is 503, the worker finishes


def _png_data_url(image, size=PICTURE_SIZE):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.NEAREST).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# An absolute path inside a string (POSIX or Windows), up to its last component: that component is kept.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"]+[/\\])+(?=[^\s/\\'\"]*)")


def public_view(value):
    """`value` (JSON types) with every absolute path in its strings cut to its last component.

    What the service shows of the model card and of an explanation: file
    names and model facts, not where the server keeps them. Data URLs
    (the pictures) pass unchanged.
    """
    if isinstance(value, dict):
        return {k: public_view(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public_view(v) for v in value]
    if isinstance(value, str) and not value.startswith("data:") and ("/" in value or "\\" in value):
        return _ABSOLUTE_PATH.sub("", value)
    return value


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


def _one(form, name, kind):
    """The single value of form field `name` (None when absent): `kind` "file" or "text", else 422."""
    values = form.getlist(name)
    if len(values) > 1:
        raise HTTPError(422, f"{name}: given {len(values)} times, expected once", name)
    value = values[0] if values else None
    if value is None:
        return None
    if kind == "file" and not isinstance(value, UploadFile):
        raise HTTPError(422, f"{name}: expected an image file, got a text field", name)
    if kind == "text":
        if isinstance(value, UploadFile):
            raise HTTPError(422, f"{name}: expected a text field, got a file", name)
        if len(value) > MAX_TEXT_FIELD:
            raise HTTPError(422, f"{name}: longer than {MAX_TEXT_FIELD} characters", name)
    return value


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _flag(form, name):
    value = _one(form, name, "text")
    value = "0" if value is None else value.strip().lower()
    if value not in _TRUE + _FALSE:
        raise HTTPError(422, f"{name}: expected 1 or 0 (true / false), got {json.dumps(value[:20])}", name)
    return value in _TRUE


def create_app(model, workers=None, max_upload_mb=MAX_UPLOAD_MB, max_pixels=MAX_PIXELS, timeout=TIMEOUT_S,
               processes=1, max_request_pixels=MAX_REQUEST_PIXELS, body_timeout=BODY_TIMEOUT_S,
               max_in_flight=MAX_IN_FLIGHT, decode_threads=None):
    """The FastAPI app serving `model` (`.onnx`, `.tflite` or an export folder; no TensorFlow).

    `workers`: requests this process computes at once (one runtime each);
    `processes`: how many such processes serve (reported in `/v1/model`);
    `decode_threads`: images this process decodes at once (default: `workers` + 1).
    The other arguments are the limits of docs/serving.md.
    """
    model = check_model(model)
    workers = max(1, int(workers or min(os.cpu_count() or 1, 4)))
    decode_threads = max(1, int(decode_threads or workers + 1))
    max_file = int(max_upload_mb * 1024 * 1024)
    limits = {"max_upload_bytes": max_file, "max_request_bytes": int(2.5 * max_file), "max_pixels": max_pixels,
              "max_request_pixels": max_request_pixels, "timeout_s": timeout, "body_timeout_s": body_timeout,
              "max_in_flight": max_in_flight, "workers": workers, "decode_threads": decode_threads,
              "processes": int(processes), "queue_timeout_s": QUEUE_TIMEOUT_S,
              "max_rank_garments": MAX_RANK_GARMENTS}
    first = explain.load_backend(model, threads=1)  # fail now, in one line, on a bad model
    pool = Workers([first] + [explain.load_backend(model, threads=1) for _ in range(workers - 1)])
    decoder = images.Decoder(first.image_size, max_file, max_pixels, max_request_pixels, decode_threads)
    card = public_view(getattr(first, "card", None) or {})
    model_name = os.path.basename(os.path.normpath(first.path))

    app = FastAPI(title="NeiPalette", description="Does this top go with this bottom, colour-wise?",
                  docs_url="/docs", redoc_url=None, redirect_slashes=False)
    app.add_middleware(BodyLimit, limit=limits["max_request_bytes"])
    app.add_middleware(RequestGuard, max_in_flight=max_in_flight, timeout=timeout, body_timeout=body_timeout)

    @app.exception_handler(HTTPError)
    async def _http_error(request, e):
        return _error(e.status, e.message, e.field)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request, e):  # no such route (404), wrong method (405)
        message = {404: "no such route", 405: f"method {request.method} not allowed here"}.get(
            e.status_code, "refused")
        return _error(e.status_code, message, None, {k: v for k, v in (e.headers or {}).items() if k == "Allow"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e):
        first_error = (e.errors() or [{}])[0]
        field = next((str(x) for x in reversed(first_error.get("loc", ())) if isinstance(x, str)), None)
        return _error(422, f"{field or 'request'}: invalid value", field)

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        return _error(500, "internal error; the request was not scored", None)

    async def form_of(request):
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise HTTPError(415, "send the images as multipart/form-data", "body")
        try:
            return await request.form(max_files=MAX_RANK_GARMENTS + 2, max_fields=16)
        except HTTPError:  # the body's size or pace (BodyLimit, RequestGuard)
            raise
        except StarletteHTTPException as e:  # Starlette's own multipart errors: fixed sentences, no input echoed
            detail = str(e.detail)
            status = 413 if ("Too many" in detail or "maximum size" in detail) else 400
            raise HTTPError(status, f"malformed multipart body: {detail.rstrip('.')}", "body") from None
        except Exception:  # noqa: BLE001 - anything else the multipart parser raised
            raise HTTPError(400, "malformed multipart body", "body") from None

    web_runtime.add_routes(app, first, model_name, STATIC)  # page scripts, LiteRT.js, the .tflite file

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html", headers=web_runtime.HEADERS)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "model": model_name, "format": first.format, "pid": os.getpid()}

    @app.get("/v1/model")
    async def model_card():
        return {"model": model_name, "format": first.format, "image_size": first.image_size,
                "attention": bool(getattr(first, "files", {}).get("attention")), "limits": limits, "card": card,
                "on_device": web_runtime.on_device_info(first, model_name)}

    @app.post("/v1/score")
    async def score(request: Request):
        start = time.perf_counter()
        form = await form_of(request)
        files = [(role, _one(form, role, "file")) for role in ("top", "bottom")]
        pictures, suggest = _flag(form, "images"), _flag(form, "suggest")
        target = _one(form, "target", "text")
        try:
            target = explain.TARGET_P if target is None else float(target)
        except ValueError:
            raise HTTPError(422, "target: not a number", "target") from None
        if not 0.0 < target < 1.0:
            raise HTTPError(422, f"target: must be between 0 and 1, got {target:g}", "target")
        top, bottom = await decoder.decode(files)

        def work(backend):
            # one encoder pass for the verdict (head on the embeddings read), pixel checks until found
            result = explain.explain_images(backend, top, bottom, target=target, always_suggest=suggest,
                                            check_all=False, full_model=False)
            out = public_view(explain.public(result))
            if isinstance(out.get("model"), dict) and "path" in out["model"]:
                out["model"]["path"] = model_name
            if pictures:
                att = result.get("_attention") or [None, None]
                out["images"] = {
                    "top": _png_data_url(heat_overlay(top, att[0])),
                    "bottom": _png_data_url(heat_overlay(bottom, att[1])),
                    "top_photo": _png_data_url(top), "bottom_photo": _png_data_url(bottom),
                    "previews": [_png_data_url(p) for p in result["_previews"]]}
                if "_palette_previews" in result:  # a multi-colour garment's palette suggestions
                    out["images"]["palette_previews"] = [_png_data_url(p) for p in result["_palette_previews"]]
            return out

        out = await pool.run(work)
        out["elapsed_ms"] = round((time.perf_counter() - start) * 1e3, 2)
        return JSONResponse(out)  # plain JSON types already: no jsonable_encoder pass

    @app.post("/v1/rank")
    async def rank(request: Request):
        form = await form_of(request)
        role = _one(form, "role", "text") or "top"
        if role not in explain.ROLES:
            raise HTTPError(422, f"role: must be 'top' (rank bottoms) or 'bottom' (rank tops), got "
                                 f"{json.dumps(role[:20])}", "role")
        k = _one(form, "k", "text")
        try:
            k = 5 if k is None else int(k)
        except ValueError:
            raise HTTPError(422, "k: not an integer", "k") from None
        if k < 1:
            raise HTTPError(422, "k: must be at least 1", "k")
        diverse = _flag(form, "diverse")
        query = _one(form, "query", "file")
        garments = form.getlist("garments")
        if query is None:
            raise HTTPError(422, "query: missing image file", "query")
        if not garments:
            raise HTTPError(422, "garments: give at least one garment image", "garments")
        if len(garments) > MAX_RANK_GARMENTS:
            raise HTTPError(413, f"garments: at most {MAX_RANK_GARMENTS} per request, got {len(garments)}",
                            "garments")
        for i, f in enumerate(garments):
            if not isinstance(f, UploadFile):
                raise HTTPError(422, f"garments[{i}]: expected an image file, got a text field", f"garments[{i}]")
        names = [(f.filename or f"garment {i}")[:200] for i, f in enumerate(garments)]
        decoded = await decoder.decode([("query", query)] + [(f"garments[{i}]", f) for i, f in enumerate(garments)])

        def work(backend):
            embeddings, labs, _ = read_garments(backend, np.stack(decoded))
            e_q, e_g = np.broadcast_to(embeddings[0], embeddings[1:].shape), embeddings[1:]
            p = backend.score_batch(e_q, e_g) if role == "top" else backend.score_batch(e_g, e_q)
            order = mmr(p, labs[1:], k) if diverse else list(np.argsort(-p, kind="stable")[:k])
            return {"role": role, "query_colour": colour_info(labs[0]), "diverse": diverse,
                    "ranking": [{"rank": r + 1, "index": int(i), "file": names[i], "p_harmonious": round(float(p[i]), 6),
                                 "label": "harmonious" if p[i] >= explain.THRESHOLD else "clashing",
                                 "colour": colour_info(labs[1 + i])} for r, i in enumerate(order)]}

        return JSONResponse(await pool.run(work))

    return app
