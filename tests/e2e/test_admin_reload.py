"""Admin authentication and hot reload against a real uvicorn process."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time

import httpx
import pytest

from tests.helpers import MODEL_STORE, expected_runtime, start_server, stop_server

KEY = "s3cret-test-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "store"
    shutil.copytree(MODEL_STORE / "digits" / "1", root / "digits" / "1")
    return root


@pytest.fixture()
def server(tmp_path, store):
    running = start_server(tmp_path, env={"FIRSTSPIKE_API_KEY": KEY}, store=store)
    yield running
    stop_server(running)


def _classify(client, png) -> httpx.Response:
    return client.post("/classify", content=png, headers={"content-type": "image/png"})


def test_admin_needs_the_key(server):
    with server.client() as client:
        missing = client.post("/models/digits/reload")
        wrong = client.post("/models/digits/reload", headers={"Authorization": "Bearer nope"})
        basic = client.post("/models/digits/reload", headers={"Authorization": f"Basic {KEY}"})
        ok = client.post("/models/digits/reload", headers=ADMIN)
    for response in (missing, wrong, basic):
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert ok.status_code == 200 and ok.json()["versions"] == [1] and ok.json()["loaded"] == []


def test_admin_is_disabled_without_a_key(tmp_path, store):
    running = start_server(tmp_path, store=store)
    try:
        response = httpx.post(running.url + "/models/digits/reload", headers=ADMIN)
        assert response.status_code == 403 and response.json()["code"] == "admin_disabled"
    finally:
        stop_server(running)


def test_reload_under_load_switches_versions_without_a_failed_request(server, store, digits_test_pngs):
    png = digits_test_pngs[0][0]
    versions, failures, stop = [], [], threading.Event()

    def load():
        with server.client() as client:
            while not stop.is_set():
                response = _classify(client, png)
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    versions.append(response.json()["model"]["version"])

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    shutil.copytree(store / "digits" / "1", store / "digits" / "2")
    with server.client() as client:
        started = time.perf_counter()
        result = client.post("/models/digits/reload", headers=ADMIN)
        reload_seconds = time.perf_counter() - started
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join()
        assert result.status_code == 200, result.text
        assert result.json()["versions"] == [1, 2] and result.json()["loaded"] == [2]
        assert result.json()["default_version"] == 2
        assert not failures, failures[:3]
        assert versions[0] == 1 and versions[-1] == 2
        print(
            f"\nreload under load: {len(versions)} requests from 4 clients, {len(failures)} failed, "
            f"reload took {reload_seconds * 1000:.0f} ms, {versions.count(1)} answered by v1, "
            f"{versions.count(2)} by v2"
        )
        switch = versions.index(2)
        assert all(v == 2 for v in versions[switch + 4 :])  # at most the requests already in flight
        assert _classify(client, png).json()["model"]["version"] == 2
        assert client.get("/models/digits").json()["versions"] == [1, 2]
        assert client.get("/health/ready").status_code == 200


def test_a_corrupted_version_is_refused_and_the_old_one_keeps_serving(server, store, digits_test_pngs):
    bad = store / "digits" / "2"
    shutil.copytree(store / "digits" / "1", bad)
    weights = bad / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    with server.client() as client:
        response = client.post("/models/digits/reload", headers=ADMIN)
        assert response.status_code == 422 and response.json()["code"] == "version_refused"
        assert "sha256" in response.json()["error"] and "2:" in response.json()["error"]
        answer = _classify(client, digits_test_pngs[0][0])
        assert answer.status_code == 200 and answer.json()["model"]["version"] == 1
        assert client.get("/models/digits").json()["versions"] == [1]


def test_removed_versions_are_unloaded_and_bad_names_refused(server, store, digits_test_pngs):
    shutil.copytree(store / "digits" / "1", store / "digits" / "2")
    with server.client() as client:
        assert client.post("/models/digits/reload", headers=ADMIN).json()["versions"] == [1, 2]
        shutil.rmtree(store / "digits" / "1")
        result = client.post("/models/digits/reload", headers=ADMIN).json()
        assert result["versions"] == [2] and result["unloaded"] == [1]
        old = client.post(
            "/classify",
            params={"version": 1},
            content=digits_test_pngs[0][0],
            headers={"content-type": "image/png"},
        )
        assert old.status_code == 404
        assert client.post("/models/nothing/reload", headers=ADMIN).status_code == 404
        assert client.post("/models/..%2Fetc/reload", headers=ADMIN).status_code in (400, 404)
        info = [
            line
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("firstspike_model_info{")
        ]
        runtime = expected_runtime()  # a copy of a shipped version, with its ONNX graphs
        assert info == [
            f'firstspike_model_info{{model="digits",runtime="{runtime}",timesteps="4",version="2"}} 1.0'
        ]


def _rewrite_manifest(version_dir, change) -> None:
    manifest = json.loads((version_dir / "manifest.json").read_text())
    change(manifest)
    (version_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_reloads_that_retire_a_version_under_load_never_fail_a_request(server, store, digits_test_pngs):
    """Each reload replaces version 1 (its manifest changed) while four clients keep sending:
    a request that picked the old version just before finishes on it, never a 500 or a hang."""
    pngs = digits_test_pngs[0]
    statuses, stop = [], threading.Event()

    def load(offset: int) -> None:
        with server.client() as client:
            index = offset
            while not stop.is_set():
                statuses.append(_classify(client, pngs[index % len(pngs)]).status_code)
                index += 4

    workers = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    try:
        with server.client() as client:
            for round_ in range(8):
                _rewrite_manifest(
                    store / "digits" / "1", lambda m, round_=round_: m.__setitem__("notes", f"round {round_}")
                )
                result = client.post("/models/digits/reload", headers=ADMIN)
                assert result.status_code == 200 and result.json()["loaded"] == [1], result.text
                time.sleep(0.1)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert len(statuses) > 50 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


def _broken_copies(store):
    """Copies of digits/1, each broken in a way that once stopped the loading of every model
    after it: an ONNX graph onnxruntime cannot load (its hash updated to match), a malformed
    'files' entry, an ONNX graph the manifest uses but does not list."""
    source = store / "digits" / "1"
    bad_graph = store / "a-bad-graph" / "1"
    shutil.copytree(source, bad_graph)
    (bad_graph / "step.onnx").write_bytes(b"not an onnx graph")
    _rewrite_manifest(
        bad_graph,
        lambda m: m["files"].__setitem__(
            "step.onnx", {"sha256": hashlib.sha256(b"not an onnx graph").hexdigest(), "bytes": 17}
        ),
    )
    bad_files = store / "b-bad-files" / "1"
    shutil.copytree(source, bad_files)
    _rewrite_manifest(bad_files, lambda m: m["files"].__setitem__("step.onnx", "0" * 64))
    unlisted = store / "c-unlisted" / "1"
    shutil.copytree(source, unlisted)
    _rewrite_manifest(unlisted, lambda m: m["files"].pop("step.onnx"))
    return {"a-bad-graph/1": "step.onnx", "b-bad-files/1": "files['step.onnx']", "c-unlisted/1": "step.onnx"}


def test_a_version_that_fails_to_load_is_refused_alone_and_named(tmp_path, store, digits_test_pngs):
    broken = _broken_copies(store)
    running = start_server(tmp_path, env={"FIRSTSPIKE_API_KEY": KEY}, store=store, wait_ready=False)
    try:
        with running.client() as client:
            deadline = time.monotonic() + 60
            while client.get("/health/ready").json().get("detail", {}).get("loading", True):
                assert time.monotonic() < deadline, "loading never finished"
                time.sleep(0.1)
            listing = client.get("/models").json()
            assert [m["name"] for m in listing["models"]] == [
                "digits"
            ]  # the model after the broken ones loaded
            assert set(listing["errors"]) == set(broken)
            for version, file in broken.items():
                assert file in listing["errors"][version], listing["errors"][version]
            assert client.get("/health/ready").status_code == 503  # every model of the store is a default one
            reload = client.post("/models/a-bad-graph/reload", headers=ADMIN)
            assert reload.status_code == 422 and "step.onnx" in reload.json()["error"], reload.text
        log = running.log()
        assert all(f"refusing model {version.replace('/', '/')}" in log for version in broken), log[-2000:]
        assert "Traceback" not in log
    finally:
        stop_server(running)
