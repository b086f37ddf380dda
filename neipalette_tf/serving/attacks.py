"""Hostile clients against a running service on 127.0.0.1: the library behind `serve_bench --attacks`.

Each attack returns what it saw (statuses, times, the bodies' JSON); a
`Watcher` polls `/healthz` every 0.1 s and sends a well-formed
`POST /v1/score` every 0.5 s from its own connections meanwhile, and
reports how long each took. `tests/serving/test_hostile.py` asserts on
these observations; `python -m neipalette_tf.serve_bench --attacks` prints
them. Only ever aimed at 127.0.0.1.
"""

import http.client
import io
import json
import select
import socket
import threading
import time

import numpy as np
from PIL import Image

from neipalette_tf.serving.load_test import garment_photo, multipart, rss_bytes

HOST = "127.0.0.1"
HEALTH_WITHIN_S, SCORE_WITHIN_S = 1.0, 2.0  # the goals under attack

# The server limits the attacks are sized for (`serve_bench --attacks` starts it with these; the tests too):
# short, so that every attack takes seconds.
LIMITS = {"header_timeout": 1.5, "body_timeout": 1.5, "timeout": 6.0, "limit_concurrency": 4, "max_connections": 40}


def server_flags(limits=LIMITS):
    return [x for name, value in limits.items() for x in (f"--{name.replace('_', '-')}", str(value))]


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """(status, headers with lower-case names, body bytes, seconds) over a new connection."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data, time.monotonic() - start
    finally:
        conn.close()


def refusal(status, headers, data):
    """The service's JSON error `{"error", "field"}` of an answer, or a dict saying what is wrong with it."""
    if not headers.get("content-type", "").startswith("application/json"):
        return {"not_json": data[:200].decode("latin-1")}
    try:
        body = json.loads(data)
    except ValueError:
        return {"not_json": data[:200].decode("latin-1")}
    if not isinstance(body, dict) or set(body) != {"error", "field"}:
        return {"not_json": data[:200].decode("latin-1")}
    if status in (429, 503) and not headers.get("retry-after", "").isdigit():
        return {**body, "no_retry_after": True}
    return body


def parse_raw(raw):
    """(status, headers, body) of a raw HTTP answer read from a socket (status None when there is none)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, raw
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    return status, headers, body


class Watcher:
    """Polls `/healthz` every 0.1 s and sends a well-formed `/v1/score` every 0.5 s, in threads; records both."""

    def __init__(self, port, min_s=1.2):
        self.port, self.min_s, self.stop = port, min_s, threading.Event()
        self.health, self.scores = [], []
        rng = np.random.default_rng(1)
        self.body = multipart({"top": garment_photo(rng, "top"), "bottom": garment_photo(rng, "bottom")})

    def _health(self):
        while not self.stop.is_set():
            try:
                status, _, _, seconds = request(self.port, "GET", "/healthz", timeout=5)
            except OSError as e:
                status, seconds = type(e).__name__, 5.0
            self.health.append((status, seconds))
            self.stop.wait(0.1)

    def _score(self):
        body, ctype = self.body
        while not self.stop.is_set():
            try:
                status, headers, data, seconds = request(self.port, "POST", "/v1/score", body,
                                                         {"Content-Type": ctype}, timeout=10)
                if status != 200 and ("not_json" in refusal(status, headers, data)
                                      or "no_retry_after" in refusal(status, headers, data)):
                    status = f"{status} not the service's JSON"
            except OSError as e:
                status, seconds = type(e).__name__, 10.0
            self.scores.append((status, seconds))
            self.stop.wait(0.5)

    def __enter__(self):
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._health), threading.Thread(target=self._score)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        while time.monotonic() - self.started < self.min_s and exc[0] is None:  # a few polls even when quick
            time.sleep(0.05)
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def summary(self, score_may_be_busy=False):
        """Counts, worst times and the failures (not 200, or slower than the goal) of both.

        `score_may_be_busy`: a quick 503 for `/v1/score` is right too (an attack that fills the requests limit
        with well-formed requests; the 503 itself is checked like every refusal)."""
        slow_health = [h for h in self.health if h[0] != 200 or h[1] > HEALTH_WITHIN_S]
        ok = (200, 503) if score_may_be_busy else (200,)
        bad_scores = [s for s in self.scores if s[0] not in ok or s[1] > SCORE_WITHIN_S]
        return {"health_n": len(self.health), "health_max_ms": 1e3 * max((h[1] for h in self.health), default=0),
                "health_failed": slow_health, "score_n": len(self.scores),
                "score_max_ms": 1e3 * max((s[1] for s in self.scores), default=0), "score_failed": bad_scores}


def _drive(socks, until_s, on_tick=None):
    """Read every socket until each is closed or `until_s` passed; `on_tick(open indices)` every 0.1 s.

    Returns ({index: bytes received}, {index: seconds until closed})."""
    start, answers, closed, tick = time.monotonic(), {}, {}, 0.0
    for s in socks:
        s.setblocking(False)
    while len(closed) < len(socks) and time.monotonic() - start < until_s:
        readable, _, _ = select.select([s for i, s in enumerate(socks) if i not in closed], [], [], 0.05)
        for s in readable:
            i = socks.index(s)
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            answers[i] = answers.get(i, b"") + chunk
            if not chunk:
                closed[i] = time.monotonic() - start
        if on_tick and time.monotonic() - tick >= 0.1:
            tick = time.monotonic()
            for i in [i for i in range(len(socks)) if i not in closed]:
                try:
                    on_tick(i, socks[i])
                except OSError:
                    closed[i] = time.monotonic() - start
    for s in socks:
        s.close()
    return answers, closed


def _answers(raw_by_index):
    return [(status, refusal(status, headers, body)) for status, headers, body in
            (parse_raw(raw) for raw in raw_by_index.values() if raw)]


def slowloris(port, connections=80, limits=LIMITS):
    """`connections` connections send a never-ending header, a byte each 0.1 s, until the server closes them."""
    prefix = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    socks = [socket.create_connection((HOST, port), timeout=5) for _ in range(connections)]
    sent = {}

    def drip(i, s):
        n = sent.get(i, 0)
        s.send(prefix[n:n + 1] if n < len(prefix) else b"a")
        sent[i] = n + 1

    answers, closed = _drive(socks, limits["header_timeout"] + 5, drip)
    return {"connections": connections, "closed": len(closed), "closed_by_s": max(closed.values(), default=None),
            "answers": _answers(answers)}


def stalled_uploads(port, stalled=6, limits=LIMITS):
    """`stalled` uploads stop after their first bytes; one more drips a byte each 0.5 s (only the deadline stops it)."""
    head = (b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 100000\r\n\r\n"
            b"--x\r\nContent-Disposition: form-data; name=\"top\"; filename=\"t.jpg\"\r\n\r\n")
    socks = [socket.create_connection((HOST, port), timeout=5) for _ in range(stalled + 1)]
    for s in socks:
        s.sendall(head)
    last = [0.0]

    def drip(i, s):
        if i == stalled and time.monotonic() - last[0] >= 0.5:
            s.send(b"\xff")
            last[0] = time.monotonic()

    answers, closed = _drive(socks, limits["timeout"] + 5, drip)
    return {"stalled": stalled, "closed": len([i for i in closed if i < stalled]),
            "stalled_closed_by_s": max((closed[i] for i in closed if i < stalled), default=None),
            "stalled_answers": _answers({i: a for i, a in answers.items() if i < stalled}),
            "drip_closed_s": closed.get(stalled), "drip_answers": _answers({stalled: answers.get(stalled, b"")})}


def huge_headers(port, pid=None, header_mib=64, lines=150):
    """A `header_mib` MiB header (sent until the server answers) and a request of `lines` header lines."""
    before = rss_bytes(pid) if pid else None
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    sent, chunk = 0, b"a" * 65536
    try:
        while sent < header_mib * 2**20:
            if select.select([s], [], [], 0)[0]:
                break
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    big, _ = _drive([s], 5)
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(lines))
              + b"\r\n")
    many, _ = _drive([s], 5)
    after = rss_bytes(pid) if pid else None
    return {"sent_bytes": sent, "answers": _answers(big) + _answers(many),
            "rss_growth_mb": (after - before) / 2**20 if before and after else None}


def flat_png(w, h, colour):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


def rank_body(query, garment, n, boundary="rank"):
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"query\"; filename=\"q.png\"\r\n\r\n".encode()
             + query + b"\r\n"]
    parts += [f"--{boundary}\r\nContent-Disposition: form-data; name=\"garments\"; filename=\"g{i}.png\"\r\n\r\n"
              .encode() + garment + b"\r\n" for i in range(n)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _concurrently(port, bodies, timeout=30):
    answers, go = [None] * len(bodies), threading.Event()

    def one(i, body, ctype):
        go.wait()
        try:
            answers[i] = request(port, "POST", "/v1/rank", body, {"Content-Type": ctype}, timeout=timeout)
        except OSError as e:
            answers[i] = (type(e).__name__, {}, b"", 0.0)

    threads = [threading.Thread(target=one, args=(i, *b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(timeout + 10)
    return answers


def large_images(port, garments=(9, 9, 10)):
    """Concurrent `/v1/rank` requests of `garments` flat 4000 x 2500 PNGs each (10 MP, a few KB each)."""
    big, small = flat_png(4000, 2500, (30, 60, 160)), flat_png(52, 40, (200, 30, 40))
    answers = _concurrently(port, [rank_body(small, big, n, f"rank{i}") for i, n in enumerate(garments)])
    out = []
    for n, (status, headers, data, seconds) in zip(garments, answers):
        ok = status == 200
        out.append({"garments": n, "status": status, "seconds": round(seconds, 3),
                    "ranked": len(json.loads(data)["ranking"]) if ok else None,
                    "refusal": None if ok else refusal(status, headers, data)})
    return out


def burst(port, requests=16):
    """`requests` well-formed `/v1/rank` at once (5 flat 2000 x 2000 PNGs each): past the requests-in-progress limit."""
    big = flat_png(2000, 2000, (120, 30, 60))
    answers = _concurrently(port, [rank_body(big, big, 4, "burst")] * requests)
    return [(status, None if status == 200 else refusal(status, headers, data)) for status, headers, data, _ in
            answers]


def malformed_http(port):
    """Requests the HTTP parser refuses, and a trailing-slash path with a foreign `Host` (no redirect)."""
    out = []
    for raw in (b"GARBAGE\x00 / HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"):
        s = socket.create_connection((HOST, port), timeout=5)
        s.sendall(raw)
        answers, closed = _drive([s], 5)
        status, headers, body = parse_raw(answers.get(0, b""))
        out.append({"status": status, "closed": bool(closed), "refusal": refusal(status, headers, body)})
    status, headers, data, _ = request(port, "GET", "/v1/score/", headers={"Host": "evil.example"})
    out.append({"status": status, "closed": None, "refusal": refusal(status, headers, data),
                "location": headers.get("location")})
    return out


ATTACKS = {  # name -> (what, function(port, pid), whether the watcher's /v1/score may be answered 503 busy)
    "slowloris": ("80 connections send a header a byte each 0.1 s", lambda port, pid: slowloris(port), False),
    "stalled uploads": ("6 uploads stop, 1 drips a byte each 0.5 s", lambda port, pid: stalled_uploads(port),
                        False),
    "huge headers": ("a 64 MiB header, 150 header lines", lambda port, pid: huge_headers(port, pid), False),
    "large images": ("2 x /v1/rank of 9 flat 10 MP PNGs, 1 of 10", lambda port, pid: large_images(port), False),
    "burst": ("16 well-formed /v1/rank at once, past the requests limit", lambda port, pid: burst(port), True),
    "malformed HTTP": ("3 requests the parser refuses, /v1/score/ with a foreign Host",
                       lambda port, pid: malformed_http(port), False),
}


def run_all(port, pid=None, log=print):
    """Every attack in turn under a `Watcher`: [{"attack", "what", "result", "watch"}]."""
    out = []
    for name, (what, attack, busy_ok) in ATTACKS.items():
        with Watcher(port) as watcher:
            result = attack(port, pid)
        out.append({"attack": name, "what": what, "result": result, "watch": watcher.summary(busy_ok)})
        log(f"{name}: /healthz {out[-1]['watch']['health_n']} polls, max {out[-1]['watch']['health_max_ms']:.0f} ms; "
            f"/v1/score {out[-1]['watch']['score_n']}, max {out[-1]['watch']['score_max_ms']:.0f} ms")
    return out


def _statuses(result):
    """Every (status, refusal) the attack got, wherever its result holds them."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            if "status" in x and "refusal" in x:
                found.append((x["status"], x["refusal"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            if len(x) == 2 and (x[0] is None or isinstance(x[0], (int, str))) and (x[1] is None or isinstance(
                    x[1], dict)):
                found.append(tuple(x))
            else:
                for v in x:
                    walk(v)

    walk(result)
    return found


def not_clean(result):
    """The answers of an attack that are not the service's clean JSON (non-JSON, no Retry-After, no answer)."""
    return [(s, r) for s, r in _statuses(result) if s != 200 and (r is None or "not_json" in r or
                                                                 "no_retry_after" in r)]


def describe(result):
    """One line: the statuses an attack got, counted."""
    counts = {}
    for status, _ in _statuses(result):
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} x {s}" for s, n in sorted(counts.items(), key=lambda x: str(x[0])))


def attack_bench(model, processes=2, workers=None):
    """Start `serve` with `LIMITS`, run every attack (`run_all`), stop it; returns the observations (a dict)."""
    import os
    import tempfile

    from neipalette_tf.core.cpu_info import cpu_summary
    from neipalette_tf.serving.load_test import start_server, stop_server, wait_healthy

    with tempfile.TemporaryFile() as err:
        port, process = start_server(model, processes, workers, server_flags(), stderr=err)
        try:
            wait_healthy(port, process, processes=processes)
            attacks = run_all(port, process.pid, log=lambda *_: None)
            alive = process.poll() is None
        finally:
            stop_server(process)
        err.seek(0)
        server_log = err.read().decode(errors="replace")
    for a in attacks:
        a["answers"], a["not_clean"] = describe(a["result"]), not_clean(a["result"])
    failed = [a["attack"] for a in attacks if a["watch"]["health_failed"] or a["watch"]["score_failed"]
              or a["not_clean"] or a["watch"]["health_n"] == 0 or a["watch"]["score_n"] == 0]
    return {"model": model, "processes": processes, "limits": LIMITS, "attacks": attacks, "server_alive": alive,
            "server_tracebacks": server_log.count("Traceback"), "failed": failed,
            "cpu": cpu_summary(as_dict=True), "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
