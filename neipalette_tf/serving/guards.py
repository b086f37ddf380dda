"""ASGI guards of the web service: each request's whole time, its body's pace and size, the requests in flight.

Server-independent (pure ASGI), so they hold under FastAPI's test client as
under uvicorn; the connection-level bounds (headers, idle connections) are
in `neipalette_tf.serving.server`. Every refusal is the service's JSON
error, `{"error": "...", "field": "..."}`, and closes the connection (a
refused request's body may be unread).
"""

import asyncio
import json

RETRY_AFTER_S = 1  # what a 503 asks the client to wait (Retry-After header)


class HTTPError(Exception):
    """An answer with a status, a message and the offending field."""

    def __init__(self, status, message, field=None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error_body(message, field=None):
    return json.dumps({"error": message, "field": field}, separators=(",", ":")).encode()


def error_headers(status, length):
    """The headers of a refusal: JSON, connection closed, `Retry-After` on 503."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(length).encode()),
               (b"connection", b"close")]
    if status in (429, 503):
        headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
    return headers


async def send_error(send, status, message, field=None):
    """Answer a refusal through an ASGI `send` (the response must not have started)."""
    body = error_body(message, field)
    await send({"type": "http.response.start", "status": status, "headers": error_headers(status, len(body))})
    await send({"type": "http.response.body", "body": body})


class BodyStalled(HTTPError):
    """The client stopped sending the request body (raised from `receive`)."""


class RequestGuard:
    """Outermost ASGI middleware: bounds every request but the exempt paths (`/healthz`).

    - a request's whole time (its body's upload, decoding, the model) is
      bounded by `timeout` seconds: past it the request is cancelled,
      answered 503 and its slot freed;
    - the body must keep coming: no gap over `body_timeout` seconds between
      two of its pieces (408);
    - at most `max_in_flight` requests in progress at once in this process,
      counted from the moment their body has arrived whole until they are
      answered; one more is answered 503 (with `Retry-After`) then. Uploads
      still streaming in are not counted, so slow or stalled uploads cannot
      take the slots of complete requests: they are bounded by the two
      time limits above and by the server's connection limit.
    """

    def __init__(self, app, max_in_flight, timeout, body_timeout, exempt=("/healthz",)):
        self.app, self.max_in_flight, self.timeout, self.body_timeout = app, max_in_flight, timeout, body_timeout
        self.exempt = frozenset(exempt)
        self.in_flight = 0

    def _admit(self):
        if self.in_flight >= self.max_in_flight:
            raise HTTPError(503, f"busy: {self.max_in_flight} requests are in progress in this server process; "
                                 "try again", None)
        self.in_flight += 1

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            return await self.app(scope, receive, send)
        started = counted = body_done = False

        async def guarded_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def guarded_receive():
            nonlocal body_done, counted
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                raise BodyStalled(408, f"the request body stalled: nothing arrived for {self.body_timeout:g} s",
                                  "body") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
                if message["type"] == "http.request":
                    self._admit()  # raises 503 when full; the app answers it like any refusal
                    counted = True
            return message

        try:
            if hasattr(asyncio, "timeout"):  # Python 3.11+: the request runs in its own task, bounded
                async with asyncio.timeout(self.timeout):
                    await self.app(scope, guarded_receive, guarded_send)
            else:  # pragma: no cover - Python 3.10
                await asyncio.wait_for(self.app(scope, guarded_receive, guarded_send), self.timeout)
        except (TimeoutError, asyncio.TimeoutError):
            if not started:
                await send_error(send, 503, f"the request took longer than {self.timeout:g} s (upload, decoding "
                                            "and model together); try again", None)
            # else: the answer was under way; returning unfinished makes the server close the connection
        finally:
            if counted:
                self.in_flight -= 1


class BodyLimit:
    """ASGI middleware: refuse a request body above `limit` bytes (declared or streamed) with 413."""

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await send_error(send, 413, f"request body of {int(declared)} bytes is above the limit of "
                                               f"{self.limit} bytes", "body")
        seen = 0
        started = False

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPError(413, f"request body above the limit of {self.limit} bytes", "body")
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched_send)
        except HTTPError as e:  # raised while the body streamed in (413, or 408 from RequestGuard)
            if started:
                raise
            await send_error(send, e.status, e.message, e.field)
