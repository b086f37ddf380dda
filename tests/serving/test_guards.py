"""`neipalette_tf.serving.guards`: the ASGI guards driven directly, with hand-made `receive` / `send`.

`RequestGuard(BodyLimit(app))` is the service's order (app.py): the slot
accounting of requests in flight (counted once the body is whole, freed
however the request ends), the whole-request deadline, the body's pace,
the body size, and the refusals' bytes (compact JSON, `Retry-After` on
429/503 only, never exception text). The served checks with a real model
are tests/serving/test_refusals.py and test_hostile.py.
"""

import asyncio
import json

import pytest

from neipalette_tf.serving.guards import (
    RETRY_AFTER_S,
    BodyLimit,
    HTTPError,
    RequestGuard,
    error_body,
    error_headers,
    send_error,
)


def scope(path="/v1/score", headers=()):
    return {"type": "http", "path": path, "method": "POST", "headers": list(headers)}


class Client:
    """An ASGI client side: `receive` hands out body pieces (waiting on `gate` first), `send` records."""

    def __init__(self, pieces=(b"body",), gate=None):
        self.pieces = list(pieces)
        self.gate = gate  # an asyncio.Event the body waits for, or None
        self.sent = []

    async def receive(self):
        if self.gate is not None:
            await self.gate.wait()
        if not self.pieces:  # the body was read: what a server gives next is a disconnect, eventually
            await asyncio.sleep(3600)
        piece = self.pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(self.pieces)}

    async def send(self, message):
        self.sent.append(message)

    @property
    def status(self):
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    @property
    def headers(self):
        return dict(next(m["headers"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def json(self):
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


def reading_app(hold=None, seen=None):
    """An app that reads the whole body, then waits for `hold` (an asyncio.Event), then answers 200."""

    async def app(scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if seen is not None:
            seen.append(body)
        if hold is not None:
            await hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def guarded(app, max_in_flight=2, timeout=5.0, body_timeout=1.0, limit=1000):
    guard = RequestGuard(BodyLimit(app, limit), max_in_flight=max_in_flight, timeout=timeout,
                         body_timeout=body_timeout)
    return guard


def test_error_body_and_headers_are_compact_json_with_retry_after_only_when_busy():
    body = error_body('a "quoted" message', "top")
    assert body == b'{"error":"a \\"quoted\\" message","field":"top"}' and json.loads(body)["field"] == "top"
    assert json.loads(error_body("x")) == {"error": "x", "field": None}
    for status in (400, 408, 413, 422, 429, 503):
        headers = dict(error_headers(status, len(body)))
        assert headers[b"content-type"] == b"application/json" and headers[b"connection"] == b"close"
        assert headers[b"content-length"] == str(len(body)).encode()
        assert (b"retry-after" in headers) == (status in (429, 503)), status
        if status in (429, 503):
            assert headers[b"retry-after"] == str(RETRY_AFTER_S).encode() and RETRY_AFTER_S >= 1

    client = Client()
    asyncio.run(send_error(client.send, 413, "too big", "body"))
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.status == 413 and client.json == {"error": "too big", "field": "body"}
    assert int(client.headers[b"content-length"]) == len(client.sent[1]["body"])


def test_http_error_carries_status_message_and_field():
    e = HTTPError(422, "k: not an integer", "k")
    assert (e.status, e.message, e.field, str(e)) == (422, "k: not an integer", "k", "k: not an integer")


def test_a_slot_is_taken_only_once_the_body_is_whole_and_one_more_request_is_a_json_503():
    async def scenario():
        hold, gate = asyncio.Event(), asyncio.Event()
        guard = guarded(reading_app(hold), max_in_flight=1)
        first = Client([b"a"])
        uploading = Client([b"b", b"c"], gate=gate)  # its body has not arrived yet
        tasks = [asyncio.create_task(guard(scope(), first.receive, first.send)),
                 asyncio.create_task(guard(scope(), uploading.receive, uploading.send))]
        await asyncio.sleep(0.05)
        assert guard.in_flight == 1  # the first, whose body is whole; the upload in progress takes no slot
        gate.set()  # the second one's body arrives whole: no slot left
        await asyncio.sleep(0.05)
        assert uploading.sent and uploading.status == 503, uploading.sent
        assert "busy" in uploading.json["error"] and uploading.json["field"] is None
        assert uploading.headers[b"retry-after"] == b"1" and uploading.headers[b"connection"] == b"close"
        assert guard.in_flight == 1  # the refused one did not count
        hold.set()
        await asyncio.gather(*tasks)
        assert first.status == 200 and guard.in_flight == 0
        again = Client([b"d"])  # the freed slot serves the next request
        await guard(scope(), again.receive, again.send)
        assert again.status == 200 and guard.in_flight == 0

    asyncio.run(scenario())


def test_exempt_paths_pass_when_every_slot_is_taken_and_are_not_counted():
    async def scenario():
        hold = asyncio.Event()
        guard = guarded(reading_app(hold), max_in_flight=1)
        busy = Client([b"a"])
        task = asyncio.create_task(guard(scope(), busy.receive, busy.send))
        await asyncio.sleep(0.05)
        health = Client([b""])
        health_task = asyncio.create_task(guard(scope("/healthz"), health.receive, health.send))
        await asyncio.sleep(0.05)
        assert guard.in_flight == 1 and not health.sent  # waiting on `hold` like the app does, not refused
        hold.set()
        await asyncio.gather(task, health_task)
        assert busy.status == health.status == 200 and guard.in_flight == 0

    asyncio.run(scenario())


def test_the_whole_request_deadline_answers_503_and_frees_the_slot():
    async def scenario():
        never = asyncio.Event()
        guard = guarded(reading_app(never), max_in_flight=1, timeout=0.2)
        client = Client([b"a"])
        started = asyncio.get_running_loop().time()
        await guard(scope(), client.receive, client.send)
        took = asyncio.get_running_loop().time() - started
        assert 0.15 < took < 2, took
        assert client.status == 503 and "longer than 0.2 s" in client.json["error"]
        assert client.headers[b"retry-after"] == b"1" and guard.in_flight == 0

    asyncio.run(scenario())


def test_a_deadline_after_the_answer_started_sends_no_second_answer():
    async def slow_body(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(10)  # the body never follows

    async def scenario():
        guard = guarded(slow_body, max_in_flight=1, timeout=0.1)
        client = Client([b"a"])
        await guard(scope(), client.receive, client.send)
        starts = [m for m in client.sent if m["type"] == "http.response.start"]
        assert [m["status"] for m in starts] == [200] and guard.in_flight == 0  # unfinished: the server closes

    asyncio.run(scenario())


def test_an_app_error_frees_the_slot_and_reaches_the_server():
    async def failing(scope, receive, send):
        await receive()
        raise RuntimeError("boom")

    async def scenario():
        guard = guarded(failing, max_in_flight=1)
        client = Client([b"a"])
        with pytest.raises(RuntimeError):
            await guard(scope(), client.receive, client.send)
        assert guard.in_flight == 0

    asyncio.run(scenario())


def test_a_stalled_body_is_a_json_408_naming_the_body():
    async def scenario():
        guard = guarded(reading_app(), body_timeout=0.1)
        stalled = Client([b"first", b"second"])
        stalled.pieces.insert(1, None)  # after the first piece, nothing comes

        async def receive():
            piece = stalled.pieces.pop(0)
            if piece is None:
                await asyncio.sleep(3600)
            return {"type": "http.request", "body": piece, "more_body": True}

        await guard(scope(), receive, stalled.send)
        assert stalled.status == 408 and stalled.json["field"] == "body"
        assert "nothing arrived for 0.1 s" in stalled.json["error"] and b"retry-after" not in stalled.headers
        assert guard.in_flight == 0

    asyncio.run(scenario())


def test_body_limit_refuses_a_declared_or_streamed_body_above_the_limit():
    async def scenario():
        seen = []
        guard = guarded(reading_app(seen=seen), limit=10)
        declared = Client([b"x"])
        await guard(scope(headers=[(b"content-length", b"11")]), declared.receive, declared.send)
        assert declared.status == 413 and "11 bytes is above the limit of 10" in declared.json["error"]
        assert seen == []  # refused from the headers: the app never ran
        streamed = Client([b"123456", b"78901"])  # no length declared; 11 bytes arrive
        await guard(scope(), streamed.receive, streamed.send)
        assert streamed.status == 413 and streamed.json["field"] == "body" and seen == []
        at_limit = Client([b"12345", b"67890"])
        await guard(scope(headers=[(b"content-length", b"10")]), at_limit.receive, at_limit.send)
        assert at_limit.status == 200 and seen == [b"1234567890"] and guard.in_flight == 0

    asyncio.run(scenario())


def test_non_http_scopes_pass_through_untouched():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    guard = guarded(app, max_in_flight=0)  # no slot at all: a lifespan or websocket scope is still passed on
    asyncio.run(guard({"type": "lifespan"}, None, None))
    assert calls == ["lifespan"] and guard.in_flight == 0
