"""The page's on-device runtime: LiteRT.js (WASM) files, installed once, served by the service.

`install()` (the `web-runtime` command) runs `npm ci` on the pinned
`web/package.json` + `web/package-lock.json` (@litertjs/core 2.5.3) in a
scratch folder and copies what the page loads into `web/vendor/`:

    vendor/litert.js        @litertjs/core/dist/index.js (an ES module)
    vendor/wasm-utils.js    @litertjs/wasm-utils/dist/index.js (imported by litert.js; the page's import map)
    vendor/wasm/*.js|.wasm  the four WASM builds (plain, compat without relaxed SIMD, threaded, JSPI)
    vendor/VERSION          the installed version, written last

About 38 MB, not committed; nothing is fetched from a CDN when the page
runs. `vendor/` is replaced as a whole (staged, then renamed) and only
when it holds this installer's files (its `VERSION`) or does not exist.

`vendor_file(name)` maps a URL path under `/vendor/` to a file in that
folder, and nothing else (no `..`, no links out, no other folder);
`HEADERS` are what every page resource is served with: cross-origin
isolation (COOP / COEP), which the threaded WASM build needs for
SharedArrayBuffer.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from neipalette_tf.core.errors import UserError
from neipalette_tf.core.vocabulary import THRESHOLD

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
VENDOR = os.path.join(WEB, "vendor")
PACKAGE = "@litertjs/core"
# what the page loads, from the installed packages: (source under node_modules, name under vendor/)
FILES = (("@litertjs/core/dist/index.js", "litert.js"), ("@litertjs/wasm-utils/dist/index.js", "wasm-utils.js"))
WASM_DIR = "@litertjs/core/wasm"
MIME = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
        ".wasm": "application/wasm", ".tflite": "application/octet-stream", ".html": "text/html; charset=utf-8"}
# Cross-origin isolation: the page and everything it loads (threaded WASM needs SharedArrayBuffer).
HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
           "Cross-Origin-Resource-Policy": "same-origin", "X-Content-Type-Options": "nosniff"}


def pinned_version():
    """The @litertjs/core version package-lock.json pins."""
    with open(os.path.join(WEB, "package-lock.json"), encoding="utf-8") as f:
        return json.load(f)["packages"][f"node_modules/{PACKAGE}"]["version"]


def installed_version(vendor=VENDOR):
    """The version in `vendor/VERSION`, or None when the runtime is not installed (or half there)."""
    try:
        with open(os.path.join(vendor, "VERSION"), encoding="utf-8") as f:
            version = f.read().strip()
    except OSError:
        return None
    return version if os.path.isfile(os.path.join(vendor, "litert.js")) else None


def vendor_file(name, vendor=VENDOR):
    """The file of URL path `name` under vendor/ (a plain file inside it), else None."""
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    root = os.path.realpath(vendor)
    path = os.path.realpath(os.path.join(root, *parts))
    if not path.startswith(root + os.sep) or not os.path.isfile(path):
        return None
    return path if os.path.splitext(path)[1] in MIME else None


def _npm():
    npm = shutil.which("npm")
    if not npm:
        raise UserError("npm not found: install Node.js (with npm) to install the page's on-device runtime")
    return npm


def install(vendor=VENDOR, npm=None, log=print):
    """`npm ci` the pinned packages, copy the page's files into `vendor`. Returns the version installed."""
    npm = npm or _npm()
    version = pinned_version()
    if os.path.exists(vendor) and installed_version(vendor) is None:
        raise UserError(f"{vendor}: exists but was not written by this installer (no VERSION); "
                        "move it away and run again")
    parent = os.path.dirname(os.path.abspath(vendor))
    with tempfile.TemporaryDirectory(prefix="web-runtime-") as scratch:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(os.path.join(WEB, name), scratch)
        log(f"npm ci ({PACKAGE} {version}) ...")
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=scratch,
                              capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise UserError(f"npm ci failed in a copy of {WEB} (exit {done.returncode}): {last}")
        modules = os.path.join(scratch, "node_modules")
        with open(os.path.join(modules, PACKAGE, "package.json"), encoding="utf-8") as f:
            got = json.load(f)["version"]
        if got != version:
            raise UserError(f"npm installed {PACKAGE} {got}, package-lock.json pins {version}")
        stage = tempfile.mkdtemp(prefix=".vendor-", dir=parent)
        try:
            os.chmod(stage, 0o755)  # mkdtemp's 0700 would hide the files from a service running as another user
            for source, target in FILES:
                shutil.copy2(os.path.join(modules, source), os.path.join(stage, target))
            wasm = os.path.join(modules, WASM_DIR)
            os.mkdir(os.path.join(stage, "wasm"))
            for name in sorted(os.listdir(wasm)):
                if os.path.splitext(name)[1] in (".js", ".wasm"):
                    shutil.copy2(os.path.join(wasm, name), os.path.join(stage, "wasm", name))
            for name in ("LICENSE", "README.md"):
                if os.path.isfile(os.path.join(modules, PACKAGE, name)):
                    shutil.copy2(os.path.join(modules, PACKAGE, name), os.path.join(stage, name))
            with open(os.path.join(stage, "VERSION"), "w", encoding="utf-8") as f:
                f.write(version + "\n")
            old = None
            if os.path.exists(vendor):
                old = tempfile.mkdtemp(prefix=".vendor-old-", dir=parent)
                os.rename(vendor, os.path.join(old, "vendor"))
            os.rename(stage, vendor)
            stage = None
            if old:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if stage:
                shutil.rmtree(stage, ignore_errors=True)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(vendor) for f in fs)
    log(f"installed {PACKAGE} {version} into {vendor} ({size / 1e6:.1f} MB)")
    return version


ON_DEVICE_FORMATS = ("tflite", "tflite_int8", "tflite_fp16")


def fixed_batch(model_bytes):
    """A `.tflite` file's bytes with every unknown dimension (-1 in a tensor's `shape_signature`) set
    to the size its `shape` records (1 for the batch): the same ops and weights, byte for byte.

    The exported files take any batch (`[-1, S, S, 3]`); LiteRT.js compiles a model once and
    cannot resize its inputs, so the page gets the file with its batch fixed at one pair. Only
    those int32 values change (in place: the file keeps its length and layout).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(model_bytes)
    model = schema.Model.GetRootAs(data, 0)
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            n = tensor.ShapeSignatureLength()
            if not n or n != tensor.ShapeLength():
                continue
            start = tensor._tab.Vector(flatbuffers.number_types.UOffsetTFlags.py_type(tensor._tab.Offset(18)))
            for j in range(n):
                if tensor.ShapeSignature(j) == -1:
                    data[start + 4 * j:start + 4 * j + 4] = int(max(1, tensor.Shape(j))).to_bytes(4, "little", signed=True)
    return bytes(data)


# The graphs the service computes its verdict with (`explain.explain_images`, `full_model=False`): the
# garments' embeddings from the attention graph (the encoder in exports made before it), p from the
# head on them. The page runs the same files, so it shows the service's p (the full model graph of an
# int8 export can differ from head(encoder) by more than 0.01: each is within the export's own bounds).
EMBEDDING_PARTS = ("attention", "encoder")


def on_device_parts(backend):
    """`{part: file}` of the graphs the page runs (an embedding graph and the head), or None."""
    files = getattr(backend, "files", None) or {}
    embed = next((p for p in EMBEDDING_PARTS if p in files), None)
    if embed is None or "head" not in files:
        return None
    return {embed: files[embed], "head": files["head"]}


def on_device_info(backend, model_name):
    """What `/v1/model` tells the page about on-device scoring with the service's model."""
    version = installed_version()
    card = getattr(backend, "card", None) or {}
    parts = on_device_parts(backend)
    info = {"available": False, "name": model_name, "format": backend.format, "image_size": int(backend.image_size),
            "threshold": float(card.get("threshold", THRESHOLD)), "runtime": f"{PACKAGE} {version}" if version else None,
            "files": None, "reason": None}
    if backend.format not in ON_DEVICE_FORMATS:
        info["reason"] = (f"the service runs {model_name} ({backend.format}); on-device scoring runs the .tflite "
                          "files the service runs: serve a model*.tflite file")
    elif parts is None:
        info["reason"] = f"{model_name} has no encoder and head files beside it"
    elif version is None:
        info["reason"] = ("the on-device runtime (LiteRT.js) is not installed on the server: "
                          "python -m neipalette_tf.web_runtime")
    else:
        info.update(available=True, files={part: {"name": os.path.basename(path), "url": f"/v1/model/file/{part}"}
                                           for part, path in parts.items()})
    return info


def add_routes(app, backend, model_name, static):
    """The page's resources: `/static/{name}` (its scripts), `/vendor/{path}` (LiteRT.js) and
    `/v1/model/file/{part}` (the .tflite files the service scores with, by part name: only those).
    Returns nothing; `on_device_info` says what the page may load."""
    from fastapi import Request
    from fastapi.responses import FileResponse, Response

    from neipalette_tf.serving.guards import HTTPError

    def send(path, media_type=None):
        return FileResponse(path, media_type=media_type or MIME[os.path.splitext(path)[1]], headers=HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str):
        path = os.path.join(static, name)
        if name not in os.listdir(static) or os.path.splitext(name)[1] not in MIME or not os.path.isfile(path):
            raise HTTPError(404, "no such file", "name")
        return send(path)

    @app.get("/vendor/{name:path}", include_in_schema=False)
    async def vendor(name: str):
        if installed_version() is None:
            raise HTTPError(404, "the on-device runtime is not installed: python -m neipalette_tf.web_runtime", None)
        path = vendor_file(name)
        if path is None:
            raise HTTPError(404, "no such file", None)
        return send(path)

    parts, served = on_device_parts(backend), {}

    @app.get("/v1/model/file/{part}")
    async def model_file(part: str, request: Request):
        if backend.format not in ON_DEVICE_FORMATS or parts is None:
            raise HTTPError(404, on_device_info(backend, model_name)["reason"], None)
        if part not in parts:
            raise HTTPError(404, f"part: one of {', '.join(parts)}", "part")
        if part not in served:  # read once, checked against the model card's SHA-256 as the runtime does
            with open(parts[part], "rb") as f:
                data = f.read()
            expected = (getattr(backend, "_hashes", None) or {}).get(part)
            if expected and hashlib.sha256(data).hexdigest() != expected:
                raise HTTPError(500, f"{os.path.basename(parts[part])}: differs from its model card's SHA-256", None)
            served[part] = fixed_batch(data), '"%s"' % hashlib.sha256(data).hexdigest()[:32]
        data, etag = served[part]
        # revalidated on every page load (no-cache + ETag): a restarted service with another model is never stale
        headers = {**HEADERS, "Cache-Control": "no-cache", "ETag": etag,
                   "Content-Disposition": f'attachment; filename="{os.path.basename(parts[part])}"'}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type="application/octet-stream", headers=headers)
