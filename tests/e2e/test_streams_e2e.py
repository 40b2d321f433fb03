"""/classify/stream end to end: a real uvicorn process, real WebSockets and chunked uploads of
the digits-dvs test streams."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import MODEL_STORE, start_server, stop_server
from training.contract.events.format import encode, make_events
from training.data.digits_dvs import digits_dvs_split

HEADER = json.dumps({"format": "dvs-events/1", "width": 34, "height": 34})
PACKET = 256


@pytest.fixture(scope="module")
def streams():
    return digits_dvs_split("test")


@pytest.fixture(scope="module")
def reference():
    """Offline evaluation of the same streams (``firstspike eval`` on digits-dvs)."""
    from training.data import load_dataset
    from training.evaluate import evaluate
    from training.store.load import load_network

    network, _ = load_network(MODEL_STORE / "digits-dvs")
    return evaluate(network, load_dataset("digits-dvs", "test"))


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("streams"),
        env={"FIRSTSPIKE_STREAM_IDLE_TIMEOUT_S": "1", "FIRSTSPIKE_STREAM_MAX_EVENTS": "200000"},
    )
    yield server
    stop_server(server)


def ws_url(server, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/classify/stream" + query


def send_stream(server, events, pause: float = 0.0, query: str = ""):
    """Send packets in time order until the decision comes (a second thread listens, as a live
    client would); returns (decision, packets sent)."""
    packets = [events[i : i + PACKET] for i in range(0, len(events), PACKET)]
    with connect(ws_url(server, query), open_timeout=10) as ws:
        replies: list = []
        listener = threading.Thread(target=lambda: replies.append(json.loads(ws.recv(timeout=60))))
        listener.start()
        ws.send(HEADER)
        sent = 0
        for packet in packets:
            if replies:
                break
            try:
                ws.send(encode(packet))
            except ConnectionClosed:
                break
            sent += 1
            if pause:
                time.sleep(pause)
        else:
            with contextlib.suppress(ConnectionClosed):
                ws.send(json.dumps({"type": "end"}))
        listener.join(timeout=60)
        return replies[0], sent


def test_all_test_streams_over_websocket_match_offline_evaluation(stream_server, streams, reference):
    events, labels = streams
    decisions, before_end, consumed = [], 0, []
    for stream in events:
        decision, sent = send_stream(stream_server, stream)
        assert decision["type"] == "decision", decision
        decisions.append(decision)
        before_end += decision["events_received"] < len(stream)
        consumed.append(decision["events_used"] / len(stream))
    assert [d["class_index"] for d in decisions] == reference.per_sample["class_index"]
    assert [d["decision_timestep"] for d in decisions] == reference.per_sample["decision_timestep"]
    assert [d["exit_reason"] for d in decisions] == reference.per_sample["exit_reason"]
    accuracy = np.mean([d["class_index"] == y for d, y in zip(decisions, labels)])
    assert accuracy == pytest.approx(reference.accuracy)
    assert decisions[0]["model"]["name"] == "digits-dvs"
    print(
        f"\ndecided before the stream ended: {before_end}/{len(events)}; "
        f"mean share of events used: {np.mean(consumed):.3f}"
    )


def test_decision_arrives_before_the_client_has_sent_the_rest(stream_server, streams):
    stream = streams[0][0]
    total_packets = -(-len(stream) // PACKET)
    decision, sent = send_stream(stream_server, stream, pause=0.003)
    assert decision["type"] == "decision"
    assert sent < total_packets, "the answer came only after the whole stream"
    assert decision["events_received"] < len(stream)


def _chunked(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_post_chunked_upload_classifies_identically(stream_server, streams, reference):
    events, _ = streams
    with httpx.Client(base_url=stream_server.url, timeout=60) as client:
        for index in range(0, len(events), 6):
            response = client.post(
                "/classify/stream",
                params={"width": 34, "height": 34},
                content=_chunked(encode(events[index])),
                headers={"content-type": "application/x-dvs-events"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["class_index"], body["decision_timestep"]) == (
                reference.per_sample["class_index"][index],
                reference.per_sample["decision_timestep"][index],
            )
        ndjson_lines = [HEADER] + [
            json.dumps({k: events[1][k][i : i + PACKET].tolist() for k in "txyp"})
            for i in range(0, len(events[1]), PACKET)
        ]
        response = client.post(
            "/classify/stream",
            content="\n".join(ndjson_lines).encode(),
            headers={"content-type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["class_index"] == reference.per_sample["class_index"][1]


def _metric(server, name: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_abandoned_sessions_are_freed(stream_server, streams):
    stream = streams[0][3]
    events_before = _metric(stream_server, "firstspike_stream_events_total")
    for index in range(100):
        with connect(ws_url(stream_server), open_timeout=10) as ws:
            ws.send(HEADER)
            ws.send(encode(stream[:20]))
            ws.send(encode(stream[20:40]))
            if index % 2:
                ws.socket.close()  # half of them just drop the connection, no closing handshake
    deadline = time.monotonic() + 20
    while _metric(stream_server, "firstspike_stream_sessions_active") != 0:
        assert time.monotonic() < deadline, "sessions still counted as active"
        time.sleep(0.1)
    assert _metric(stream_server, "firstspike_stream_events_total") - events_before == 100 * 40
    assert httpx.get(stream_server.url + "/health/ready").status_code == 200


def _expect_error(server, messages, code, query=""):
    with connect(ws_url(server, query), open_timeout=10) as ws:
        reply = None
        for message in messages:
            try:
                ws.send(message)
            except ConnectionClosed:
                break
        try:
            reply = json.loads(ws.recv(timeout=10))
        except ConnectionClosed:
            pass
    assert reply is not None and reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert reply["error"]


def _events(t, x=None, y=None, p=None):
    n = len(t)
    return encode(
        make_events(
            t,
            x if x is not None else [1] * n,
            y if y is not None else [1] * n,
            p if p is not None else [1] * n,
        )
    )


@pytest.mark.parametrize(
    "name, messages, code, query",
    [
        ("header not json", ["hello"], "bad_header", ""),
        ("wrong format", [json.dumps({"format": "aedat", "width": 34, "height": 34})], "bad_header", ""),
        ("missing width", [json.dumps({"format": "dvs-events/1", "height": 34})], "bad_header", ""),
        ("partial record", [HEADER, b"\x00" * 20], "partial_record", ""),
        ("decreasing timestamps", [HEADER, _events([100, 50])], "decreasing_timestamps", ""),
        (
            "decreasing across packets",
            [HEADER, _events([100, 200]), _events([150])],
            "decreasing_timestamps",
            "",
        ),
        ("outside the sensor", [HEADER, _events([1, 2], x=[3, 34])], "out_of_sensor", ""),
        ("too long", [HEADER, _events([0, 61_000_000])], "stream_too_long", ""),
        (
            "too many events",
            [HEADER] + [_events([0] * 50_000, x=[0] * 50_000, y=[0] * 50_000, p=[0] * 50_000)] * 5,
            "stream_too_long",
            "",
        ),
        ("bad json packet", [HEADER, json.dumps({"t": [1]})], "bad_packet", ""),
        ("unknown model", [HEADER], "unknown_model", "?model=nope"),
        ("image model", [HEADER], "wrong_model_kind", "?model=digits"),
    ],
)
def test_malformed_streams_get_typed_errors_and_the_server_stays_ready(
    stream_server, name, messages, code, query
):
    _expect_error(stream_server, messages, code, query)
    assert httpx.get(stream_server.url + "/health/ready").status_code == 200


def test_idle_stream_times_out(stream_server):
    _expect_error(stream_server, [HEADER], "idle_timeout")


def test_post_errors_are_4xx_json(stream_server):
    with httpx.Client(base_url=stream_server.url, timeout=30) as client:
        partial = client.post(
            "/classify/stream",
            params={"width": 34, "height": 34},
            content=b"\x00" * 20,
            headers={"content-type": "application/x-dvs-events"},
        )
        no_size = client.post(
            "/classify/stream", content=_events([1]), headers={"content-type": "application/x-dvs-events"}
        )
        wrong_type = client.post("/classify/stream", content=b"x", headers={"content-type": "text/plain"})
    assert (partial.status_code, partial.json()["code"]) == (400, "partial_record")
    assert (no_size.status_code, no_size.json()["code"]) == (400, "bad_header")
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (415, "unsupported_media_type")
