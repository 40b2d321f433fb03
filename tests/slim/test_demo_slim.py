"""The demo page, its static files and example streams, and the answers' output raster on the
onnx runtime: `make test-slim` runs this where torch is not installed (the slim image)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_onnx_service import _digit_pngs

from tests.helpers import start_server, stop_server

STATIC = ("/", "/static/demo.js", "/static/demo.css")


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("demo-slim"), env={"FIRSTSPIKE_RUNTIME": "onnx"})
    yield server
    stop_server(server)


def test_page_and_static_files_are_served_and_fetch_nothing_from_outside(onnx_server):
    with onnx_server.client() as client:
        responses = {path: client.get(path) for path in STATIC}
    for path, response in responses.items():
        assert response.status_code == 200, path
        # self-contained: no CDN, no absolute URL anywhere (it must work offline)
        assert not re.search(r"(src|href)=\"(https?:)?//", response.text), path
        assert "https://" not in response.text and "http://" not in response.text, path
    assert responses["/"].headers["content-type"].startswith("text/html")
    assert "javascript" in responses["/static/demo.js"].headers["content-type"]
    for element in ('id="image-input"', 'id="result-label"', 'id="result-timestep"', 'id="spike-raster"'):
        assert element in responses["/"].text


def test_example_streams_are_served(onnx_server):
    with onnx_server.client() as client:
        listing = client.get("/examples/digits-dvs").json()
        assert (listing["format"], listing["width"], listing["height"]) == ("dvs-events/1", 34, 34)
        assert [s["label"] for s in listing["streams"]] == [str(d) for d in range(10)]
        stream = client.get(listing["streams"][3]["url"])
        missing = client.get("/examples/digits")
        beyond = client.get("/examples/digits-dvs/10")
    assert stream.headers["content-type"] == "application/x-dvs-events"
    assert len(stream.content) == 16 * listing["streams"][3]["events"]
    t = np.frombuffer(stream.content, dtype=np.dtype([("t", "<i8"), ("rest", "V8")]))["t"]
    assert (np.diff(t) >= 0).all() and t[-1] - t[0] == listing["streams"][3]["duration_us"]
    assert (missing.status_code, missing.json()["code"]) == (404, "no_examples")
    assert beyond.status_code == 404


def test_answers_carry_the_output_raster(onnx_server):
    pngs, _ = _digit_pngs()
    with onnx_server.client() as client:
        for early_exit in ("true", "false"):
            for png in pngs[:40]:
                answer = client.post(
                    "/classify",
                    params={"early_exit": early_exit},
                    content=png,
                    headers={"content-type": "image/png"},
                ).json()
                raster = answer["output_raster"]
                assert len(raster) == answer["timesteps_run"]
                counts = np.zeros(len(answer["spikes"]["output"]), int)
                for fired in raster:
                    counts[fired] += 1
                assert counts.tolist() == answer["spikes"]["output"]
                if answer["exit_reason"] == "first_spike":
                    assert not any(raster[: answer["decision_timestep"] - 1])
                    assert answer["class_index"] in raster[answer["decision_timestep"] - 1]
