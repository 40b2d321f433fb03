"""Connection timeouts uvicorn lacks, added to its HTTP protocol (``firstspike serve`` installs it).

uvicorn (httptools or h11) arms no timer while it waits for a request's headers: a client that
connects and sends nothing, or a request line a byte at a time, holds the connection for ever.
Nor does it while it throws away the rest of a body the app answered without reading (a 413
on Content-Length, a 415, a 404): every byte the client trickles in cancels the keep-alive
timer. Both live here, where the bytes arrive, because the ASGI app sees a request only once its
headers are complete. The body of a request being served is the app's business
(``service.http.middleware``: ``FIRSTSPIKE_BODY_TIMEOUT_S``, then 408).

- Header timeout: from the connection's opening, or from a request's first byte on a kept-alive
  connection, to the end of that request's headers. On expiry a client that sent part of a
  request gets 408 with the JSON error body and the connection is closed; one that sent nothing
  (an idle connection, as browsers open them ahead of need) is just closed. Between requests
  uvicorn's keep-alive timeout applies as before.
- Discard timeout: once a response has gone out before its request's body ended, the rest is
  read and dropped for at most this long, then the connection is closed. It may differ by path:
  a stream upload answers before the end of its body by design, and a live client may go on
  sending for as long as a stream may last.

This subclasses uvicorn's protocol classes and so relies on their hooks (``on_message_begin``,
``on_headers_complete``, ``on_message_complete``, ``on_response_complete``, ``handle_events``),
which are not uvicorn's public API: the tests check the behaviour on the installed version.
Plain ``uvicorn service.app:app`` runs without these two timeouts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import h11

if TYPE_CHECKING:
    # Annotations only: importing prometheus_client here would happen before ``service.server``
    # sets up its multiprocess mode.
    from prometheus_client import Counter
    from uvicorn.server import ServerState

    from service.settings import Settings

    class _Cycle(Protocol):
        """What the timers read of uvicorn's RequestResponseCycle (httptools' or h11's)."""

        scope: Mapping[str, Any]
        response_complete: bool
        more_body: bool

    class _UvicornHttp(asyncio.Protocol):
        """What the timers use of uvicorn's HTTP protocol classes, httptools' or h11's, whose
        internals uvicorn does not annotate as one type."""

        loop: asyncio.AbstractEventLoop
        transport: asyncio.Transport
        server_state: ServerState
        cycle: _Cycle | None
        conn: h11.Connection  # h11's only

        def on_response_complete(self) -> None: ...

        # httptools' only
        def on_message_begin(self) -> None: ...
        def on_headers_complete(self) -> None: ...
        def on_message_complete(self) -> None: ...

        # h11's only
        def handle_events(self) -> None: ...

else:
    _UvicornHttp = object


def timed_protocol(
    base: type[asyncio.Protocol],
    header_timeout_s: float,
    discard_timeout_s: float | None = None,
    discard_timeouts: Mapping[str, float] | None = None,
    on_header_timeout: Callable[[], None] | None = None,
) -> type[asyncio.Protocol]:
    """``base`` with the two timeouts, as a new class to pass as ``uvicorn.Config(http=...)``:
    each server gets its own, nothing is shared between servers.

    Args:
        base: uvicorn's httptools or h11 protocol class, or a subclass.
        header_timeout_s: the header timeout.
        discard_timeout_s: the discard timeout; None (with no ``discard_timeouts`` entry)
            leaves unread bodies to uvicorn.
        discard_timeouts: path -> its own discard timeout, instead of ``discard_timeout_s``.
        on_header_timeout: called for each 408 sent on a header timeout (a count).

    Returns:
        The protocol class.

    Raises:
        TypeError: ``base`` is neither of uvicorn's HTTP protocols.
    """
    hooks = _hooks_for(base)
    attributes = {
        "header_timeout_s": header_timeout_s,
        "discard_timeout_s": discard_timeout_s,
        "discard_timeouts": MappingProxyType(dict(discard_timeouts or {})),
        "on_header_timeout": staticmethod(on_header_timeout or _none),
    }
    return type(f"Timed{base.__name__}", (hooks, base), attributes)


def protocol_for(settings: Settings, rejections: Counter) -> type[asyncio.Protocol]:
    """The server's protocol with the timeouts its ``settings`` give.

    Args:
        settings: the service's settings (header, body and stream timeouts).
        rejections: ``firstspike_rejections_total``, where header timeouts are counted.

    Returns:
        The protocol class for ``uvicorn.Config(http=...)``.
    """
    # After an early answer, the rest of a body is dropped for at most body_timeout_s; a stream
    # upload answers at its decision by design, and a live sensor may go on sending for as long
    # as a stream may last: its wall-clock cap, or its event-time span (which runs at wall-clock
    # speed there) plus one idle gap, whichever is shorter.
    stream_tail = min(
        settings.stream_max_seconds, settings.stream_max_duration_s + settings.stream_idle_timeout_s
    )
    return timed_protocol(
        default_base(),
        settings.header_timeout_s,
        discard_timeout_s=settings.body_timeout_s,
        discard_timeouts={"/classify/stream": max(stream_tail, settings.body_timeout_s)},
        on_header_timeout=rejections.labels("", "", "unmatched", "header_timeout").inc,
    )


def default_base() -> type[asyncio.Protocol]:
    """What uvicorn's ``http="auto"`` picks: httptools where it is installed, else h11."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return AutoHTTPProtocol


def _none() -> None:
    """No callback."""
    return None


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol class, None where httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools not installed
        return None
    return HttpToolsProtocol


def _hooks_for(base: type) -> type[_Timeouts]:
    """The hooks that fit ``base``'s implementation (``TypeError`` for neither of uvicorn's)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    httptools = _httptools_protocol()
    if httptools is not None and issubclass(base, httptools):
        return _HttpToolsHooks
    if issubclass(base, H11Protocol):
        return _H11Hooks
    raise TypeError(f"no connection timeouts for {base.__name__}: use uvicorn's httptools or h11 protocol")


def timeout_response(default_headers: list[tuple[bytes, bytes]], seconds: float) -> bytes:
    """A whole 408 response with the API's error body, closing the connection.

    Args:
        default_headers: the server's default headers (``server``, ``date``).
        seconds: the header timeout, for the message.

    Returns:
        The response's bytes.
    """
    request_id = uuid.uuid4().hex
    body = json.dumps(
        {
            "error": f"the request headers did not arrive within {seconds:g} s",
            "code": "header_timeout",
            "request_id": request_id,
        }
    ).encode()
    lines = [
        b"HTTP/1.1 408 Request Timeout",
        *(name + b": " + value for name, value in default_headers),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
        b"x-request-id: " + request_id.encode(),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Timeouts(_UvicornHttp):
    """The timers; the subclasses below say when a request's head and body start and end."""

    header_timeout_s: float
    discard_timeout_s: float | None
    discard_timeouts: Mapping[str, float]
    on_header_timeout: Callable[[], None]
    _header_timer: asyncio.TimerHandle | None = None
    _discard_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header()
        self._disarm_discard()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        """uvicorn's, then the discard timer armed if the request's body is still coming."""
        super().on_response_complete()
        cycle = self.cycle  # by now possibly a pipelined request that has only just started
        if (
            cycle is None
            or not cycle.response_complete
            or not cycle.more_body
            or self.transport.is_closing()
            or getattr(self, "pipeline", None)
            or self._discard_timer is not None
        ):
            return
        seconds = self.discard_timeouts.get(cycle.scope["path"], self.discard_timeout_s)
        if seconds is not None:
            self._discard_timer = self.loop.call_later(seconds, self._discard_expired)

    def _partial_head(self) -> bool:
        raise NotImplementedError

    def _arm_header(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_expired)

    def _disarm_header(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _disarm_discard(self) -> None:
        if self._discard_timer is not None:
            self._discard_timer.cancel()
            self._discard_timer = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._partial_head():
            self.on_header_timeout()
            self.transport.write(timeout_response(self.server_state.default_headers, self.header_timeout_s))
        self.transport.close()

    def _discard_expired(self) -> None:
        self._discard_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class _HttpToolsHooks(_Timeouts):
    _head_started = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._disarm_discard()
        self._arm_header()  # a new connection's timer keeps running from the opening

    def on_headers_complete(self) -> None:
        self._head_started = False
        self._disarm_header()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm_discard()
        super().on_message_complete()

    def _partial_head(self) -> bool:
        return self._head_started


class _H11Hooks(_Timeouts):
    def handle_events(self) -> None:
        super().handle_events()
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._partial_head():
                self._arm_header()
            elif self.cycle is not None:  # between requests: uvicorn's keep-alive timeout governs
                self._disarm_header()
        else:
            self._disarm_header()
        if state is not h11.SEND_BODY:
            self._disarm_discard()

    def _partial_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
