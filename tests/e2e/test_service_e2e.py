"""The service as users run it: a real uvicorn process on 127.0.0.1, real PNG files."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import pytest

from tests.helpers import MODEL_STORE, expected_runtime, start_server, stop_server
from training.data import load_dataset
from training.evaluate import evaluate
from training.store.load import load_network


@pytest.fixture(scope="module")
def reference():
    """What ``firstspike eval`` computes on the same split, per sample."""
    network, _ = load_network(MODEL_STORE / "digits")
    return evaluate(network, load_dataset("digits", "test"))


def _send(client, form: str, png: bytes, **params):
    if form == "multipart":
        return client.post("/classify", files={"image": ("digit.png", png, "image/png")}, params=params)
    if form == "raw":
        return client.post("/classify", content=png, headers={"content-type": "image/png"}, params=params)
    return client.post("/classify", json={"image_base64": base64.b64encode(png).decode()}, params=params)


@pytest.mark.parametrize("form", ["multipart", "raw", "json"])
def test_all_test_digits_over_http_match_firstspike_eval(server, digits_test_pngs, reference, form):
    pngs, labels = digits_test_pngs
    answers = []
    with server.client() as client:
        for png in pngs:
            response = _send(client, form, png)
            assert response.status_code == 200, response.text
            answers.append(response.json())
    accuracy = sum(a["class_index"] == y for a, y in zip(answers, labels)) / len(labels)
    mean_timestep = sum(a["decision_timestep"] for a in answers) / len(answers)
    assert accuracy == pytest.approx(reference.accuracy)
    assert mean_timestep == pytest.approx(reference.mean_decision_timestep)
    # and per sample: the early-exit answer is the full T-step run's decision
    assert [a["class_index"] for a in answers] == reference.per_sample["class_index"]
    assert [a["decision_timestep"] for a in answers] == reference.per_sample["decision_timestep"]
    assert [a["exit_reason"] for a in answers] == reference.per_sample["exit_reason"]
    assert all(a["timesteps_run"] == a["decision_timestep"] for a in answers)
    assert [a["energy"]["joules"] for a in answers] == pytest.approx(reference.per_sample["joules"], rel=1e-5)


def test_response_has_every_documented_field(server, digits_test_pngs):
    pngs, labels = digits_test_pngs
    with server.client() as client:
        response = _send(client, "raw", pngs[3], model="digits", version=1)
    body = response.json()
    assert response.headers["x-request-id"] == body["request_id"]
    assert {
        "request_id",
        "model",
        "class_index",
        "label",
        "decision_timestep",
        "max_timesteps",
        "exit_reason",
        "spikes",
        "energy",
        "scores",
        "latency_ms",
    } <= body.keys()
    assert body["model"] == {"name": "digits", "version": 1}
    assert body["label"] == str(body["class_index"]) and body["max_timesteps"] == 4
    assert set(body["spikes"]) == {"total", "per_layer", "output"}
    assert body["spikes"]["total"] == sum(body["spikes"]["per_layer"]) + sum(body["spikes"]["output"])
    assert len(body["spikes"]["output"]) == 10 and len(body["scores"]) == 10
    assert set(body["energy"]) == {"synaptic_ops", "macs", "joules"}
    assert body["energy"]["joules"] == pytest.approx(
        4.6e-12 * body["energy"]["macs"] + 0.9e-12 * body["energy"]["synaptic_ops"]
    )


def test_early_exit_off_runs_all_timesteps_with_the_same_answer(server, digits_test_pngs):
    pngs, _ = digits_test_pngs
    with server.client() as client:
        fast = _send(client, "raw", pngs[0]).json()
        full = _send(client, "raw", pngs[0], early_exit="false").json()
    assert (fast["class_index"], fast["decision_timestep"]) == (
        full["class_index"],
        full["decision_timestep"],
    )
    assert fast["timesteps_run"] == fast["decision_timestep"] and full["timesteps_run"] == 4
    assert full["energy"]["synaptic_ops"] > fast["energy"]["synaptic_ops"]


def test_request_id_is_echoed_when_given(server, digits_test_pngs):
    with server.client() as client:
        response = client.get("/health/live", headers={"X-Request-ID": "trace-123"})
        odd = client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"})
    assert response.headers["x-request-id"] == "trace-123"
    assert odd.headers["x-request-id"] != "bad id with spaces" and len(odd.headers["x-request-id"]) == 32


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text


def _value(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_after_n_requests(server, digits_test_pngs):
    pngs, _ = digits_test_pngs
    n = 25
    with server.client() as client:
        before = _scrape(client)
        answers = [_send(client, "raw", png).json() for png in pngs[:n]]
        client.post("/classify", content=b"junk", headers={"content-type": "image/png"})
        after = _scrape(client)
    version = str(answers[0]["model"]["version"])  # the highest version answers by default
    labels = {"model": "digits", "version": version, "endpoint": "/classify"}

    def delta(name, **extra):
        return _value(after, name, **labels, **extra) - _value(before, name, **labels, **extra)

    assert delta("firstspike_decision_timestep_count") == n
    assert delta("firstspike_decision_timestep_sum") == sum(a["decision_timestep"] for a in answers)
    assert delta("firstspike_decision_timestep_bucket", le="1.0") == sum(
        a["decision_timestep"] <= 1 for a in answers
    )
    reasons = {}
    for a in answers:
        reasons[a["exit_reason"]] = reasons.get(a["exit_reason"], 0) + 1
    for reason, count in reasons.items():
        assert delta("firstspike_exits_total", reason=reason) == count
    assert delta("firstspike_energy_joules_count") == n
    assert delta("firstspike_energy_joules_sum") == pytest.approx(
        sum(a["energy"]["joules"] for a in answers), rel=1e-6
    )
    assert delta("firstspike_spikes_per_request_sum") == sum(a["spikes"]["total"] for a in answers)
    assert delta("firstspike_synaptic_ops_per_request_count") == n
    assert delta("firstspike_decision_latency_seconds_count") == n
    request_labels = {"endpoint": "/classify", "model": "digits", "version": version}
    assert (
        _value(after, "firstspike_requests_total", status="200", **request_labels)
        - _value(before, "firstspike_requests_total", status="200", **request_labels)
    ) == n
    assert (
        _value(after, "firstspike_requests_total", status="400", **request_labels)
        - _value(before, "firstspike_requests_total", status="400", **request_labels)
    ) == 1
    assert _value(after, "firstspike_request_duration_seconds_count", **request_labels) >= n
    runtime = expected_runtime()  # the shipped versions have their ONNX graphs
    for served in ("1", version):
        assert (
            _value(
                after, "firstspike_model_info", model="digits", version=served, runtime=runtime, timesteps="4"
            )
            == 1
        )
    assert "firstspike_inflight_requests" in after
    assert not re.search(r'request_id="', after), "a request id must never be a label"


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a huge image, followed by a tiny (invalid) data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def _malformed_cases(png: bytes):
    return [
        ("empty raw body", dict(content=b"", headers={"content-type": "image/png"}), {}, 400, "empty_image"),
        (
            "truncated png",
            dict(content=png[: len(png) // 2], headers={"content-type": "image/png"}),
            {},
            400,
            "undecodable_image",
        ),
        (
            "text sent as png",
            dict(content=b"hello, I am text", headers={"content-type": "image/png"}),
            {},
            400,
            "undecodable_image",
        ),
        (
            "wrong content type",
            dict(content=png, headers={"content-type": "text/plain"}),
            {},
            415,
            "unsupported_media_type",
        ),
        ("no content type", dict(content=png), {}, 415, "unsupported_media_type"),
        (
            "broken json",
            dict(content=b'{"image_base64": ', headers={"content-type": "application/json"}),
            {},
            400,
            "invalid_json",
        ),
        ("json not an object", dict(json=["x"]), {}, 400, "missing_field"),
        (
            "json nested too deeply",
            dict(content=b"[" * 100_000, headers={"content-type": "application/json"}),
            {},
            400,
            "invalid_json",
        ),
        ("wrong json field", dict(json={"image": base64.b64encode(png).decode()}), {}, 400, "missing_field"),
        ("bad base64", dict(json={"image_base64": "@@not*base64@@"}), {}, 400, "invalid_base64"),
        ("base64 of a number", dict(json={"image_base64": 12}), {}, 400, "invalid_base64"),
        (
            "wrong multipart field",
            dict(files={"picture": ("d.png", png, "image/png")}),
            {},
            400,
            "missing_field",
        ),
        (
            "broken multipart",
            dict(
                content=b"--xyz\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=xyz"}
            ),
            {},
            400,
            None,
        ),
        (
            "60000x60000 png header",
            dict(content=_png_header_claiming(60000, 60000), headers={"content-type": "image/png"}),
            {},
            413,
            "image_too_large",
        ),
        (
            "oversized body",
            dict(content=b"\x89PNG" + b"\x00" * (5 * 1024 * 1024), headers={"content-type": "image/png"}),
            {},
            413,
            "payload_too_large",
        ),
        (
            "oversized chunked body",
            dict(content=iter([b"\x00" * (1024 * 1024)] * 5), headers={"content-type": "image/png"}),
            {},
            413,
            "payload_too_large",
        ),
        (
            "oversized multipart",
            dict(files={"image": ("big.png", b"\x00" * (5 * 1024 * 1024), "image/png")}),
            {},
            413,
            "payload_too_large",
        ),
        (
            "unknown model",
            dict(content=png, headers={"content-type": "image/png"}),
            {"model": "cifar"},
            404,
            "unknown_model",
        ),
        (
            "unknown version",
            dict(content=png, headers={"content-type": "image/png"}),
            {"version": 99},
            404,
            "unknown_version",
        ),
        (
            "version -3",
            dict(content=png, headers={"content-type": "image/png"}),
            {"version": -3},
            400,
            "invalid_request",
        ),
        (
            "version not a number",
            dict(content=png, headers={"content-type": "image/png"}),
            {"version": "one"},
            400,
            "invalid_request",
        ),
        (
            "model name with ../",
            dict(content=png, headers={"content-type": "image/png"}),
            {"model": "../digits"},
            400,
            "invalid_model_name",
        ),
    ]


def test_malformed_requests_get_clear_4xx_and_the_server_stays_ready(server, digits_test_pngs):
    png = digits_test_pngs[0][0]
    with server.client() as client:
        for name, request, params, status, code in _malformed_cases(png):
            response = client.post("/classify", params=params, **request)
            assert response.status_code == status, (name, response.status_code, response.text)
            body = response.json()
            assert set(body) == {"error", "code", "request_id"}, name
            assert body["request_id"] == response.headers["x-request-id"], name
            assert body["error"], name
            if code:
                assert body["code"] == code, (name, body)
            assert client.get("/health/ready").status_code == 200, name
        for path in ("/models/..%2F..%2Fetc", "/models/nope", "/nothing-here"):
            response = client.get(path)
            assert 400 <= response.status_code < 500 and set(response.json()) == {
                "error",
                "code",
                "request_id",
            }
        assert client.get("/classify").status_code == 405
        assert _send(client, "raw", png).status_code == 200


def test_models_and_health_endpoints(server):
    with server.client() as client:
        models = client.get("/models").json()
        digits = client.get("/models/digits").json()
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        docs = client.get("/openapi.json").json()
    assert [m["name"] for m in models["models"]] == ["digits", "digits-dvs", "fashion-mnist"]
    shipped = sorted(int(path.name) for path in (MODEL_STORE / "digits").iterdir() if path.name.isdigit())
    assert models["models"][0]["versions"] == shipped and len(shipped) >= 2 and models["ready"] is True
    assert [m["kind"] for m in models["models"]] == ["image", "events", "image"]
    assert all(digits["manifests"][str(v)]["evaluation"]["accuracy"] >= 0.98 for v in shipped)
    assert "/classify" in docs["paths"]
    assert set(docs["paths"]["/classify"]["post"]["requestBody"]["content"]) >= {
        "multipart/form-data",
        "application/json",
    }


def test_one_structured_log_line_per_request(server):
    import json

    with server.client() as client:
        request_id = client.get("/health/live", headers={"X-Request-ID": "log-check-1"}).headers[
            "x-request-id"
        ]
    import time

    time.sleep(0.2)
    lines = [
        json.loads(line) for line in server.log().splitlines() if line.startswith("{") and request_id in line
    ]
    assert len(lines) == 1
    assert lines[0]["status"] == 200 and lines[0]["endpoint"] == "/health/live"


def test_ready_is_503_until_models_are_loaded_and_warmed(tmp_path, digits_test_pngs):
    # Many warm-up rounds make the loading window long enough to observe (one model, every version).
    server = start_server(
        tmp_path,
        env={"FIRSTSPIKE_WARMUP_ROUNDS": "400", "FIRSTSPIKE_DEFAULT_MODELS": "digits"},
        wait_ready=False,
    )
    try:
        with server.client() as client:
            first = client.get("/health/ready")
            assert first.status_code == 503 and first.json()["status"] == "not_ready"
            early = client.post(
                "/classify", content=digits_test_pngs[0][0], headers={"content-type": "image/png"}
            )
            assert early.status_code == 503 and early.json()["code"] == "not_ready"
            assert early.headers["retry-after"] == "1"
            assert client.get("/health/live").status_code == 200
            import time

            deadline = time.monotonic() + 300  # generous: shared machines can be slow
            while client.get("/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "never became ready"
                time.sleep(0.1)
            assert (
                client.post(
                    "/classify", content=digits_test_pngs[0][0], headers={"content-type": "image/png"}
                ).status_code
                == 200
            )
    finally:
        stop_server(server)


def test_a_corrupted_model_is_refused_and_ready_stays_503(tmp_path):
    import shutil

    store = tmp_path / "store"
    # Its only version: with a sound second one, digits would serve and turn ready.
    shutil.copytree(MODEL_STORE / "digits" / "1", store / "digits" / "1")
    weights = store / "digits" / "1" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    server = start_server(tmp_path, wait_ready=False, store=store)
    try:
        with server.client() as client:
            import time

            deadline = time.monotonic() + 30
            while True:
                body = client.get("/health/ready").json()
                if body["detail"]["errors"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert body["status"] == "not_ready"
            assert "sha256" in body["detail"]["errors"]["digits/1"]
            assert client.get("/models").json()["models"] == []
    finally:
        stop_server(server)
