"""The connection timeouts added to uvicorn's HTTP protocol (service.http.timeouts), on both of
uvicorn's HTTP implementations, with a tiny ASGI app in a uvicorn server in this process."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.http.timeouts import timed_protocol
from tests.helpers import free_port

TIMEOUT = 0.5
MARGIN = 3.0
BASES = [pytest.param(H11Protocol, id="h11")]
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    BASES.insert(0, pytest.param(HttpToolsProtocol, id="httptools"))
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    pass


async def echo(scope, receive, send) -> None:
    """Echoes the body; ``/early`` answers without reading it."""
    body = b""
    if scope["path"] != "/early":
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=BASES)
def address(request):
    timeouts: list[str] = []
    protocol = timed_protocol(
        request.param,
        TIMEOUT,
        discard_timeout_s=TIMEOUT,
        discard_timeouts={"/long": 60},
        on_header_timeout=lambda: timeouts.append("header"),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(echo, host="127.0.0.1", port=port, http=protocol, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield ("127.0.0.1", port), timeouts
    server.should_exit = True
    thread.join(timeout=10)


def _until_closed(sock: socket.socket, send_every: float | None = None, limit: float = TIMEOUT + MARGIN):
    """What the server sends until it closes, and when it closed; with ``send_every``, one more
    byte goes out at that pace meanwhile."""
    started = time.monotonic()
    answer = b""
    sock.settimeout(send_every or limit)
    while time.monotonic() - started < limit:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            try:
                sock.send(b"7")
            except OSError:
                break
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        answer += data
    else:
        raise AssertionError(f"still open after {limit} s; got {answer!r}")
    return answer, time.monotonic() - started


def _request(body: bytes = b"hello", path: str = "/") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


def test_headers_trickling_in_get_408(address):
    (host, port), timeouts = address
    with socket.create_connection((host, port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer, seconds = _until_closed(sock, send_every=0.2)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "header_timeout"
    assert TIMEOUT * 0.9 <= seconds <= TIMEOUT + MARGIN
    assert timeouts == ["header"]


def test_a_silent_connection_is_closed_without_an_answer(address):
    (host, port), timeouts = address
    with socket.create_connection((host, port)) as sock:
        answer, seconds = _until_closed(sock)
    assert answer == b"" and TIMEOUT * 0.9 <= seconds <= TIMEOUT + MARGIN
    assert timeouts == []


def test_kept_alive_requests_each_get_their_own_header_time(address):
    (host, port), timeouts = address
    with socket.create_connection((host, port), timeout=5) as sock:
        for _ in range(3):  # 3 x 0.3 s: longer than the header timeout, each request sent at once
            sock.sendall(_request())
            assert sock.recv(65536).endswith(b"hello")
            time.sleep(TIMEOUT * 0.6)
        # a partial request on the kept-alive connection: its own timer, from its first byte
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answer, seconds = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and TIMEOUT * 0.9 <= seconds <= TIMEOUT + MARGIN
    assert timeouts == ["header"]


def test_a_slow_body_is_not_cut_by_the_header_timer(address):
    """Body time is the app's business (service.http.middleware): here the app waits for it."""
    (host, port), _ = address
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for byte in b"slow":
            time.sleep(TIMEOUT * 0.6)
            sock.send(bytes([byte]))
        assert sock.recv(65536).endswith(b"slow")


def test_the_rest_of_an_unread_body_is_dropped_for_a_while_then_the_connection_closed(address):
    (host, port), _ = address
    with socket.create_connection((host, port)) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        answer, seconds = _until_closed(sock, send_every=0.2)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert seconds <= TIMEOUT + MARGIN
    # a path with its own, longer discard timeout keeps reading past it
    with socket.create_connection((host, port)) as sock:
        sock.sendall(b"POST /long HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        sock.settimeout(0.2)
        started = time.monotonic()
        while time.monotonic() - started < TIMEOUT * 3:
            with pytest.raises(socket.timeout):
                while sock.recv(65536):
                    pass
            sock.send(b"7")
    # a body that did end in time leaves the connection to serve the next request
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(TIMEOUT * 1.5)
        sock.sendall(_request())
        assert sock.recv(65536).endswith(b"hello")


def test_a_pipelined_request_reading_its_body_is_not_taken_for_an_unread_one(address):
    """Two requests in one write, the second's body still to come: when the first is answered,
    the second is the one in progress, and its body is read, not dropped."""
    (host, port), _ = address
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(_request(b"first") + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for byte in b"slow":
            time.sleep(TIMEOUT * 0.6)
            sock.send(bytes([byte]))
        answer = b""
        while answer.count(b"HTTP/1.1 200") < 2 or not answer.endswith(b"slow"):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {answer!r}"
            answer += chunk
    assert b"first" in answer
