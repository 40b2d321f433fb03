"""Limits that matter once many clients connect, against a real ``firstspike serve`` process:
the cap on stream sessions (FIRSTSPIKE_MAX_STREAMS) and the timeouts for slow clients
(FIRSTSPIKE_BODY_TIMEOUT_S, FIRSTSPIKE_HEADER_TIMEOUT_S, per-packet FIRSTSPIKE_STREAM_IDLE_TIMEOUT_S
on stream uploads). Clients are raw sockets where the point is to misbehave."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import selectors
import socket
import statistics
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import start_server, stop_server
from training.contract.events.format import encode, make_events
from training.data.digits_dvs import digits_dvs_split

HEADER = json.dumps({"format": "dvs-events/1", "width": 34, "height": 34})
TIMEOUT = 1.0  # body, header and stream idle timeouts of the server under test
MARGIN = 4.0  # generous: the machine may be busy
STREAM_QUERY = "/classify/stream?width=34&height=34"


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("limits"),
        env={
            "FIRSTSPIKE_MAX_STREAMS": "2",
            "FIRSTSPIKE_BODY_TIMEOUT_S": str(TIMEOUT),
            "FIRSTSPIKE_HEADER_TIMEOUT_S": str(TIMEOUT),
            "FIRSTSPIKE_STREAM_IDLE_TIMEOUT_S": str(TIMEOUT),
            # after an early answer a stream upload may go on for duration + idle: keep that short here
            "FIRSTSPIKE_STREAM_MAX_DURATION_S": "2",
        },
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def stream():
    """One digits-dvs test stream (about 300 ms of events)."""
    return digits_dvs_split("test")[0][0]


# --- helpers ---------------------------------------------------------------------------------


def _address(server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/classify/stream"


def _metric(server, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in httpx.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_for_metric(server, name: str, value: float, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while (current := _metric(server, name)) != value:
        assert time.monotonic() < deadline, f"{name} is {current}, expected {value}"
        time.sleep(0.05)


def _head(path: str, content_type: str, length: int | None = None, chunked: bool = False) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class SlowClients:
    """Raw connections that each send a head, then one byte every ``every`` seconds, until the
    server closes them; one thread watches all of them. Records, per connection, what the server
    answered and when it closed (seconds since its head was sent)."""

    def __init__(self, address: tuple[str, int], heads: list[bytes], every: float = 0.3) -> None:
        self.selector = selectors.DefaultSelector()
        self.every = every
        self.answers: list[bytes] = [b""] * len(heads)
        self.closed_after: list[float | None] = [None] * len(heads)
        self.started: list[float] = []
        for index, head in enumerate(heads):
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(head)
            self.started.append(time.monotonic())
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, index)

    def run(self, limit: float) -> SlowClients:
        deadline = time.monotonic() + limit
        next_byte = time.monotonic() + self.every
        while self.selector.get_map() and time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=max(0.0, min(next_byte, deadline) - time.monotonic())):
                self._read(key.fileobj, key.data)
            if time.monotonic() >= next_byte:
                next_byte += self.every
                for key in list(self.selector.get_map().values()):
                    try:
                        key.fileobj.send(b"7")
                    except OSError:  # the server has closed it
                        self._done(key.fileobj, key.data)
        return self

    def _read(self, sock: socket.socket, index: int) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.answers[index] += data
        else:
            self._done(sock, index)

    def _done(self, sock: socket.socket, index: int) -> None:
        self.closed_after[index] = time.monotonic() - self.started[index]
        self.selector.unregister(sock)
        sock.close()

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


def _status_and_body(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@contextlib.contextmanager
def _held_session(server):
    """A WebSocket stream session that stays open: the header, then an empty packet every 0.25 s
    (well within the idle timeout), until the block exits."""
    with connect(_ws_url(server), open_timeout=10) as ws:
        ws.send(HEADER)
        stop = threading.Event()

        def keep_alive() -> None:
            while not stop.wait(0.25):
                try:
                    ws.send(b"")
                except ConnectionClosed:
                    return

        thread = threading.Thread(target=keep_alive, daemon=True)
        thread.start()
        try:
            yield ws
        finally:
            stop.set()
            thread.join()


def _ws_session(server, messages: list, how: str = "wait") -> tuple[dict | None, int | None]:
    """Send ``messages``, then ``how``: "wait" for the server's reply and close, "drop" the TCP
    connection without a closing handshake, or "close" it properly without waiting."""
    with connect(_ws_url(server), open_timeout=10) as ws:
        for message in messages:
            try:
                ws.send(message)
            except ConnectionClosed:
                break
        if how == "drop":
            ws.socket.close()
            return None, None
        if how == "close":
            ws.close()
            return None, None
        try:
            reply = json.loads(ws.recv(timeout=15))
        except ConnectionClosed:
            reply = None
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            ws.recv(timeout=15)
        return reply, ws.close_code


def _packets(events, size: int = 256) -> list[bytes]:
    return [encode(events[i : i + size]) for i in range(0, len(events), size)]


# --- the stream cap --------------------------------------------------------------------------


def test_stream_cap_refuses_websocket_with_1013_and_post_with_503(limits_server, stream):
    server = limits_server
    refused_before = _metric(server, "firstspike_rejections_total", reason="streams_full")
    with _held_session(server), _held_session(server):
        _wait_for_metric(server, "firstspike_stream_sessions_active", 2)
        reply, close_code = _ws_session(server, [HEADER])
        assert reply == {"type": "error", "code": "overloaded", "error": reply["error"]} and reply["error"]
        assert close_code == 1013  # Try Again Later
        refused = httpx.post(
            server.url + STREAM_QUERY,
            content=encode(stream),
            headers={"content-type": "application/x-dvs-events"},
            timeout=30,
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["code"] == "overloaded" and refused.json()["request_id"]
        assert (
            _metric(server, "firstspike_rejections_total", reason="streams_full", endpoint="/classify/stream")
            - refused_before
            == 2
        )
        assert _metric(server, "firstspike_stream_sessions_active") == 2  # the refused ones never counted
        # images are not streams: /classify is not limited by the stream cap
        assert httpx.get(server.url + "/health/ready").status_code == 200
    _wait_for_metric(server, "firstspike_stream_sessions_active", 0)
    reply, close_code = _ws_session(server, [HEADER, *_packets(stream), json.dumps({"type": "end"})])
    assert reply["type"] == "decision" and close_code == 1000


def test_slots_come_back_after_sessions_ended_every_way(limits_server, stream):
    server = limits_server
    end = json.dumps({"type": "end"})
    ways = {
        "ws decision": lambda: _ws_session(server, [HEADER, *_packets(stream), end]),
        "ws bad header": lambda: _ws_session(server, ["hello"]),
        "ws partial record": lambda: _ws_session(server, [HEADER, b"\x00" * 20]),
        "ws idle timeout": lambda: _ws_session(server, [HEADER]),
        "ws dropped": lambda: _ws_session(server, [HEADER, encode(stream[:20])], how="drop"),
        "ws closed mid-stream": lambda: _ws_session(server, [HEADER, encode(stream[:20])], how="close"),
        "ws gone before the header": lambda: _ws_session(server, [], how="drop"),
        "post decision": lambda: _post_stream(server, encode(stream)),
        "post partial record": lambda: _post_stream(server, b"\x00" * 20),
        "post idle timeout": lambda: _raw_post_stream(server, b""),
        "post client gone mid-body": lambda: _raw_post_stream(server, encode(stream[:10]), hang_up=True),
    }
    expected = {
        "ws decision": "decision",
        "ws bad header": "bad_header",
        "ws partial record": "partial_record",
        "ws idle timeout": "idle_timeout",
        "post decision": 200,
        "post partial record": 400,
        "post idle timeout": 408,
    }
    for _ in range(3):
        for name, way in ways.items():
            result = way()
            if name.startswith("ws") and name in expected:
                reply, close_code = result
                got = reply and (reply["type"] if reply["type"] == "decision" else reply["code"])
                assert got == expected[name], (name, reply)
                assert close_code == (1000 if got == "decision" else 1008), (name, close_code)
            elif name in expected:
                assert result == expected[name], (name, result)
    _wait_for_metric(server, "firstspike_stream_sessions_active", 0)
    # a client gone mid-body is its own doing: recorded as 499, never as a server error
    assert _metric(server, "firstspike_requests_total", endpoint="/classify/stream", status="500") == 0
    assert _metric(server, "firstspike_requests_total", endpoint="/classify/stream", status="499") >= 3
    # every slot is free again: the whole cap is admitted, and no more
    with _held_session(server), _held_session(server):
        _wait_for_metric(server, "firstspike_stream_sessions_active", 2)
        reply, close_code = _ws_session(server, [HEADER])
        assert (reply["code"], close_code) == ("overloaded", 1013)
    assert httpx.get(server.url + "/health/ready").status_code == 200


def _post_stream(server, body: bytes) -> int:
    return httpx.post(
        server.url + STREAM_QUERY,
        content=body,
        headers={"content-type": "application/x-dvs-events"},
        timeout=30,
    ).status_code


def _raw_post_stream(server, body: bytes, hang_up: bool = False) -> int | None:
    """A chunked stream upload that sends ``body`` as one chunk and then nothing more: either
    waits for the answer (the idle timeout) or hangs up."""
    with socket.create_connection(_address(server), timeout=15) as sock:
        sock.sendall(_head(STREAM_QUERY, "application/x-dvs-events", chunked=True))
        if body:
            sock.sendall(b"%x\r\n%s\r\n" % (len(body), body))
        if hang_up:
            time.sleep(0.1)
            return None
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return int(answer.split(b" ", 2)[1])


# --- slow clients ----------------------------------------------------------------------------


def test_a_body_trickling_in_gets_408_and_fast_clients_are_still_served(limits_server, digits_test_pngs):
    server = limits_server
    png = digits_test_pngs[0][0]
    timeouts_before = _metric(
        server, "firstspike_rejections_total", reason="body_timeout", endpoint="/classify"
    )
    part = b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    heads = [
        _head("/classify", "image/png", 500),
        _head("/classify", "application/json", 500),
        _head("/classify", "multipart/form-data; boundary=xyz", 500) + part,
    ]
    slow = SlowClients(_address(server), heads)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fast = pool.submit(
            httpx.post,
            server.url + "/classify",
            content=png,
            headers={"content-type": "image/png"},
            timeout=30,
        )
        slow.run(limit=TIMEOUT + MARGIN)
        assert fast.result().status_code == 200
    try:
        for answer, seconds in zip(slow.answers, slow.closed_after):
            assert seconds is not None and TIMEOUT * 0.9 <= seconds <= TIMEOUT + MARGIN, seconds
            status, body = _status_and_body(answer)
            assert (status, body["code"]) == (408, "body_timeout") and body["request_id"], answer
            assert b"connection: close" in answer.lower()
        assert (
            _metric(server, "firstspike_rejections_total", reason="body_timeout", endpoint="/classify")
            - timeouts_before
            == 3
        )
    finally:
        slow.close()


def test_headers_trickling_in_get_408_and_idle_connections_are_closed(limits_server):
    server = limits_server
    before = _metric(server, "firstspike_rejections_total", reason="header_timeout")
    slow = SlowClients(_address(server), [b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "]).run(
        limit=TIMEOUT + MARGIN
    )
    try:
        status, body = _status_and_body(slow.answers[0])
        assert (status, body["code"]) == (408, "header_timeout") and body["request_id"]
        assert slow.closed_after[0] is not None and TIMEOUT * 0.9 <= slow.closed_after[0] <= TIMEOUT + MARGIN
        assert _metric(server, "firstspike_rejections_total", reason="header_timeout") - before == 1
    finally:
        slow.close()
    # a connection that sends nothing at all is closed without an answer, and not counted
    with socket.create_connection(_address(server), timeout=TIMEOUT + MARGIN) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started <= TIMEOUT + MARGIN
    assert _metric(server, "firstspike_rejections_total", reason="header_timeout") - before == 1


def test_a_kept_alive_connection_still_serves_requests(limits_server, digits_test_pngs):
    """The header timer restarts per request: one connection, requests spread over more than
    the header timeout, each sent at once, are all served."""
    with httpx.Client(base_url=limits_server.url, timeout=30) as client:
        for _ in range(3):
            response = client.post(
                "/classify", content=digits_test_pngs[0][1], headers={"content-type": "image/png"}
            )
            assert response.status_code == 200 and "close" not in response.headers.get("connection", "")
            time.sleep(TIMEOUT * 0.6)


def test_an_early_answer_does_not_hold_the_connection_while_the_body_trickles(limits_server):
    """A 415 answers before reading the body; what the client still trickles is dropped for at
    most the body timeout, then the connection is closed."""
    slow = SlowClients(_address(limits_server), [_head("/classify", "text/plain", 10_000)]).run(
        limit=TIMEOUT + MARGIN
    )
    try:
        status, body = _status_and_body(slow.answers[0])
        assert (status, body["code"]) == (415, "unsupported_media_type")
        assert slow.closed_after[0] is not None and slow.closed_after[0] <= TIMEOUT + MARGIN
    finally:
        slow.close()


def test_a_stream_upload_whose_packets_keep_coming_is_not_cut_off(limits_server, stream):
    """Packets every 0.4 s for about 2.4 s, longer than both the body and the idle timeout: each
    comes within the idle timeout, so the upload is served."""

    def body():
        for _ in range(6):  # events at the stream's first timestamp complete no bin
            yield encode(make_events([int(stream["t"][0])], [0], [0], [0]))
            time.sleep(0.4)
        yield encode(stream)

    started = time.monotonic()
    response = httpx.post(
        limits_server.url + STREAM_QUERY,
        content=body(),
        headers={"content-type": "application/x-dvs-events"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert time.monotonic() - started > 2 * TIMEOUT


def test_a_stream_upload_trickling_bytes_gets_408(limits_server):
    """The idle timeout waits for a whole packet (a 16-byte record), not any byte: one byte per
    0.3 s never completes one in time."""
    before = _metric(
        limits_server, "firstspike_rejections_total", reason="body_timeout", endpoint="/classify/stream"
    )
    slow = SlowClients(
        _address(limits_server), [_head(STREAM_QUERY, "application/x-dvs-events", 10_000)]
    ).run(limit=TIMEOUT + MARGIN)
    try:
        status, body = _status_and_body(slow.answers[0])
        assert (status, body["code"]) == (408, "idle_timeout"), slow.answers[0]
        assert slow.closed_after[0] is not None and slow.closed_after[0] <= TIMEOUT + MARGIN
        assert (
            _metric(
                limits_server,
                "firstspike_rejections_total",
                reason="body_timeout",
                endpoint="/classify/stream",
            )
            - before
            == 1
        )
    finally:
        slow.close()


def test_fifty_slow_connections_neither_stay_nor_stop_normal_requests(limits_server, digits_test_pngs):
    """A bounded version of the measurement "300 connections sending one byte a second are held
    open indefinitely": 50 connections (30 trickling an image body, 20 trickling their headers)
    while a normal client keeps classifying. Prints the figures; asserts only generous bounds."""
    server = limits_server
    heads = [_head("/classify", "image/png", 100_000)] * 30 + [
        b"POST /classify HTTP/1.1\r\nHost: x\r\nX-Slow: "
    ] * 20
    slow = SlowClients(_address(server), heads)
    latencies: list[float] = []
    statuses: list[int] = []
    stop = threading.Event()

    def normal_client() -> None:
        pngs = digits_test_pngs[0]
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                response = client.post(
                    "/classify",
                    content=pngs[len(statuses) % len(pngs)],
                    headers={"content-type": "image/png"},
                )
                latencies.append(time.perf_counter() - started)
                statuses.append(response.status_code)
                stop.wait(0.1)

    thread = threading.Thread(target=normal_client)
    thread.start()
    try:
        slow.run(limit=TIMEOUT + MARGIN + 2)
    finally:
        stop.set()
        thread.join(timeout=60)
        slow.close()
    closed = sorted(seconds for seconds in slow.closed_after if seconds is not None)
    answered_408 = sum(answer.startswith(b"HTTP/1.1 408") for answer in slow.answers)
    print(
        f"\nslow connections: {len(heads)} (30 body, 20 header), closed by the server: {len(closed)}, "
        f"with a 408: {answered_408}; closed after (s) min {closed[0]:.2f} "
        f"median {statistics.median(closed):.2f} max {closed[-1]:.2f} (timeout {TIMEOUT:g} s)"
    )
    print(
        f"normal requests meanwhile: {len(statuses)}, all 200: {set(statuses) == {200}}, "
        f"latency ms median {statistics.median(latencies) * 1000:.1f} max {max(latencies) * 1000:.1f}"
    )
    assert len(closed) == len(heads) and answered_408 == len(heads)
    assert closed[-1] <= TIMEOUT + MARGIN
    assert statuses and set(statuses) == {200}
    assert max(latencies) < 5.0
