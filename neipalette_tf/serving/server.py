"""The web service's connections, bounded like a production front end: uvicorn with a guarded HTTP protocol.

uvicorn bounds the keep-alive time of an idle connection (`timeout_keep_alive`)
but nothing else at the connection level: a client that never finishes its
request line and headers, or sends one huge header, holds a connection and
the parser's memory for as long as it likes, and uvicorn's own concurrency
limit counts such connections (answering plain-text 503s once they are
many). `GuardedHttpToolsProtocol` is uvicorn's httptools protocol
(written against uvicorn 0.54) with:

- a header-read timeout: the request line and headers must have arrived
  `header_timeout` seconds after the connection opened (or after the first
  byte of the next request on a kept-alive connection), else 408 and closed;
- a header size limit: request line + header names and values above
  `max_header_bytes` (bytes buffered before the headers end count too, so a
  never-ending header is cut there), or more than `max_headers` header
  lines: 431, closed;
- a connection limit: past `max_connections` open connections in a
  process, the connection that has waited longest without a request in
  progress (reading headers or idle between requests) is closed, or when
  there is none the one that has been uploading a request body longest;
  when every connection has a request in progress the new one is answered 503;
- every refusal it writes itself (these, and a malformed request: 400) is
  the service's JSON error;
- a lingering close: a connection closed while the client may still be
  sending (a refusal before the body was read) first sends its answer and
  a FIN, then reads and drops what still comes for up to `LINGER_S`
  seconds or `LINGER_BYTES` bytes, as nginx does: closing with unread
  data would send a reset, and the client's system may drop the answer.

With `--processes N`, kept-alive connections are evened out across the
processes (`neipalette_tf.serving.balance`): a process over its share
answers a request with `Connection: close`, and the client reconnects.

Requests in flight, each request's whole time and its body's pace are
bounded in the app (`neipalette_tf.serving.guards.RequestGuard`).
The limits reach each server process through `CONNECTION_LIMITS_ENV`.
"""

import http
import json
import os

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from neipalette_tf.serving.balance import ConnectionTable, shared_table
from neipalette_tf.serving.guards import error_body, error_headers

CONNECTION_LIMITS_ENV = "NEIPALETTE_SERVE_CONNECTIONS"
DEFAULT_CONNECTION_LIMITS = {
    "header_timeout_s": 10.0,      # request line + headers must arrive within this
    "keep_alive_timeout_s": 5.0,   # an idle kept-alive connection is closed after this
    "max_header_bytes": 16384,     # request line + header names and values
    "max_headers": 100,            # header lines per request
    "max_connections": 256,        # open connections per server process
}


LINGER_S = 2.0
LINGER_BYTES = 1 << 20


def connection_limits():
    """The limits of this process: `DEFAULT_CONNECTION_LIMITS` updated from `CONNECTION_LIMITS_ENV` (JSON)."""
    limits = dict(DEFAULT_CONNECTION_LIMITS)
    limits.update(json.loads(os.environ.get(CONNECTION_LIMITS_ENV) or "{}"))
    return limits


def _status_line(status):
    return f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode("ascii")


class _LingeringTransport:
    """The transport a request's cycle writes to: its `close()` is the protocol's lingering close."""

    def __init__(self, protocol):
        self._protocol, self._transport = protocol, protocol.transport

    def close(self):
        self._protocol._linger_close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that broke a limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout, header limits and a connection limit (module doc)."""

    _limits = None  # read once per process
    _table = False  # this process's slot in the connection table (None: unbalanced), claimed once

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if GuardedHttpToolsProtocol._limits is None:
            GuardedHttpToolsProtocol._limits = connection_limits()
        if GuardedHttpToolsProtocol._table is False:
            GuardedHttpToolsProtocol._table = ConnectionTable.from_env()
        self.limits = GuardedHttpToolsProtocol._limits
        self.table = GuardedHttpToolsProtocol._table
        self._asked_to_close = False  # answered with `Connection: close` to even out the processes
        self._header_timer = None
        self._awaiting_headers = True
        self._header_raw = 0     # bytes received while the current request's headers were incomplete
        self._header_size = 0    # the request line (URL) and header names and values, as parsed
        self._header_count = 0
        self._refusal = None     # (status, message, field) set by a parser callback before it raises
        self._waiting_since = self.loop.time()
        self._lingering = False
        self._lingered = 0
        self._linger_timer = None

    # -- connection ---------------------------------------------------------------------------------------

    def connection_made(self, transport):
        super().connection_made(transport)
        if self.table is not None:
            self.table.opened()
        self._waiting_since = self.loop.time()
        self._arm_header_timer()
        if len(self.connections) > self.limits["max_connections"]:
            self._make_room()

    def connection_lost(self, exc):
        self._cancel_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        if self.table is not None:
            self.table.closed(self._asked_to_close)
        super().connection_lost(exc)

    def _linger_close(self):
        """Close; when the client may still be sending, after a FIN and `LINGER_S` of reading (module doc)."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        self._cancel_header_timer()
        if self._awaiting_headers and not self._header_raw:  # the request was read whole; nothing pending
            transport.close()
            return
        self._lingering = True
        self._unset_keepalive_if_required()
        try:
            if transport.can_write_eof():
                transport.write_eof()
            transport.resume_reading()
        except Exception:  # noqa: BLE001 - a transport that cannot half-close: close it
            transport.close()
            return
        self._linger_timer = self.loop.call_later(LINGER_S, transport.close)

    def _idle(self):
        """No request in progress: reading the next request's headers, or idle between requests."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _uploading(self):
        """A request whose body is still streaming in (its app waits for it)."""
        return self.cycle is not None and not self.cycle.response_complete and self.cycle.more_body

    def _make_room(self):
        """Past `max_connections`: close the connection that has waited longest without a request in progress,
        else the oldest one still uploading its request body, else refuse this one (503)."""
        others = [c for c in self.connections if c is not self and isinstance(c, GuardedHttpToolsProtocol)
                  and c.transport is not None and not c.transport.is_closing()]
        idle = [c for c in others if c._idle()]
        uploading = [c for c in others if not idle and c._uploading()]
        if idle or uploading:
            oldest = min(idle or uploading, key=lambda c: c._waiting_since)
            oldest._cancel_header_timer()
            oldest.transport.close()
        else:
            self._refuse(503, f"too many open connections (limit {self.limits['max_connections']} per server "
                              "process); try again", None)

    # -- header timeout -----------------------------------------------------------------------------------

    def _arm_header_timer(self):
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.limits["header_timeout_s"], self._header_timed_out)

    def _cancel_header_timer(self):
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self):
        self._header_timer = None
        if self.transport is None or self.transport.is_closing() or not self._awaiting_headers:
            return
        if not self._idle():  # a pipelined request's headers, behind one still being answered: wait for it
            self._arm_header_timer()
            return
        if self._header_raw:
            self._refuse(408, f"the request headers did not arrive within {self.limits['header_timeout_s']:g} s",
                         "headers")
        else:
            self.transport.close()  # nothing sent: just close, as for an idle keep-alive connection

    # -- parsing --------------------------------------------------------------------------------------------

    def data_received(self, data):
        if self._lingering:  # answered and half-closed: drop what still comes, up to LINGER_BYTES
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        if self._awaiting_headers:
            if self._header_timer is None:  # the first bytes of a request on a kept-alive connection
                self._arm_header_timer()
            self._header_raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(*(self._refusal or (400, "malformed HTTP request", None)))
            return
        if self._awaiting_headers and self._header_raw > self.limits["max_header_bytes"]:
            self._refuse(431, f"request headers above the limit of {self.limits['max_header_bytes']} bytes",
                         "headers")

    def _count(self, size, lines=0):
        self._header_size += size
        self._header_count += lines
        if self._header_size > self.limits["max_header_bytes"]:
            self._refusal = (431, f"request headers above the limit of {self.limits['max_header_bytes']} bytes",
                             "headers")
            raise _Refused
        if self._header_count > self.limits["max_headers"]:
            self._refusal = (431, f"more than {self.limits['max_headers']} request headers", "headers")
            raise _Refused

    def on_url(self, url):
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name, value):
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self):
        self._cancel_header_timer()
        self._awaiting_headers = False
        self._waiting_since = self.loop.time()  # for `_make_room`: since when its body has been streaming
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _LingeringTransport(self)
            if (self.table is not None and self.cycle.keep_alive and not self._asked_to_close
                    and self.table.should_close()):
                self.cycle.keep_alive = False  # over this process's share: the client reconnects
                self._asked_to_close = True

    def on_message_complete(self):
        super().on_message_complete()
        self._awaiting_headers = True
        self._header_raw = self._header_size = self._header_count = 0

    def on_response_complete(self):
        if self._lingering:  # answered with connection: close; no pipelined request, no keep-alive
            self.server_state.total_requests += 1
            return
        super().on_response_complete()
        self._waiting_since = self.loop.time()

    # -- refusals ---------------------------------------------------------------------------------------------

    def _refuse(self, status, message, field=None):
        """Answer a refusal in JSON and close (or only close, when an answer is already under way)."""
        self._cancel_header_timer()
        if self.transport is None or self.transport.is_closing():
            return
        if not self._idle():
            self.transport.close()
            return
        body = error_body(message, field)
        head = [_status_line(status)]
        for name, value in list(self.server_state.default_headers) + error_headers(status, len(body)):
            head += [name, b": ", value, b"\r\n"]
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self._linger_close()

    def send_400_response(self, msg):  # uvicorn's plain-text 400, wherever it is still called from
        self._refuse(400, "malformed HTTP request", None)


def run(app, host, port, processes, limits, factory=False):
    """Serve `app` (an ASGI app, or with `factory` the import string of a factory) with the bounded protocol.

    `limits`: `DEFAULT_CONNECTION_LIMITS`' keys (missing ones keep their default).
    """
    limits = {**DEFAULT_CONNECTION_LIMITS, **limits}
    os.environ[CONNECTION_LIMITS_ENV] = json.dumps(limits)  # read by each process's protocol (spawned: inherited)
    GuardedHttpToolsProtocol._limits = None
    server = {"host": host, "port": port, "log_level": "warning", "http": GuardedHttpToolsProtocol, "ws": "none",
              "limit_concurrency": None,  # requests in flight are bounded in the app (RequestGuard), not connections
              "timeout_keep_alive": limits["keep_alive_timeout_s"],
              "h11_max_incomplete_event_size": limits["max_header_bytes"], "server_header": False}
    if processes == 1:
        uvicorn.run(app, **server)
    else:
        with shared_table(processes):  # read by each process's protocol through BALANCE_ENV
            uvicorn.run(app, factory=factory, workers=processes, **server)
