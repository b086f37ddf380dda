"""The NeiPalette web service: `python -m neipalette_tf.serve --model artifacts/X/model.onnx`.

    python -m neipalette_tf.serve --model artifacts/X/model.onnx [--host 127.0.0.1] [--port 8000]
        [--processes P] [--workers N] [--max-upload-mb 10] [--max-pixels 40000000] [--timeout 10]

FastAPI on uvicorn, TensorFlow-free: the model runs in the NeiPalette
runtime (ONNX Runtime for `.onnx`, LiteRT for `model*.tflite`; an export
folder means its `model.onnx`). Endpoints:

| method, path     | in                                                         | out |
|------------------|------------------------------------------------------------|-----|
| `GET /`          |                                                            | the page: drop a top and a bottom photo, see the verdict, swatches, attention and suggestions |
| `GET /healthz`   |                                                            | `{"status": "ok", ...}` |
| `GET /v1/model`  |                                                            | the export's model card and the service's limits |
| `POST /v1/score` | multipart `top`, `bottom` (images); `images=1` for pictures, `suggest=1` for fixes of harmonious pairs too, `target` (p of a fix, 0.8) | p, label, colours, rule reading, explanation, suggestions (`neipalette_tf.explain`) |
| `POST /v1/rank`  | multipart `query` (image), `garments` (1..64 images), `role` (`top`: rank bottoms), `k`, `diverse=1` | garments by p, best first (colour-diverse with `diverse`) |

Bounds: a request body above `--max-upload-mb` x 2.5 is refused while it
streams in (413), one image file above `--max-upload-mb` (413), an image
above `--max-pixels` before decoding (422); at most `--workers` requests
compute at once in each of `--processes` server processes (one runtime
each, one CPU thread each), others wait up
to `QUEUE_TIMEOUT_S` and then get 503; a request's computation past
`--timeout` seconds answers 503 (the worker finishes and is reused). Bad
input answers 4xx with `{"error": "...", "field": "..."}`; anything
unexpected answers 500 with the same shape, and the server keeps going.
"""

import argparse
import json
import os
import sys

import uvicorn

from neipalette_tf.core import cli
from neipalette_tf.explanation.explain import load_backend
from neipalette_tf.serving.app import (
    APP_ARGS_ENV,
    MAX_PIXELS,
    MAX_UPLOAD_MB,
    TIMEOUT_S,
    check_model,
    create_app,
)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.serve", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model.onnx, model*.tflite or an export folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--processes", type=int, default=1,
                   help="server processes (each its own Python, so its own GIL; default 1)")
    p.add_argument("--workers", type=int,
                   help="requests each process computes at once (default: CPUs, at most 4, shared by the processes)")
    p.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB, help="per image file (default 10)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="per image, checked before decoding")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds of computation per request")
    p.add_argument("--limit-concurrency", type=int, default=64,
                   help="open connections before uvicorn answers 503 (default 64)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for name in ("processes", "workers", "max_upload_mb", "max_pixels", "timeout"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise cli.UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    app_args = {"model": args.model, "max_upload_mb": args.max_upload_mb, "max_pixels": args.max_pixels,
                "timeout": args.timeout, "processes": args.processes,
                "workers": args.workers or max(1, min(os.cpu_count() or 1, 4) // args.processes)}
    server = {"host": args.host, "port": args.port, "log_level": "warning", "timeout_keep_alive": 5,
              "limit_concurrency": args.limit_concurrency}
    if args.processes == 1:
        app = create_app(**app_args)
        print(json.dumps({"serving": args.model, "url": f"http://{args.host}:{args.port}/"}), flush=True)
        uvicorn.run(app, **server)
        return 0
    load_backend(check_model(args.model), threads=1)  # a bad model fails here, in one line, before any process
    os.environ[APP_ARGS_ENV] = json.dumps(app_args)  # read by each process (spawned: it inherits the environment)
    print(json.dumps({"serving": args.model, "url": f"http://{args.host}:{args.port}/",
                      "processes": args.processes}), flush=True)
    uvicorn.run("neipalette_tf.serving.app:app_from_environment", factory=True, workers=args.processes, **server)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
