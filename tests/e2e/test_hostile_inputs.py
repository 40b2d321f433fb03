"""Hostile inputs against a real ``firstspike serve``: small requests built to cost unbounded
memory or work. Each must be answered 200 or 4xx within a few seconds, the server's resident
memory must stay within a stated bound (read from /proc while the requests run), and its CPU
must go idle shortly after the last answer: a timeout stops the work, not only the answer."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from benchmarks.common import rss_mib
from benchmarks.hostile import (
    ProcessWatch,
    hostile_set,
    oip_binary_body,
    seconds_to_idle,
    send_concurrently,
    wide_png,
)
from tests.helpers import start_server, stop_server
from training.contract.events.format import RECORD, encode, make_events

CONCURRENCY = 6
WORK_THREADS = 2
# The bound on resident memory over the warmed server's while the hostile set arrives 6 at a
# time. Each of the 2 work threads holds one image at a time, about 90 MiB at most for the worst
# here (a 16-bit 4096 x 4096 PNG: 32 MiB decoded, 16 MiB as 8 bits, a 16 MiB content mask, an
# 8 MiB band of floats); the rest is bodies (at most 6 x 1.4 MiB) and answers.
RSS_BOUND_MIB = 256
# An answer, not a hang: inside the 30 s request timeout. How fast is for the benchmark
# (benchmarks/hostile.py) to say: six 64-row requests of 1024 x 1024 images took 3-5 s on one
# 2-core runner and 11 s on another, without AVX-512.
ANSWER_WITHIN_S = 20.0
IDLE_WITHIN_S = 2.0
STREAM_MAX_SECONDS = 2.0
HEADER = json.dumps({"format": "dvs-events/1", "width": 34, "height": 34})


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("hostile"),
        env={
            "FIRSTSPIKE_WORK_THREADS": str(WORK_THREADS),
            "FIRSTSPIKE_STREAM_MAX_SECONDS": str(STREAM_MAX_SECONDS),
            "FIRSTSPIKE_STREAM_IDLE_TIMEOUT_S": "1",
            "FIRSTSPIKE_LOG_REQUESTS": "false",
        },
    )
    for model in ("digits", "fashion-mnist"):
        _warm_up_batches(server, model)
    yield server
    stop_server(server)


def _warm_up_batches(server, model: str) -> None:
    """Full batches of raw pixels, so that the model's own batch memory (fashion-mnist's
    onnxruntime arenas at 32 rows take about 270 MiB) is resident before memory is measured."""
    spec = httpx.get(f"{server.url}/v2/models/{model}", timeout=10).json()["inputs"][1]["shape"][1:]
    rows = 32
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "datatype": "UINT8",
                    "shape": [rows, *spec],
                    "parameters": {"binary_data_size": rows * int(np.prod(spec))},
                }
            ]
        }
    ).encode()
    body = (
        header
        + np.random.default_rng(0).integers(0, 256, rows * int(np.prod(spec)), dtype=np.uint8).tobytes()
    )
    headers = {"Inference-Header-Content-Length": str(len(header))}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(3):
            assert client.post(f"/v2/models/{model}/infer", content=body, headers=headers).status_code == 200


def _ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/classify/stream"


def _assert_still_serving(server) -> None:
    assert httpx.get(server.url + "/health/ready", timeout=10).status_code == 200
    png = wide_png(28, 28)
    response = httpx.post(
        server.url + "/classify", content=png, headers={"content-type": "image/png"}, timeout=30
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("model", ["digits", "fashion-mnist"])
def test_the_hostile_set_is_answered_quickly_within_a_memory_bound(hostile_server, model):
    pid = hostile_server.process.pid
    expected = {
        "wide": 413,
        "tall": 413,
        "wide16": 200,
        "rgb": 200,
        "ico": 400,
        "png-text": 400,
        "oip64": 413,
        "oip64-1024": 200,
    }
    figures = []
    for hostile in hostile_set(model):
        baseline = rss_mib(pid)
        with ProcessWatch(pid, limit_mib=8192) as watch:
            outcomes, slowest = asyncio.run(send_concurrently(hostile_server.url, hostile, CONCURRENCY))
            idle_after = seconds_to_idle(pid, bound=30)
        figures.append(
            f"{hostile.name}: {outcomes[0]} in {slowest:.2f} s, RSS +{watch.peak_mib - baseline:.0f} MiB, "
            f"idle after {idle_after} s"
        )
        assert not watch.killed
        assert outcomes == [str(expected[hostile.name])] * CONCURRENCY, (hostile.name, outcomes)
        assert slowest < ANSWER_WITHIN_S, (hostile.name, slowest)
        assert watch.peak_mib - baseline < RSS_BOUND_MIB, (hostile.name, watch.peak_mib, baseline)
        assert idle_after is not None and idle_after < IDLE_WITHIN_S, (hostile.name, idle_after)
    print("\n" + "\n".join(figures))
    _assert_still_serving(hostile_server)


# Enough work to outlast the timeout several times over on a fast machine too: a CI runner
# decoded 64 of these 2048 x 2048 images within 1 s, so the count is sized by a probe.
TIMEOUT_WORK_S = 8.0
TIMEOUT_MAX_ROWS = 1024


def _rows_for_seconds(server, seconds: float) -> int:
    """How many 2048 x 2048 images keep one work thread busy for ``seconds``, from the time four
    of them take (a probe under the timeout, or a 504 that says each takes over a quarter of it)."""
    body, headers = oip_binary_body([wide_png(2048, 2048)] * 4)
    started = time.monotonic()
    response = httpx.post(server.url + "/v2/models/digits/infer", content=body, headers=headers, timeout=60)
    per_image = (time.monotonic() - started) / 4
    if response.status_code == 504:
        return 64
    assert response.status_code == 200, response.text
    return min(TIMEOUT_MAX_ROWS, max(64, math.ceil(seconds / per_image)))


def test_a_timeout_stops_the_work_not_only_the_answer(tmp_path):
    """Images of 2048 x 2048, allowed by large budgets, enough to take one thread several seconds:
    the 504 comes at the timeout, and the CPU is idle right after it."""
    server = start_server(
        tmp_path,
        env={
            "FIRSTSPIKE_WORK_THREADS": "1",
            "FIRSTSPIKE_REQUEST_TIMEOUT_S": "1",
            "FIRSTSPIKE_MAX_REQUEST_PIXELS": str(2048 * 2048 * TIMEOUT_MAX_ROWS),
            "FIRSTSPIKE_MAX_REQUEST_ROWS": str(TIMEOUT_MAX_ROWS),
            "FIRSTSPIKE_MAX_QUEUE": str(TIMEOUT_MAX_ROWS),
            "FIRSTSPIKE_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        },
    )
    try:
        rows = _rows_for_seconds(server, TIMEOUT_WORK_S)
        seconds_to_idle(server.process.pid, bound=30)
        body, headers = oip_binary_body([wide_png(2048, 2048)] * rows)
        started = time.monotonic()
        response = httpx.post(
            server.url + "/v2/models/digits/infer", content=body, headers=headers, timeout=60
        )
        answered = time.monotonic() - started
        idle_after = seconds_to_idle(server.process.pid, bound=30)
        assert response.status_code == 504 and response.json()["code"] == "timeout", (rows, response.text)
        assert answered < 3, answered
        assert idle_after is not None and idle_after < 1.0, idle_after
        metrics = httpx.get(server.url + "/metrics").text
        assert 'firstspike_inflight_requests{endpoint="/v2/infer"} 0.0' in metrics
    finally:
        stop_server(server)


def _head(path: str, content_type: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _open_upload(server, path: str, content_type: str, length: int, first_part: bytes) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(_head(path, content_type, length) + first_part)
    return sock


def _spooled_files(pid: int, folder: str) -> list[str]:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return [link for link in links if link.startswith(folder)]


def test_bodies_wait_for_a_slot_and_uploads_stay_in_memory(tmp_path):
    """With two slots, two half-sent uploads take both: a third request is refused at once
    (its body is never read). A 3 MiB multipart upload is never spooled to a temporary file."""
    spool = tmp_path / "spool"
    spool.mkdir()
    server = start_server(
        tmp_path,
        env={"FIRSTSPIKE_MAX_CONCURRENCY": "2", "FIRSTSPIKE_BODY_TIMEOUT_S": "20", "TMPDIR": str(spool)},
    )
    boundary = uuid.uuid4().hex
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + b"\x00" * (3 << 20)
    closing = f"\r\n--{boundary}--\r\n".encode()
    uploads = []
    try:
        uploads.append(
            _open_upload(
                server,
                "/classify",
                f"multipart/form-data; boundary={boundary}",
                len(part) + len(closing),
                part,
            )
        )
        uploads.append(_open_upload(server, "/classify", "image/png", 1 << 20, b"\x89PNG"))
        time.sleep(1.0)  # both are being read now, the multipart one past Starlette's 1 MiB spool size
        assert _spooled_files(server.process.pid, str(spool)) == []
        third = httpx.post(
            server.url + "/classify", content=wide_png(28, 28), headers={"content-type": "image/png"}
        )
        assert third.status_code == 503 and third.json()["code"] == "overloaded"
        uploads[0].sendall(closing)
        answer = uploads[0].recv(65536)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]  # zeros are no image, but they were read
    finally:
        for sock in uploads:
            sock.close()
    try:
        deadline = time.monotonic() + 10
        while (
            response := httpx.post(
                server.url + "/classify", content=wide_png(28, 28), headers={"content-type": "image/png"}
            )
        ).status_code == 503:
            assert time.monotonic() < deadline, "the slots were not given back"
            time.sleep(0.1)
        assert response.status_code == 200
    finally:
        stop_server(server)


# --- streams ----------------------------------------------------------------------------------


def _stream_error(server, send) -> tuple[dict, float]:
    """Open a session, run ``send(ws)`` until the server answers; its reply and the seconds it took."""
    started = time.monotonic()
    with connect(_ws_url(server), open_timeout=10, max_size=None) as ws:
        ws.send(HEADER)
        reply = send(ws)
    return json.loads(reply), time.monotonic() - started


def _until_answered(ws, packet, every: float) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ws.send(packet())
            return ws.recv(timeout=every)
        except TimeoutError:
            continue
        except ConnectionClosed:
            break
    return ws.recv(timeout=1)


def test_empty_packets_cannot_hold_a_stream_past_the_wall_clock_cap(hostile_server):
    reply, seconds = _stream_error(hostile_server, lambda ws: _until_answered(ws, lambda: b"", 0.2))
    assert reply["type"] == "error" and reply["code"] == "stream_timeout", reply
    assert STREAM_MAX_SECONDS <= seconds < STREAM_MAX_SECONDS + 2


def test_trickled_events_cannot_hold_a_stream_past_the_wall_clock_cap(hostile_server):
    clock = iter(range(10**6))
    trickle = lambda: encode(make_events([next(clock)], [3], [4], [1]))  # noqa: E731 - one event a packet
    reply, seconds = _stream_error(hostile_server, lambda ws: _until_answered(ws, trickle, 0.3))
    assert reply["code"] == "stream_timeout", reply
    assert STREAM_MAX_SECONDS <= seconds < STREAM_MAX_SECONDS + 2


def test_a_trickled_upload_cannot_hold_a_stream_past_the_wall_clock_cap(hostile_server):
    def body():
        yield (HEADER + "\n").encode()
        for _ in range(100):
            time.sleep(0.2)
            yield b'{"t": [], "x": [], "y": [], "p": []}\n'

    started = time.monotonic()
    response = httpx.post(
        hostile_server.url + "/classify/stream",
        content=body(),
        headers={"content-type": "application/x-ndjson"},
        timeout=30,
    )
    assert response.status_code == 408 and response.json()["code"] == "stream_timeout", response.text
    assert time.monotonic() - started < STREAM_MAX_SECONDS + 2


def test_empty_packets_spend_the_byte_budget(tmp_path):
    server = start_server(tmp_path, env={"FIRSTSPIKE_STREAM_MAX_BYTES": "65536"})
    try:
        with connect(_ws_url(server), open_timeout=10) as ws:
            ws.send(HEADER)
            sent = 0
            try:
                while sent < 1000:
                    ws.send(b"")
                    sent += 1
            except ConnectionClosed:
                pass
            reply = json.loads(ws.recv(timeout=10))
        assert reply["code"] == "stream_too_large", reply
        assert sent >= 65536 // 256 - 1  # each empty packet counted as 256 bytes
    finally:
        stop_server(server)


@pytest.mark.parametrize(
    "message, code",
    [
        ("[" * 100_000, "bad_packet"),
        ('{"t": ' + "[" * 100_000 + "]" * 100_000 + ', "x": [], "y": [], "p": []}', "bad_packet"),
    ],
)
def test_deeply_nested_json_packets_are_refused(hostile_server, message, code):
    reply, _ = _stream_error(hostile_server, lambda ws: (ws.send(message), ws.recv(timeout=10))[1])
    assert reply["code"] == code, reply


def test_deeply_nested_json_in_headers_and_ndjson_is_refused(hostile_server):
    with connect(_ws_url(hostile_server), open_timeout=10) as ws:
        ws.send("[" * 100_000)
        assert json.loads(ws.recv(timeout=10))["code"] == "bad_header"
    response = httpx.post(
        hostile_server.url + "/classify/stream",
        content=(HEADER + "\n" + "[" * 100_000 + "\n"),
        headers={"content-type": "application/x-ndjson"},
        timeout=30,
    )
    assert response.status_code == 400 and response.json()["code"] == "bad_packet"
    _assert_still_serving(hostile_server)


def test_a_websocket_message_over_the_limit_is_refused_by_the_protocol(hostile_server):
    """uvicorn's own limit is the service's (1 MiB), not its 16 MiB default: the connection is
    closed with 1009 (message too big) before the app buffers the message."""
    with connect(_ws_url(hostile_server), open_timeout=10, max_size=None) as ws:
        ws.send(HEADER)
        with pytest.raises(ConnectionClosed) as closed:
            ws.send(b"\x00" * (1024 * 1024 + 16))
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    _assert_still_serving(hostile_server)


def test_timestamps_that_wrap_around_are_decreasing(hostile_server):
    events = np.zeros(2, dtype=RECORD)
    events["t"] = [2**63 - 1, -(2**63)]  # their difference wraps to +1 in int64
    reply, _ = _stream_error(hostile_server, lambda ws: (ws.send(events.tobytes()), ws.recv(timeout=10))[1])
    assert reply["code"] == "decreasing_timestamps", reply


def test_json_coordinates_beyond_16_bits_do_not_wrap_into_the_sensor(hostile_server):
    packet = json.dumps({"t": [0], "x": [65536 + 3], "y": [4], "p": [1]})
    reply, _ = _stream_error(hostile_server, lambda ws: (ws.send(packet), ws.recv(timeout=10))[1])
    assert reply["code"] == "bad_packet", reply


def test_one_oip_request_takes_only_its_share_of_the_queue(hostile_server):
    rows = 65  # FIRSTSPIKE_MAX_REQUEST_ROWS is 64
    header = {
        "inputs": [
            {
                "name": "pixels",
                "datatype": "UINT8",
                "shape": [rows, 1, 8, 8],
                "parameters": {"binary_data_size": rows * 64},
            }
        ]
    }
    text = json.dumps(header).encode()
    response = httpx.post(
        hostile_server.url + "/v2/models/digits/infer",
        content=text + b"\x00" * (rows * 64),
        headers={"Inference-Header-Content-Length": str(len(text))},
        timeout=30,
    )
    assert response.status_code == 413 and response.json()["code"] == "too_many_rows", response.text
    assert "at most 64" in response.json()["error"]


def test_a_second_thread_of_requests_meanwhile_is_served(hostile_server):
    """While the hostile set arrives, an ordinary client is still answered."""
    stop, answers = threading.Event(), []

    def ordinary():
        with httpx.Client(base_url=hostile_server.url, timeout=30) as client:
            while not stop.is_set():
                answers.append(
                    client.post(
                        "/classify", content=wide_png(28, 28), headers={"content-type": "image/png"}
                    ).status_code
                )

    thread = threading.Thread(target=ordinary)
    thread.start()
    try:
        for hostile in hostile_set("digits"):
            asyncio.run(send_concurrently(hostile_server.url, hostile, CONCURRENCY))
    finally:
        stop.set()
        thread.join()
    assert answers and set(answers) == {200}, set(answers)
