"""``firstspike serve --workers N``: N processes on one port, one /metrics for all of them."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from service.settings import Settings
from tests.helpers import MODEL_STORE, ROOT, start_server, stop_server

WORKERS = ("--workers", "2")
PNG = {"content-type": "image/png"}


def start_workers(tmp_path: Path, env: dict[str, str] | None = None):
    """A two-worker server whose metrics directory lands under ``tmp_path/tmp``, returned once
    both workers have loaded their models (each logs ``ready:``)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    server = start_server(tmp_path, env={"TMPDIR": str(tmpdir), **(env or {})}, args=WORKERS)
    wait_for_log(server, "ready:", 2)
    return server


def wait_for_log(server, prefix: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(line.startswith(prefix) for line in server.log().splitlines()) < count:
        if server.process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"not {count} lines {prefix!r}:\n{server.log()}")
        time.sleep(0.1)


def worker_pids(server) -> set[int]:
    """The spawned uvicorn workers among the server's child processes."""
    pids = set()
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    pids.add(int(child))
    return pids


def metrics_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob("firstspike-metrics-*"))


def scrape(server) -> dict:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def total(families: dict, name: str, sample: str | None = None, **labels: str) -> float:
    """The sum of a family's samples (named ``sample``, default the family's own) whose labels
    include ``labels``; 0 for a family that is not exposed."""
    if name not in families:
        return 0.0
    return sum(
        s.value
        for s in families[name].samples
        if s.name == (sample or name) and all(s.labels.get(key) == value for key, value in labels.items())
    )


def classify(url: str, pngs: list[bytes], count: int, clients: int) -> list[int]:
    """``count`` POST /classify from ``clients`` threads, each on a new connection (so that the
    kernel hands them to either worker); the status codes."""

    def post(i: int) -> int:
        return httpx.post(
            url + "/classify", content=pngs[i % len(pngs)], headers={**PNG, "connection": "close"}, timeout=60
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(post, range(count)))


def reference_families() -> dict:
    """Every metric as one process exposes it (per-app registry), each with one sample."""
    from prometheus_client import generate_latest

    from service.metrics import Metrics

    metrics = Metrics()
    for metric in vars(metrics).values():
        if hasattr(metric, "_labelnames"):
            child = metric.labels(*["x"] * len(metric._labelnames))
            {
                "counter": lambda child=child: child.inc(),
                "gauge": lambda child=child: child.set(1),
                "histogram": lambda child=child: child.observe(1),
            }[metric._type]()
    text = generate_latest(metrics.registry).decode()
    # Creation times ("_created", read back as families of their own) exist in one process only.
    return {
        family.name: family
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")
    }


def label_names(family) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for sample in family.samples:
        names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_two_workers_share_the_load_and_metrics_count_every_request_once(tmp_path, digits_test_pngs):
    from training.contract.events.format import encode
    from training.data.digits_dvs import digits_dvs_split

    server = start_workers(tmp_path)
    try:
        pids = worker_pids(server)
        assert len(pids) == 2, pids
        statuses = classify(server.url, digits_test_pngs[0], 300, clients=6)
        assert statuses == [200] * 300
        with connect(server.url.replace("http://", "ws://") + "/classify/stream?model=digits-dvs") as ws:
            ws.send(json.dumps({"format": "dvs-events/1", "width": 34, "height": 34}))
            ws.send(encode(digits_dvs_split("test")[0][0]))
            with contextlib.suppress(ConnectionClosedOK):
                ws.send(json.dumps({"type": "end"}))
            assert json.loads(ws.recv(timeout=30))["type"] == "decision"
        time.sleep(0.5)  # the stream's gauge goes back to 0 just after its answer
        families = scrape(server)

        # Both workers answered, and /metrics counts each request exactly once, whichever answered it.
        time.sleep(0.3)
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        served = [line["pid"] for line in lines if line["path"] == "/classify"]
        assert len(served) == 300 and set(served) == pids, {pid: served.count(pid) for pid in set(served)}
        assert (
            total(families, "firstspike_requests", "firstspike_requests_total", endpoint="/classify") == 300
        )
        assert (
            total(
                families,
                "firstspike_requests",
                "firstspike_requests_total",
                endpoint="/classify",
                status="200",
            )
            == 300
        )
        assert (
            total(
                families,
                "firstspike_decision_timestep",
                "firstspike_decision_timestep_count",
                endpoint="/classify",
            )
            == 300
        )
        assert total(families, "firstspike_exits", "firstspike_exits_total", endpoint="/classify") == 300
        assert (
            total(
                families,
                "firstspike_decision_timestep",
                "firstspike_decision_timestep_count",
                endpoint="/classify/stream",
                model="digits-dvs",
            )
            == 1
        )
        assert total(families, "firstspike_stream_events", "firstspike_stream_events_total") > 0

        # One series per loaded version, at 1 (not 2), with no pid label.
        served_versions = {
            (d.parent.name, d.name) for d in MODEL_STORE.glob("*/*") if (d / "manifest.json").exists()
        }
        info = families["firstspike_model_info"].samples
        assert sorted((s.labels["model"], s.labels["version"]) for s in info) == sorted(served_versions)
        assert all(
            s.value == 1 and set(s.labels) == {"model", "version", "runtime", "timesteps"} for s in info
        )
        # Live gauges are summed over the workers: nothing is in flight now.
        assert total(families, "firstspike_inflight_requests") == 0
        assert total(families, "firstspike_stream_sessions_active") == 0

        # Every metric keeps its documented name, type and labels, histograms their buckets.
        reference = reference_families()
        exercised = set(reference) - {"firstspike_rejections"}  # nothing was shed
        assert exercised <= set(families), exercised - set(families)
        for name in exercised:
            assert families[name].type == reference[name].type, name
            assert families[name].documentation == reference[name].documentation, name
            expected = label_names(reference[name])
            got = {
                sample: labels for sample, labels in label_names(families[name]).items() if sample in expected
            }
            assert got, name
            assert got == {sample: labels for sample, labels in expected.items() if sample in got}, name
            if reference[name].type == "histogram":
                buckets = {s.labels["le"] for s in reference[name].samples if s.name.endswith("_bucket")}
                for sample in families[name].samples:
                    if sample.name.endswith("_bucket"):
                        assert sample.labels["le"] in buckets, (name, sample)
                assert {
                    s.labels["le"] for s in families[name].samples if s.name.endswith("_bucket")
                } == buckets
    finally:
        stop_server(server)
    assert server.process.returncode == 0, server.log()
    assert metrics_dirs(tmp_path) == []  # removed on exit


def test_a_restart_counts_from_zero_also_after_a_crash(tmp_path, digits_test_pngs):
    pngs = digits_test_pngs[0]
    env = {"FIRSTSPIKE_DEFAULT_MODELS": "digits"}
    first = start_workers(tmp_path, env)
    try:
        assert classify(first.url, pngs, 20, clients=2) == [200] * 20
        assert (
            total(scrape(first), "firstspike_requests", "firstspike_requests_total", endpoint="/classify")
            == 20
        )
    finally:
        stop_server(first)
    assert metrics_dirs(tmp_path) == []

    second = start_workers(tmp_path, env)
    try:
        families = scrape(second)
        assert total(families, "firstspike_requests", "firstspike_requests_total", endpoint="/classify") == 0
        assert total(families, "firstspike_decision_timestep", "firstspike_decision_timestep_count") == 0
        assert classify(second.url, pngs, 7, clients=2) == [200] * 7
        assert (
            total(scrape(second), "firstspike_requests", "firstspike_requests_total", endpoint="/classify")
            == 7
        )
        # A crash: every process of the server killed at once, nothing cleaned up.
        for pid in [second.process.pid, *worker_pids(second)]:
            os.kill(pid, signal.SIGKILL)
        second.process.wait(timeout=30)
    finally:
        stop_server(second)
    stale = metrics_dirs(tmp_path)
    assert len(stale) == 1 and any(stale[0].iterdir())

    third = start_workers(tmp_path, env)
    try:
        families = scrape(third)
        assert total(families, "firstspike_requests", "firstspike_requests_total", endpoint="/classify") == 0
        assert total(families, "firstspike_decision_timestep", "firstspike_decision_timestep_count") == 0
        assert stale[0] not in metrics_dirs(tmp_path)  # its parent is gone: swept at start
        assert len(metrics_dirs(tmp_path)) == 1
    finally:
        stop_server(third)
    assert metrics_dirs(tmp_path) == []


def test_a_worker_that_dies_is_replaced_and_only_its_live_gauges_are_dropped(tmp_path, digits_test_pngs):
    server = start_workers(tmp_path, {"FIRSTSPIKE_DEFAULT_MODELS": "digits"})
    try:
        assert classify(server.url, digits_test_pngs[0], 40, clients=4) == [200] * 40
        # A worker counts a request just after its last byte has gone out: let the count land
        # before a worker is killed, so the check below is about the kill, not that race.
        deadline = time.monotonic() + 10
        while (
            total(scrape(server), "firstspike_requests", "firstspike_requests_total", endpoint="/classify")
            < 40
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        (directory,) = metrics_dirs(tmp_path)
        victim = min(worker_pids(server))
        assert list(directory.glob(f"gauge_live*_{victim}.db"))
        os.kill(victim, signal.SIGKILL)
        wait_for_log(server, "ready:", 3)  # its replacement has loaded the models
        assert len(worker_pids(server)) == 2 and victim not in worker_pids(server)
        assert not list(directory.glob(f"gauge_live*_{victim}.db"))
        families = scrape(server)
        # What the dead worker answered still counts; its model info no longer does, the others' does.
        assert total(families, "firstspike_requests", "firstspike_requests_total", endpoint="/classify") == 40
        versions = [d for d in (MODEL_STORE / "digits").iterdir() if (d / "manifest.json").exists()]
        assert [s.value for s in families["firstspike_model_info"].samples] == [1] * len(versions)
    finally:
        stop_server(server)


def test_sigterm_drains_every_worker(tmp_path, digits_test_pngs):
    png = digits_test_pngs[0][0]
    server = start_workers(tmp_path, {"FIRSTSPIKE_DEFAULT_MODELS": "digits", "FIRSTSPIKE_DRAIN_DELAY_S": "2"})
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # Fresh connections reach either worker: each says it is draining.
    ready = [
        httpx.get(server.url + "/health/ready", headers={"connection": "close"}, timeout=5) for _ in range(8)
    ]
    work = httpx.post(server.url + "/classify", content=png, headers=PNG, timeout=5)
    assert server.process.wait(timeout=30) == 0, server.log()
    assert {(r.status_code, r.json()["status"]) for r in ready} == {(503, "draining")}
    assert work.status_code == 503 and work.json()["code"] == "draining"
    assert server.log().count("Finished server process") == 2
    assert metrics_dirs(tmp_path) == []


def _run_metrics_worker(directory: Path, code: str) -> int:
    """A process writing metrics into ``directory`` as a worker does; its pid."""
    script = (
        "import os\nfrom service.metrics import Metrics\nm = Metrics()\n" + code + "\nprint(os.getpid())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        cwd=ROOT,
        check=True,
    )
    return int(completed.stdout.split()[-1])


def test_gauges_merge_as_their_multiprocess_mode_says(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

    v1, v2 = ("digits", "1", "torch", "4"), ("digits", "2", "torch", "4")
    a = _run_metrics_worker(
        tmp_path,
        f"m.announce_model({v1}, True)\nm.announce_model({v2}, True)\nm.inflight.labels('/classify').inc(1)",
    )
    b = _run_metrics_worker(
        tmp_path,
        f"m.announce_model({v1}, True)\nm.announce_model({v2}, True)\n"
        f"m.announce_model({v2}, False)\nm.inflight.labels('/classify').inc(2)",
    )

    def exposed() -> dict:
        # What a worker's /metrics answers: its registry, read in a process of its own.
        script = (
            "from prometheus_client import generate_latest\nfrom service.metrics import Metrics\n"
            "print(generate_latest(Metrics().registry).decode())"
        )
        text = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
            check=True,
        ).stdout
        return {family.name: family for family in text_string_to_metric_families(text)}

    def info(families: dict) -> dict:
        return {s.labels["version"]: s.value for s in families["firstspike_model_info"].samples}

    families = exposed()
    assert info(families) == {"1": 1, "2": 1}  # not 2; version 2 is still served by a
    assert total(families, "firstspike_inflight_requests") == 3
    mark_process_dead(a, str(tmp_path))
    families = exposed()
    assert info(families) == {"1": 1}  # b, the one live worker, unloaded version 2
    assert total(families, "firstspike_inflight_requests") == 2
    # prometheus_client's collector alone would still show version 2, at 0.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(tmp_path))
    assert (
        'firstspike_model_info{model="digits",runtime="torch",timesteps="4",version="2"} 0.0'
        in generate_latest(registry).decode()
    )
    mark_process_dead(b, str(tmp_path))
    families = exposed()
    assert "firstspike_inflight_requests" not in families and "firstspike_model_info" not in families


def test_settings_reach_the_workers_through_the_environment(monkeypatch, tmp_path):
    settings = Settings(
        model_store=tmp_path,
        default_models=["digits", "digits-dvs"],
        runtime="onnx",
        workers=3,
        max_batch_delay_ms=1.5,
        api_key=None,
        log_requests=False,
    )
    for name in [n for n in os.environ if n.startswith("FIRSTSPIKE_")]:
        monkeypatch.delenv(name)
    for name, value in settings.to_environment().items():
        if value is not None:
            monkeypatch.setenv(name, value)
    assert Settings() == settings
    assert Settings(max_batch_size=32, workers=2).intra_op_threads == max(1, (os.cpu_count() or 1) // 2)
    assert Settings(max_batch_size=32, workers=2, threads=3).intra_op_threads == 3


@pytest.mark.parametrize(
    "args, env",
    [
        ([], {"FIRSTSPIKE_WORKERS": "0"}),
        ([], {"FIRSTSPIKE_WORKERS": "two"}),
        (["--workers", "0"], {}),
        (["--workers", "-1"], {}),
    ],
)
def test_bad_worker_counts_are_refused_in_one_line(args, env):
    script = Path(sys.executable).with_name("firstspike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "training.cli"]
    completed = subprocess.run(
        [*command, "serve", "--port", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith("firstspike serve: error: invalid setting workers"), completed.stderr


def test_only_dead_servers_metrics_dirs_of_this_pid_namespace_are_swept(monkeypatch, tmp_path):
    from service import server

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    namespace = server._owner().rsplit(" ", 1)[0]
    owners = {
        "dead": f"{namespace} {dead}",
        "live": server._owner(),
        "elsewhere": f"pid:[1] {dead}",
        "unowned": None,
    }
    for name, owner in owners.items():
        directory = tmp_path / f"firstspike-metrics-{name}"
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"")
        if owner is not None:
            (directory / "owner").write_text(owner)
    server.remove_stale_metrics_dirs()
    assert sorted(d.name for d in tmp_path.iterdir()) == [
        "firstspike-metrics-elsewhere",
        "firstspike-metrics-live",
        "firstspike-metrics-unowned",
    ]


def test_every_worker_has_the_connection_timeouts(tmp_path):
    """Workers import their HTTP protocol by name (service.http.worker): a header trickling in
    still gets 408 there, and the timeout is counted in the aggregated metrics."""
    server = start_workers(tmp_path, env={"FIRSTSPIKE_HEADER_TIMEOUT_S": "1"})
    try:
        host, port = server.url.removeprefix("http://").split(":")
        answers = []
        for _ in range(4):  # new connections, spread over the workers by the kernel
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                started, answer = time.monotonic(), b""
                while chunk := sock.recv(65536):
                    answer += chunk
                answers.append((answer, time.monotonic() - started))
        for answer, seconds in answers:
            assert answer.startswith(b"HTTP/1.1 408") and b'"code": "header_timeout"' in answer, answer
            assert 0.9 <= seconds <= 5, seconds
        assert (
            total(
                scrape(server),
                "firstspike_rejections",
                "firstspike_rejections_total",
                reason="header_timeout",
            )
            == 4
        )
    finally:
        stop_server(server)
