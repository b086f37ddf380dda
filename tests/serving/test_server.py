"""`neipalette_tf.serving.server`: the guarded HTTP protocol in process, against a trivial ASGI app.

A `uvicorn.Server` with `http=GuardedHttpToolsProtocol` runs in a thread of
this process on a socket bound to 127.0.0.1 port 0, with small limits (set
through `CONNECTION_LIMITS_ENV`, as `serve` passes them to each process), and
raw sockets check the connection-level contract one rule at a time: the
header count and size limits (431), a malformed request (400), the header
timeout (408, or a plain close when nothing came), the connection limit
(the longest-idle connection closed; 503 when every one is busy). Every
refusal is the service's JSON error with `Connection: close`, and the
connection is closed after it. The served end-to-end attacks (two
processes, a real model) are tests/serving/test_hostile.py.
"""

import asyncio
import json
import socket
import threading
import time

import pytest

pytest.importorskip("httptools")
uvicorn = pytest.importorskip("uvicorn")

from neipalette_tf.serving import server as guarded  # noqa: E402

LIMITS = {"header_timeout_s": 0.6, "keep_alive_timeout_s": 5.0, "max_header_bytes": 600, "max_headers": 6,
          "max_connections": 3}


async def tiny_app(scope, receive, send):
    """Reads the body, answers 200 "ok"; `/hold` first waits until the test releases it."""
    assert scope["type"] == "http"
    if scope["path"] == "/hold":
        HELD.append(scope["path"])
        deadline = time.monotonic() + 5
        while not RELEASE.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


HELD = []
RELEASE = threading.Event()


@pytest.fixture(scope="module")
def served():
    """(port, uvicorn.Server) serving `tiny_app` with the guarded protocol and `LIMITS`, in a thread."""
    saved = guarded.GuardedHttpToolsProtocol._limits, guarded.GuardedHttpToolsProtocol._table
    mp = pytest.MonkeyPatch()
    mp.setenv(guarded.CONNECTION_LIMITS_ENV, json.dumps(LIMITS))
    mp.delenv("NEIPALETTE_SERVE_BALANCE", raising=False)
    guarded.GuardedHttpToolsProtocol._limits = None  # read again from the environment, as in a new process
    guarded.GuardedHttpToolsProtocol._table = False
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(tiny_app, http=guarded.GuardedHttpToolsProtocol, ws="none", lifespan="off",
                            log_level="critical", limit_concurrency=None, server_header=False,
                            timeout_keep_alive=LIMITS["keep_alive_timeout_s"], timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the server did not start"
    try:
        yield sock.getsockname()[1], server
    finally:
        RELEASE.set()
        server.should_exit = True
        thread.join(5)
        sock.close()
        guarded.GuardedHttpToolsProtocol._limits, guarded.GuardedHttpToolsProtocol._table = saved
        mp.undo()


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.settimeout(3)
    return s


def read_until_closed(s, within=3.0):
    """Everything the server sends until it closes the connection; fails if it stays open `within` s."""
    data, deadline = b"", time.monotonic() + within
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            pytest.fail(f"the server kept the connection open for {within} s; got {data[:300]!r}")
        except ConnectionResetError:
            pytest.fail(f"the connection was reset (the answer may be lost); got {data[:300]!r}")
        if not chunk:
            return data
        data += chunk


def parse(raw):
    """(status, {header: value}, body) of one HTTP/1.1 answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def assert_json_refusal(raw, status, field, words):
    got, headers, body = parse(raw)
    assert got == status, raw[:400]
    assert headers["content-type"] == "application/json" and headers["connection"] == "close", headers
    assert int(headers["content-length"]) == len(body)
    answer = json.loads(body)
    assert answer == {"error": answer["error"], "field": field} and words in answer["error"], answer
    assert "Traceback" not in answer["error"] and "Error" not in answer["error"]
    return answer


def wait_no_connections(server, within=3.0):
    """Until the server has dropped every connection of an earlier test (each test starts from none)."""
    deadline = time.monotonic() + within
    while server.server_state.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.server_state.connections, "connections of an earlier test are still open"


def test_connection_limits_reads_the_environment_over_the_defaults(monkeypatch):
    monkeypatch.delenv(guarded.CONNECTION_LIMITS_ENV, raising=False)
    assert guarded.connection_limits() == guarded.DEFAULT_CONNECTION_LIMITS
    assert guarded.connection_limits() is not guarded.DEFAULT_CONNECTION_LIMITS  # a copy: callers may change it
    monkeypatch.setenv(guarded.CONNECTION_LIMITS_ENV, json.dumps({"max_headers": 7, "header_timeout_s": 1.5}))
    limits = guarded.connection_limits()
    assert limits["max_headers"] == 7 and limits["header_timeout_s"] == 1.5
    assert limits["max_connections"] == guarded.DEFAULT_CONNECTION_LIMITS["max_connections"]  # the rest: defaults
    monkeypatch.setenv(guarded.CONNECTION_LIMITS_ENV, "")
    assert guarded.connection_limits() == guarded.DEFAULT_CONNECTION_LIMITS


def test_the_protocol_took_its_limits_from_the_environment(served):
    port, server = served
    wait_no_connections(server)
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, body = parse(read_until_closed(s))
    assert (status, body) == (200, b"ok") and "server" not in headers
    assert guarded.GuardedHttpToolsProtocol._limits == LIMITS
    assert guarded.GuardedHttpToolsProtocol._table is None  # one process: no balancing table


def test_more_header_lines_than_the_limit_are_a_json_431_and_closed(served):
    port, server = served
    wait_no_connections(server)
    ok = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(LIMITS["max_headers"])) + b"\r\n"
    too_many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(LIMITS["max_headers"] + 1)) + b"\r\n"
    with connect(port) as s:
        s.sendall(ok)  # exactly at the limit: served, and the connection stays open for the next request
        assert read_answer(s)[0] == 200
        s.sendall(too_many)
        assert_json_refusal(read_until_closed(s), 431, "headers", f"more than {LIMITS['max_headers']} request headers")


def test_header_bytes_above_the_limit_are_a_json_431_and_closed(served):
    port, server = served
    wait_no_connections(server)
    with connect(port) as s:  # one long header value, sent whole
        s.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (LIMITS["max_header_bytes"] + 1) + b"\r\n\r\n")
        assert_json_refusal(read_until_closed(s), 431, "headers", f"limit of {LIMITS['max_header_bytes']} bytes")
    with connect(port) as s:  # a header that never ends: cut at the limit, without waiting for its end
        s.sendall(b"GET / HTTP/1.1\r\nX-Endless: " + b"a" * (LIMITS["max_header_bytes"] + 50))
        assert_json_refusal(read_until_closed(s), 431, "headers", "limit")  # not the header timeout's 408


@pytest.mark.parametrize("request_line", [b"NOT A REQUEST\r\n\r\n", b"GET / HTTP/9\x00\r\n\r\n",
                                          b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"])
def test_a_malformed_request_is_a_json_400_and_closed(served, request_line):
    port, server = served
    wait_no_connections(server)
    with connect(port) as s:
        s.sendall(request_line)
        assert_json_refusal(read_until_closed(s), 400, None, "malformed HTTP request")


def test_headers_that_do_not_arrive_in_time_are_a_json_408(served):
    port, server = served
    wait_no_connections(server)
    with connect(port) as silent, connect(port) as partial:
        started = time.monotonic()
        partial.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        raw = read_until_closed(partial, within=LIMITS["header_timeout_s"] + 2)
        waited = time.monotonic() - started
        assert read_until_closed(silent) == b""  # a connection that sent nothing is closed without an answer
    assert_json_refusal(raw, 408, "headers", f"within {LIMITS['header_timeout_s']:g} s")
    assert LIMITS["header_timeout_s"] - 0.1 < waited < LIMITS["header_timeout_s"] + 1.5, waited


def read_answer(s):
    """One answer on a kept-alive connection (headers and `content-length` bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            parse(data)[1].get("content-length", 0)):
        chunk = s.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return parse(data)


def test_past_the_connection_limit_the_longest_idle_connection_is_closed(served):
    port, server = served
    wait_no_connections(server)
    idle = []
    try:
        for _ in range(LIMITS["max_connections"]):  # kept alive after one request each: idle, no header timer
            s = connect(port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(s)[::2] == (200, b"ok")
            idle.append(s)
            time.sleep(0.05)  # distinct waiting times: the first one has waited longest
        with connect(port) as newest:
            assert read_until_closed(idle[0]) == b""  # closed without an answer, well before its keep-alive time
            newest.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert parse(read_until_closed(newest))[::2] == (200, b"ok")
        for s in idle[1:]:  # the others were kept
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(s)[0] == 200
    finally:
        for s in idle:
            s.close()


def test_when_every_connection_is_busy_a_new_one_gets_a_json_503(served):
    port, server = served
    wait_no_connections(server)
    HELD.clear()
    RELEASE.clear()
    busy = []
    try:
        for _ in range(LIMITS["max_connections"]):
            s = connect(port)
            s.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            busy.append(s)
        deadline = time.monotonic() + 3
        while len(HELD) < len(busy) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(HELD) == len(busy)  # every connection has a request in progress
        with connect(port) as extra:
            raw = read_until_closed(extra)
        assert_json_refusal(raw, 503, None, f"limit {LIMITS['max_connections']} per server process")
        assert parse(raw)[1]["retry-after"] == "1"
        RELEASE.set()  # the busy requests were not cut: each is answered
        for s in busy:
            assert parse(read_until_closed(s))[::2] == (200, b"ok")
    finally:
        RELEASE.set()
        for s in busy:
            s.close()
