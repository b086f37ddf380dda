"""The NeiPalette web service: `python -m neipalette_tf.serve --model artifacts/X/model.onnx`.

    python -m neipalette_tf.serve --model artifacts/X/model.onnx [--host 127.0.0.1] [--port 8000]
        [--processes P] [--workers N] [--max-upload-mb 10] [--max-pixels 40000000]
        [--max-request-pixels 100000000] [--timeout 30] [--body-timeout 10] [--header-timeout 10]
        [--keep-alive-timeout 5] [--max-header-bytes 16384] [--max-headers 100]
        [--limit-concurrency 64] [--max-connections 256]

FastAPI on uvicorn, TensorFlow-free: the model runs in the NeiPalette
runtime (ONNX Runtime for `.onnx`, LiteRT for `model*.tflite`; an export
folder means its `model.onnx`). Endpoints:

| method, path     | in                                                         | out |
|------------------|------------------------------------------------------------|-----|
| `GET /`          |                                                            | the page: drop a top and a bottom photo, see the verdict, swatches, attention and suggestions |
| `GET /healthz`   |                                                            | `{"status": "ok", ...}` |
| `GET /v1/model`  |                                                            | the export's model card (file names, not server paths) and the service's limits |
| `POST /v1/score` | multipart `top`, `bottom` (images); `images=1` for pictures, `suggest=1` for fixes of harmonious pairs too, `target` (p of a fix, 0.8) | p, label, colours, rule reading, explanation, suggestions (`neipalette_tf.explain`) |
| `POST /v1/rank`  | multipart `query` (image), `garments` (1..64 images), `role` (`top`: rank bottoms), `k`, `diverse=1` | garments by p, best first (colour-diverse with `diverse`) |

Bounds (docs/serving.md has each, its default and why):

- a request body above `--max-upload-mb` x 2.5 is refused while it streams
  in (413), one image file above `--max-upload-mb` (413), an image above
  `--max-pixels` and a request whose images add up to more than
  `--max-request-pixels` decoded pixels, both read from the image headers
  before decoding (422, 413);
- a request's whole time (upload, decoding, model) is bounded by
  `--timeout` (503, its slot freed), a gap over `--body-timeout` while its
  body streams in by 408;
- at most `--limit-concurrency` requests in progress per server process
  (503 with Retry-After; `/healthz` is not counted), `--workers` of them
  computing at once (one runtime each, one CPU thread each; the others
  wait up to `QUEUE_TIMEOUT_S`, then 503);
- connections: request line and headers within `--header-timeout` (408),
  at most `--max-header-bytes` and `--max-headers` (431), idle kept-alive
  connections closed after `--keep-alive-timeout`, at most
  `--max-connections` open per process (the longest-waiting idle one is
  closed to make room).

Decoding and the model run off the event loop, so `/healthz` keeps
answering. Every refusal is `{"error": "...", "field": "..."}` with its
status; anything unexpected answers 500 with the same shape, and the
server keeps going. For deployments behind nginx: docs/serving.md.
"""

import argparse
import json
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.explanation.explain import load_backend
from neipalette_tf.serving.app import (
    APP_ARGS_ENV,
    BODY_TIMEOUT_S,
    MAX_IN_FLIGHT,
    MAX_PIXELS,
    MAX_REQUEST_PIXELS,
    MAX_UPLOAD_MB,
    TIMEOUT_S,
    check_model,
    create_app,
)
from neipalette_tf.serving.server import DEFAULT_CONNECTION_LIMITS as CONN
from neipalette_tf.serving.server import run
from neipalette_tf.predictors.builtin import MODEL_HELP, resolve_model


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.serve", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model.onnx, model*.tflite or an export folder " + MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--processes", type=int, default=1,
                   help="server processes (each its own Python, so its own GIL; their kept-alive connections "
                        "are evened out; default 1)")
    p.add_argument("--workers", type=int,
                   help="requests each process computes at once (default: CPUs, at most 4, shared by the processes)")
    p.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB, help="per image file (default 10)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help=f"per image, read from its header before decoding (default {MAX_PIXELS})")
    p.add_argument("--max-request-pixels", type=int, default=MAX_REQUEST_PIXELS,
                   help=f"decoded pixels of all the images of one request (default {MAX_REQUEST_PIXELS})")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S,
                   help=f"seconds of one request, upload + decoding + model (default {TIMEOUT_S:g})")
    p.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT_S,
                   help=f"longest gap in seconds while a request body streams in (default {BODY_TIMEOUT_S:g})")
    p.add_argument("--header-timeout", type=float, default=CONN["header_timeout_s"],
                   help=f"seconds to send the request line and headers (default {CONN['header_timeout_s']:g})")
    p.add_argument("--keep-alive-timeout", type=float, default=CONN["keep_alive_timeout_s"],
                   help="an idle kept-alive connection is closed after this many seconds "
                        f"(default {CONN['keep_alive_timeout_s']:g})")
    p.add_argument("--max-header-bytes", type=int, default=CONN["max_header_bytes"],
                   help=f"request line + headers (default {CONN['max_header_bytes']})")
    p.add_argument("--max-headers", type=int, default=CONN["max_headers"],
                   help=f"header lines per request (default {CONN['max_headers']})")
    p.add_argument("--limit-concurrency", type=int, default=MAX_IN_FLIGHT,
                   help=f"requests in progress per server process before 503 (default {MAX_IN_FLIGHT})")
    p.add_argument("--max-connections", type=int, default=CONN["max_connections"],
                   help=f"open connections per server process (default {CONN['max_connections']})")
    return p.parse_args(argv)


POSITIVE = ("processes", "workers", "max_upload_mb", "max_pixels", "max_request_pixels", "timeout", "body_timeout",
            "header_timeout", "keep_alive_timeout", "max_header_bytes", "max_headers", "limit_concurrency",
            "max_connections")


def main(argv=None):
    args = parse_args(argv)
    args.model = resolve_model(args.model)  # no --model: the built-in model
    for name in POSITIVE:
        value = getattr(args, name)
        if value is not None and not value > 0:  # `not >`: NaN too
            raise cli.UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if not 0 <= args.port <= 65535:
        raise cli.UserError(f"--port must be 0..65535, got {args.port}")
    app_args = {"model": args.model, "max_upload_mb": args.max_upload_mb, "max_pixels": args.max_pixels,
                "max_request_pixels": args.max_request_pixels, "timeout": args.timeout,
                "body_timeout": args.body_timeout, "max_in_flight": args.limit_concurrency,
                "processes": args.processes,
                "workers": args.workers or max(1, min(os.cpu_count() or 1, 4) // args.processes)}
    limits = {"header_timeout_s": args.header_timeout, "keep_alive_timeout_s": args.keep_alive_timeout,
              "max_header_bytes": args.max_header_bytes, "max_headers": args.max_headers,
              "max_connections": args.max_connections}
    url = {"serving": args.model, "url": f"http://{args.host}:{args.port}/"}
    if args.processes == 1:
        app = create_app(**app_args)
        print(json.dumps(url), flush=True)
        run(app, args.host, args.port, 1, limits)
        return 0
    load_backend(check_model(args.model), threads=1)  # a bad model fails here, in one line, before any process
    os.environ[APP_ARGS_ENV] = json.dumps(app_args)  # read by each process (spawned: it inherits the environment)
    print(json.dumps({**url, "processes": args.processes}), flush=True)
    run("neipalette_tf.serving.app:app_from_environment", args.host, args.port, args.processes, limits, factory=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
