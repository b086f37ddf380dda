"""Load-test the web service: the library behind `python -m neipalette_tf.serve_bench`.

The command, its flags and what it writes are described in `neipalette_tf/commands/serve_bench.py`;
this module holds the work, callable from Python.
"""

import collections
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
from PIL import Image

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary

GOAL_P99_MS = 100.0
MAX_MEMORY_GROWTH = 0.10
PHOTOS = 16  # distinct pairs, cycled through
# The folder holding the `neipalette_tf` package: the server subprocess imports it from there, whatever its cwd.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    """Resident memory of a process and its children (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            own = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), None)
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    return own + sum(rss_bytes(c) or 0 for c in children) if own is not None else None


def garment_photo(rng, kind):
    """A JPEG of a coloured garment shape on a light, noisy background (bytes)."""
    img = np.empty((120, 96, 3), np.float32)
    img[:] = rng.integers(180, 245, 3)
    colour = rng.integers(0, 256, 3)
    if kind == "top":
        img[20:80, 14:82] = colour
    else:
        img[12:112, 30:66] = colour
    img += rng.normal(0, 5, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def multipart(fields):
    """`(body, content type)` of a multipart/form-data request; `fields`: name -> bytes (a file) or str."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        if isinstance(value, bytes):
            head = f'Content-Disposition: form-data; name="{name}"; filename="{name}.jpg"\r\nContent-Type: image/jpeg'
        else:
            head, value = f'Content-Disposition: form-data; name="{name}"', value.encode()
        parts.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + value + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def wait_healthy(port, process, timeout=120.0, processes=1):
    """Until `/healthz` has answered from `processes` different server processes (new connections)."""
    deadline, seen = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = process.stderr.read().decode(errors="replace").strip()[-500:] if process.stderr else ""
            raise cli.UserError(f"the server exited with status {process.returncode}: {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            if response.status == 200:
                seen.add(json.loads(response.read()).get("pid"))
                if len(seen) >= processes:
                    return seen
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise cli.UserError(f"the server did not answer /healthz from {processes} process(es) within {timeout:.0f} s")


def _holder(conn, port):
    """(pid of the server process holding `conn` (None: unknown), the connection to go on with)."""
    try:
        conn.request("GET", "/healthz")
        return json.loads(conn.getresponse().read()).get("pid"), conn
    except (OSError, http.client.HTTPException, ValueError):  # counted as unknown; the requests still run
        conn.close()
        return None, http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def client(port, bodies, n, offset, latencies, errors, lock, pids=None, closes=None):
    """`n` requests on one kept-alive connection (a new one after an error, or after the server answered
    `Connection: close`: counted in `closes`); with `pids`, asks `/healthz` before the first and the middle
    request which server process holds the connection (appended to `pids` as a pair: at the middle every
    client is still running, so the pairs of all clients show the split while they all send)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    if pids is not None:
        first, conn = _holder(conn, port)
    for i in range(n):
        if pids is not None and i == n // 2:
            middle, conn = _holder(conn, port)
        body, ctype = bodies[(offset + i) % len(bodies)]
        start = time.perf_counter()
        try:
            conn.request("POST", "/v1/score", body=body, headers={"Content-Type": ctype})
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
            status = response.status
            if closes is not None and response.will_close:  # http.client reconnects for the next request
                with lock:
                    closes.append(1)
        except (OSError, http.client.HTTPException) as e:
            ok, status = False, type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        elapsed = (time.perf_counter() - start) * 1e3
        with lock:
            latencies.append(elapsed)
            if not ok:
                errors.append(status)
    if pids is not None:
        pids.append((first, middle if n else None))
    conn.close()


def start_server(model, processes=1, workers=None, flags=(), stderr=subprocess.PIPE):
    """(port, process) of `python -m neipalette_tf.serve` on 127.0.0.1 and a free port (not yet answering)."""
    port = free_port()
    command = [sys.executable, "-m", "neipalette_tf.serve", "--model", model, "--port", str(port), *flags]
    if workers:
        command += ["--workers", str(workers)]
    if processes > 1:
        command += ["--processes", str(processes)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return port, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)


def stop_server(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def bench(model, clients=8, requests=200, warmup=80, workers=None, images=False, suggest=False, log=print,
          processes=1):
    """Run the server and the clients; returns the figures (a dict)."""
    rng = np.random.default_rng(0)
    fields = {} if not (images or suggest) else {k: "1" for k, on in (("images", images), ("suggest", suggest)) if on}
    bodies = [multipart({"top": garment_photo(rng, "top"), "bottom": garment_photo(rng, "bottom"), **fields})
              for _ in range(PHOTOS)]
    port, process = start_server(model, processes, workers)
    try:
        pids = wait_healthy(port, process, processes=processes)
        lock, warm_lat, warm_err = threading.Lock(), [], []
        # warm-up on as many connections as the measured run, so every server process gets its share
        warmers = [threading.Thread(target=client, args=(port, bodies, max(1, warmup // clients), c * 11,
                                                          warm_lat, warm_err, lock)) for c in range(clients)]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join()
        rss_before = rss_bytes(process.pid)
        latencies, errors, held_by, closes = [], [], [], []
        threads = [threading.Thread(target=client, args=(port, bodies, requests, c * 7, latencies, errors, lock,
                                                         held_by, closes)) for c in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        rss_after = rss_bytes(process.pid)
        alive = process.poll() is None
    finally:
        stop_server(process)
    lat = np.asarray(latencies)
    growth = (rss_after - rss_before) / rss_before if rss_before and rss_after else None
    return {"model": model, "clients": clients, "requests_per_client": requests, "requests": int(len(lat)),
            "warmup_errors": len(warm_err), "errors": len(errors), "error_kinds": sorted({str(e) for e in errors}),
            "p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()), "requests_per_s": len(lat) / wall,
            "rss_before_mb": rss_before / 2**20 if rss_before else None,
            "rss_after_mb": rss_after / 2**20 if rss_after else None, "memory_growth": growth,
            "server_alive": alive, "images": images, "suggest": suggest, "workers": workers, "processes": processes,
            "server_pids_answering": len(pids),
            # how the clients' kept-alive connections fell on the server processes (the kernel's choice;
            # with --processes 2, a 5/3 or 6/2 split queues more requests on one core: docs/serving.md),
            # at the start and halfway (the server evens them out: `neipalette_tf.serving.balance`)
            "connections_per_process": sorted(collections.Counter(a for a, _ in held_by).values(), reverse=True),
            "connections_per_process_halfway": sorted(collections.Counter(b for _, b in held_by).values(),
                                                     reverse=True),
            "server_closes": len(closes),
            "cpu": cpu_summary(as_dict=True), "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
