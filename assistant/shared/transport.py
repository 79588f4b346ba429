"""HTTP/1 limits for both Sanic servers (the Rasa server and the action server).

Sanic 21.12 (the version Rasa 3.6 pins) has three gaps that let one client take
a worker, and with two requests the whole bot, down:

* **Request framing.** A `Content-Length` that is negative (`-1`), not a number,
  or sent together with `Transfer-Encoding` makes its body reader loop without
  ever waiting: two such requests held both workers at 100% CPU and no visitor
  got an answer until they were killed (issue 16). Sanic fixed it in 24.6 (PR
  #2979 and its companion that refuses a second Content-Length/Transfer-Encoding);
  21.12 never got the fix. Here the request object Sanic builds from the header
  (`app.request_class`, created before the body's length is read) checks the
  framing first: anything but one plain decimal Content-Length or one
  `Transfer-Encoding: chunked` is a 400 and the connection is closed.
* **Slow clients.** Sanic's request and response timeouts restart with every
  byte received, so a client that sends one byte every few seconds (slowloris)
  keeps a connection, and its share of the worker, forever. Here the header
  must be complete `HTTP_HEADER_TIMEOUT` seconds after its first byte and the
  body `HTTP_BODY_TIMEOUT` seconds after the header (408, connection closed);
  an idle keep-alive connection is closed after `HTTP_KEEP_ALIVE_TIMEOUT`
  (Rasa sets 120 s).
* **Connection count.** Nothing caps open connections. Here a worker with
  `HTTP_MAX_CONNECTIONS` open refuses the next one at once with a 503 and
  `Retry-After`, instead of queueing visitors behind a flood of idle sockets.

The cost is a few microseconds a request (the framing check: 3.3 us, measured
with timeit on a typical webhook header), against 7 ms for a turn at p50.

Defaults: a message body is at most 64 KB (SANIC_REQUEST_MAX_SIZE) and in
practice under 2 KB, so 10 s for each part leaves a slow phone line (a 2G
connection moves 64 KB in about 6 s) room, while a slowloris client is cut off
after 10-20 s. 100 connections per worker is twice the benchmark's 50
simultaneous visitors on one worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from assistant.shared.patching import check_version, replace

logger = logging.getLogger(__name__)

HEADER_TIMEOUT_ENV = "HTTP_HEADER_TIMEOUT"
BODY_TIMEOUT_ENV = "HTTP_BODY_TIMEOUT"
KEEP_ALIVE_TIMEOUT_ENV = "HTTP_KEEP_ALIVE_TIMEOUT"
MAX_CONNECTIONS_ENV = "HTTP_MAX_CONNECTIONS"

BUSY_BODY = b'{"error": "The assistant is busy. Please try again in a moment."}'
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(BUSY_BODY)).encode() + b"\r\n\r\n" + BUSY_BODY
)
BUSY_LOG_INTERVAL_SECONDS = 60  # one warning a minute per worker, not one per refused connection
MAX_CONTENT_LENGTH_DIGITS = 18  # anything longer is far over any size limit anyway


@dataclass(frozen=True)
class TransportLimits:
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: float = 15.0
    max_connections: int = 100

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> TransportLimits:
        """The limits from the environment; a bad value stops start-up with its name."""
        env = os.environ if env is None else env
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(name) or str(default)
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not value > 0:
                raise ValueError(f"{name} must be a number of seconds above 0, not {raw!r}")
            return value

        raw_max = env.get(MAX_CONNECTIONS_ENV) or str(defaults.max_connections)
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise ValueError(f"{MAX_CONNECTIONS_ENV} must be a whole number of at least 1, not {raw_max!r}")
        return cls(header_timeout=number(HEADER_TIMEOUT_ENV, defaults.header_timeout),
                   body_timeout=number(BODY_TIMEOUT_ENV, defaults.body_timeout),
                   keep_alive_timeout=number(KEEP_ALIVE_TIMEOUT_ENV, defaults.keep_alive_timeout),
                   max_connections=int(raw_max))


def framing_problem(headers: Any) -> Optional[str]:
    """Why a request's body framing is refused (RFC 9112 section 6), or None.

    Accepted: no framing header, one Content-Length of plain ASCII digits, or one
    `Transfer-Encoding: chunked` (the only coding Sanic reads)."""
    lengths = headers.getall("content-length", [])
    codings = headers.getall("transfer-encoding", [])
    if len(lengths) + len(codings) > 1:
        return "Bad Request: more than one Content-Length or Transfer-Encoding"
    if lengths:
        value = lengths[0].strip()
        if not (value.isascii() and value.isdigit()) or len(value) > MAX_CONTENT_LENGTH_DIGITS:
            return "Bad Request: bad Content-Length"
    if codings and codings[0].strip() != "chunked":
        return "Bad Request: unsupported Transfer-Encoding"
    return None


def _framing_checked_request_class() -> type:
    from sanic.exceptions import InvalidUsage
    from sanic.request import Request

    class FramingCheckedRequest(Request):
        """Sanic's Request, refused (400, then the connection closes) when its
        framing is bad. Sanic 21.12 builds it from the header before it reads
        the body's length, in Http.http1_request_header."""

        __slots__ = ()

        def __init__(self, url_bytes: bytes, headers: Any, *args: Any, **kwargs: Any) -> None:
            problem = framing_problem(headers)
            if problem:
                raise InvalidUsage(problem)
            super().__init__(url_bytes, headers, *args, **kwargs)

    return FramingCheckedRequest


# The limits of this process (set by `install`, inherited by forked workers).
_limits: Optional[TransportLimits] = None
_last_busy_log = 0.0


def install(app: Any, limits: Optional[TransportLimits] = None) -> TransportLimits:
    """Apply the limits to a Sanic app before it runs (patch_sanic() must have run)."""
    global _limits
    limits = limits or TransportLimits.from_env()
    _limits = limits
    app.request_class = _framing_checked_request_class()
    # Sanic's own (inactivity) timeouts as a backstop; the deadlines are below.
    app.config.REQUEST_TIMEOUT = limits.header_timeout
    app.config.KEEP_ALIVE_TIMEOUT = limits.keep_alive_timeout
    return limits


def _with_read_deadlines(stock: Callable[..., Any]) -> Callable[..., Any]:
    """SanicProtocol.receive_more, the one place Sanic waits for request bytes,
    with a deadline for the header and one for the body."""
    from sanic.exceptions import RequestTimeout
    from sanic.http import Stage

    async def receive_more(self: Any) -> None:
        http = getattr(self, "_http", None)
        limits = _limits
        if http is None or limits is None or self.conn_info is None:
            return await stock(self)
        ctx = self.conn_info.ctx
        now = time.monotonic()
        if http.stage is Stage.IDLE and not http.request_body:
            # between requests: Sanic's keep-alive timeout applies
            await stock(self)
            ctx.transport_header_started = time.monotonic()
            ctx.transport_body_started = None
            return None
        if http.stage is Stage.REQUEST:
            # Not yet set when the header's first bytes came with the connection:
            # Sanic then skips the idle wait above. Unstored, every drip would
            # restart the clock (a CI run kept a slowloris connection open).
            started = getattr(ctx, "transport_header_started", None)
            if started is None:
                ctx.transport_header_started = started = now
            deadline = started + limits.header_timeout
        else:  # reading the body, for the handler or to drain it after the response
            started = getattr(ctx, "transport_body_started", None)
            if started is None:
                ctx.transport_body_started = started = now
            deadline = started + limits.body_timeout
        remaining = deadline - now
        if remaining > 0:
            # Sanic's receive_more with a time limit. Not wait_for(stock(self)):
            # that would run stock's clear() a loop turn later, and bytes arriving
            # in between would be missed (measured: a visitor stalled until the
            # deadline).
            self.transport.resume_reading()
            self._data_received.clear()
            try:
                await asyncio.wait_for(self._data_received.wait(), remaining)
                return None
            except asyncio.TimeoutError:
                pass
        # Sanic's own timeout path: a 408 if nothing was answered yet, then close.
        http.keep_alive = False
        http.exception = RequestTimeout("Request Timeout")
        raise asyncio.CancelledError

    return receive_more


def _reset_deadlines(stock: Callable[..., Any]) -> Callable[..., Any]:
    """Http.init_for_request, run before each request of a connection."""

    def init_for_request(self: Any) -> None:
        stock(self)
        info = getattr(self.protocol, "conn_info", None)
        if info is not None:
            info.ctx.transport_header_started = None
            info.ctx.transport_body_started = None

    return init_for_request


def _with_connection_cap(stock: Callable[..., Any]) -> Callable[..., Any]:
    """HttpProtocol.connection_made, refusing a connection over the cap."""

    def connection_made(self: Any, transport: Any) -> None:
        global _last_busy_log
        limits = _limits
        if limits is not None and len(self.connections) >= limits.max_connections:
            transport.write(BUSY_RESPONSE)
            transport.close()
            now = time.monotonic()
            if now - _last_busy_log > BUSY_LOG_INTERVAL_SECONDS:
                _last_busy_log = now
                logger.warning("Refusing connections: %d open in this worker (%s)",
                               len(self.connections), MAX_CONNECTIONS_ENV)
            return
        stock(self, transport)

    return connection_made


_patched = False


def patch_sanic() -> None:
    """Install the deadlines and the connection cap into Sanic's protocol classes
    (once per process). Checked against the installed Sanic version first."""
    global _patched
    check_version("sanic")
    if _patched:
        return
    from sanic.http import Http
    from sanic.server.protocols.base_protocol import SanicProtocol
    from sanic.server.protocols.http_protocol import HttpProtocol

    replace(SanicProtocol, "receive_more", _with_read_deadlines(SanicProtocol.receive_more))
    replace(Http, "init_for_request", _reset_deadlines(Http.init_for_request))
    replace(HttpProtocol, "connection_made", _with_connection_cap(HttpProtocol.connection_made))
    _patched = True
