"""The service on the onnx runtime, as in the slim image: `make test` runs this file in a second
environment where torch is not installed (FIRSTSPIKE_SLIM=1); the main run runs it too."""

from __future__ import annotations

import importlib.util
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import MODEL_STORE, start_server, stop_server

SLIM = os.environ.get("FIRSTSPIKE_SLIM") == "1"


def _digit_pngs() -> tuple[list[bytes], list[int]]:
    """The digits test split as DESIGN.md fixes it (i % 5 == 0, 8-bit grey min(255, 16 v)),
    made here without the training package so that this file needs no torch."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pngs, labels = [], []
    for index in range(0, len(digits.target), 5):
        pixels = np.minimum(255, digits.images[index] * 16).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "L").save(buffer, "PNG")
        pngs.append(buffer.getvalue())
        labels.append(int(digits.target[index]))
    return pngs, labels


@pytest.mark.skipif(not SLIM, reason="only meaningful in the slim environment")
def test_torch_is_not_installed_here():
    assert importlib.util.find_spec("torch") is None


def test_classify_end_to_end_on_the_onnx_runtime(tmp_path):
    pngs, labels = _digit_pngs()
    manifest = json.loads((MODEL_STORE / "digits" / "1" / "manifest.json").read_text())
    server = start_server(tmp_path, env={"FIRSTSPIKE_RUNTIME": "onnx"})
    try:
        with server.client() as client:
            answers = []
            for png in pngs:
                response = client.post("/classify", content=png, headers={"content-type": "image/png"})
                assert response.status_code == 200, response.text
                answers.append(response.json())
            bad = client.post("/classify", content=b"not an image", headers={"content-type": "image/png"})
            models = client.get("/models").json()
    finally:
        stop_server(server)
    accuracy = sum(a["class_index"] == y for a, y in zip(answers, labels)) / len(labels)
    mean_timestep = sum(a["decision_timestep"] for a in answers) / len(answers)
    assert len(answers) == 360
    assert accuracy == pytest.approx(manifest["evaluation"]["accuracy"])
    assert mean_timestep == pytest.approx(manifest["evaluation"]["mean_decision_timestep"])
    assert all(a["timesteps_run"] == a["decision_timestep"] for a in answers)
    assert bad.status_code == 400 and bad.json()["code"] == "undecodable_image"
    assert models["models"][0]["runtime"] == "onnx"


def test_open_inference_protocol_on_the_onnx_runtime(tmp_path):
    """tritonclient against the onnx runtime: 60 rows per request (FIRSTSPIKE_MAX_REQUEST_ROWS
    is 64) through the batcher, each with the answer /classify gives it alone."""
    import tritonclient.http as triton

    pngs, _ = _digit_pngs()
    server = start_server(tmp_path, env={"FIRSTSPIKE_RUNTIME": "onnx", "FIRSTSPIKE_DEFAULT_MODELS": "digits"})
    try:
        with server.client() as client:
            alone = [
                client.post("/classify", content=png, headers={"content-type": "image/png"}).json()
                for png in pngs
            ]
        oip = triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=120)
        rows = {"class_index": [], "decision_timestep": [], "exit_reason": []}
        for start in range(0, len(pngs), 60):
            image = triton.InferInput("image", [len(pngs[start : start + 60])], "BYTES")
            image.set_data_from_numpy(np.array(pngs[start : start + 60], dtype=object))
            result = oip.infer("digits", [image])
            for name in rows:
                rows[name] += result.as_numpy(name).tolist()
        metadata = oip.get_model_metadata("digits")
        oip.close()
    finally:
        stop_server(server)
    assert rows["class_index"] == [a["class_index"] for a in alone]
    assert rows["decision_timestep"] == [a["decision_timestep"] for a in alone]
    assert rows["exit_reason"] == [a["exit_reason"].encode() for a in alone]
    assert metadata["platform"] == "firstspike_onnx"
