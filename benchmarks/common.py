"""What the benchmarks share: servers on 127.0.0.1, test images, bounded load, percentiles."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx
import numpy as np

ROOT = Path(__file__).parents[1]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (the kernel's pick).

    Returns:
        The port number.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    """A process's resident set (VmRSS) in MiB.

    Args:
        pid: The process, read from ``/proc/<pid>/status``.

    Returns:
        Its resident set in MiB.

    Raises:
        RuntimeError: The status file has no VmRSS line.
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class RunningServer:
    """A server process started by this module.

    Args:
        url: Its base URL (``http://127.0.0.1:<port>``).
        process: The process, to read its pid or stop it.
    """

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Terminate the server; kill it if it has not exited within 15 s."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_service(store: Path, env: dict[str, str] | None = None, workers: int = 1) -> RunningServer:
    """``firstspike serve`` on a free port, waited for until ready (every worker's models loaded).

    Args:
        store: The model store it serves.
        env: Environment variables on top of this process's (``FIRSTSPIKE_*`` settings).
        workers: Server processes (``--workers``).

    Returns:
        The running server.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "training.cli",
        "serve",
        "--port",
        str(port),
        "--model-store",
        str(store),
        "--log-level",
        "warning",
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    return _start(command, port, {"FIRSTSPIKE_LOG_REQUESTS": "false", **(env or {})}, workers)


def start_uvicorn_factory(factory: str, env: dict[str, str]) -> RunningServer:
    """An app factory under uvicorn on a free port, waited for until /health/ready answers 200.

    Args:
        factory: The factory as uvicorn names it (``module:function``).
        env: Environment variables on top of this process's.

    Returns:
        The running server.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return _start(command, port, env)


def _start(command: list[str], port: int, env: dict[str, str], workers: int = 1) -> RunningServer:
    """Waits for /health/ready; with several workers also for each worker's ``ready:`` line on
    stderr, since readiness is per worker and the probe reaches whichever accepts it."""
    stderr: int | IO[bytes] = subprocess.DEVNULL
    log: IO[bytes] | None = None
    if workers > 1:  # the server appends, this process reads through a file object of its own
        handle, path = tempfile.mkstemp(prefix="firstspike-bench-")
        stderr, log = open(path, "ab"), open(path, "rb")
        os.close(handle)
        os.unlink(path)
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr
    )
    if not isinstance(stderr, int):  # the server holds its own copy of the file
        stderr.close()
    server = RunningServer(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"benchmark: server {' '.join(command)} exited with {process.returncode}")
        try:
            if (
                httpx.get(server.url + "/health/ready", timeout=1).status_code == 200
                and _ready_lines(log) >= workers
            ):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit("benchmark: a server did not become ready within 120 s")


def _ready_lines(log: IO[bytes] | None) -> int:
    """Workers that have said ``ready:`` on stderr so far (1 where it is not read)."""
    if log is None:
        return 1
    log.seek(0)
    return sum(line.startswith(b"ready:") for line in log.read().splitlines())


def png(pixels: np.ndarray) -> bytes:
    """A PNG file of 8-bit pixels.

    Args:
        pixels: uint8 [H, W] (grey) or [H, W, 3] (RGB).

    Returns:
        The file's bytes.
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def digits_pngs() -> list[bytes]:
    """The digits test images as PNGs, in the split's order."""
    from training.data.digits import digit_to_png_pixels, digits_split

    images, _ = digits_split("test")
    return [png(digit_to_png_pixels(image)) for image in images]


def fashion_pngs(count: int) -> list[bytes]:
    """The first Fashion-MNIST test images as 28 px grey PNGs (Debian's dataset-fashion-mnist).

    Args:
        count: How many, from the start of the test split.

    Returns:
        The PNG files' bytes.
    """
    from training.data.fashion_mnist import fashion_mnist_split

    images, _ = fashion_mnist_split("test")
    return [png(image) for image in images[:count]]


@dataclass
class LoadResult:
    """What one bounded load measured.

    Args:
        throughput: Requests per second.
        p50_ms: Median latency in milliseconds.
        p99_ms: 99th percentile latency in milliseconds.
        requests: Requests answered.
    """

    throughput: float  # requests per second
    p50_ms: float
    p99_ms: float
    requests: int

    @classmethod
    def from_latencies(cls, latencies: list[float], seconds: float) -> LoadResult:
        """The result of requests timed one by one.

        Args:
            latencies: Each request's latency in seconds.
            seconds: Wall time of the whole load.

        Returns:
            Throughput and percentiles of ``latencies``.
        """
        return cls(
            len(latencies) / seconds,
            statistics.median(latencies) * 1000,
            percentile(latencies, 99) * 1000,
            len(latencies),
        )


def versions_to_compare(given: str | None, model_dir: Path) -> list[int]:
    """A ``--versions`` argument ("1,3") as numbers; none given: every version in the store.

    Args:
        given: The argument, or None.
        model_dir: The model's folder in the store (``<store>/<name>``).

    Returns:
        The version numbers.
    """
    from training.contract.manifest import list_versions

    return [int(v) for v in given.split(",")] if given else list_versions(model_dir)


def percentile(values: list[float], q: float) -> float:
    """A percentile without interpolation: the sample value at the nearest rank.

    Args:
        values: The sample, in any order; not empty.
        q: The percentile, 0 to 100.

    Returns:
        The value of the sorted sample at the rank nearest ``q`` % of its length.
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def load(
    url: str,
    bodies: list[bytes],
    total: int,
    clients: int,
    params: dict[str, str] | None = None,
    path: str = "/classify",
) -> LoadResult:
    """``total`` POSTs (bounded) from ``clients`` concurrent asyncio clients, one event loop.

    Args:
        url: The server's base URL.
        bodies: PNG bodies, sent in turn.
        total: Requests in all.
        clients: Concurrent clients (and connections).
        params: Query parameters of every request.
        path: The endpoint.

    Returns:
        Throughput and latency percentiles.

    Raises:
        SystemExit: An answer other than 200.
    """

    async def run() -> LoadResult:
        latencies: list[float] = []
        counter = iter(range(total))
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def worker() -> None:
                for i in counter:
                    started = time.perf_counter()
                    response = await client.post(
                        path,
                        content=bodies[i % len(bodies)],
                        params=params,
                        headers={"content-type": "image/png"},
                    )
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 200:
                        raise SystemExit(f"benchmark: {response.status_code} {response.text}")

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return LoadResult.from_latencies(latencies, time.perf_counter() - started)

    return asyncio.run(run())


def post_all(
    url: str, path: str, requests: list[tuple[dict[str, str], bytes, str]], clients: int
) -> list[dict[str, Any]]:
    """Each (params, body, content type) POSTed once, ``clients`` at a time.

    Args:
        url: The server's base URL.
        path: The endpoint.
        requests: (query parameters, body, content type) per request.
        clients: Concurrent clients (and connections).

    Returns:
        The JSON answers, in request order.

    Raises:
        SystemExit: An answer other than 200 (it ends the benchmark).
    """

    async def run() -> list[dict[str, Any]]:
        answers: dict[int, dict[str, Any]] = {}
        pending = iter(enumerate(requests))
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def worker() -> None:
                for index, (params, body, content_type) in pending:
                    response = await client.post(
                        path, content=body, params=params, headers={"content-type": content_type}
                    )
                    if response.status_code != 200:
                        raise SystemExit(f"benchmark: {response.status_code} {response.text}")
                    answers[index] = response.json()

            await asyncio.gather(*(worker() for _ in range(clients)))
        return [answers[index] for index in range(len(requests))]

    return asyncio.run(run())


def wrk_available() -> bool:
    """Whether the wrk load generator is on the PATH."""
    return shutil.which("wrk") is not None


def load_wrk(
    url: str,
    body: bytes,
    seconds: float,
    connections: int,
    params: dict[str, str] | None = None,
    path: str = "/classify",
) -> LoadResult:
    """Concurrent load from wrk (C, one thread), so that the load generator takes little of the
    CPU the server needs.

    Args:
        url: The server's base URL.
        body: The PNG body of every request.
        seconds: Duration, rounded to whole seconds (at least 1) as wrk takes it.
        connections: Concurrent connections.
        params: Query parameters of every request.
        path: The endpoint.

    Returns:
        Throughput and latency percentiles as wrk reports them.

    Raises:
        SystemExit: wrk failed, or an answer was not 2xx.
    """
    literal = "".join(f"\\{byte:03d}" for byte in body)
    script = (
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "image/png"\nwrk.body = "{literal}"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %f %f %f %d\\n", summary.requests, summary.duration,\n'
        "    latency:percentile(50), latency:percentile(99), summary.errors.status))\nend\n"
    )
    target = url + path + (("?" + urlencode(params)) if params else "")
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    with tempfile.TemporaryDirectory(prefix="firstspike-bench-") as scratch:
        script_path = os.path.join(scratch, "post.lua")
        with open(script_path, "w") as handle:
            handle.write(script)
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "-s",
                script_path,
                target,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    match = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", completed.stdout)
    if completed.returncode != 0 or match is None:
        raise SystemExit(f"benchmark: wrk failed: {completed.stdout}{completed.stderr}")
    requests, duration_us, p50_us, p99_us, errors = match.groups()
    if int(errors):
        raise SystemExit(f"benchmark: {errors} non-2xx answers under load at {target}")
    return LoadResult(
        int(requests) / (float(duration_us) / 1e6), float(p50_us) / 1000, float(p99_us) / 1000, int(requests)
    )


def interleaved_p50_ms(url: str, body: bytes, models: list[str], seconds: float) -> dict[str, float]:
    """p50 latency per model at one client, the models' requests alternating (each round in
    turn reversed), so that a machine slowing down for a while slows every model alike.

    Args:
        url: The server's base URL.
        body: The PNG body of every request.
        models: Model names, sent as ``?model=``.
        seconds: Duration (at least 20 rounds).

    Returns:
        Median latency in milliseconds per model.

    Raises:
        SystemExit: An answer other than 200.
    """
    latencies: dict[str, list[float]] = {model: [] for model in models}
    with httpx.Client(base_url=url, timeout=120) as client:
        rounds, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline or rounds < 20:
            for model in models if rounds % 2 == 0 else models[::-1]:
                started = time.perf_counter()
                response = client.post(
                    "/classify", content=body, params={"model": model}, headers={"content-type": "image/png"}
                )
                latencies[model].append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"benchmark: {response.status_code} {response.text}")
            rounds += 1
    return {model: percentile(values, 50) * 1000 for model, values in latencies.items()}


def measure(
    url: str, bodies: list[bytes], clients: int, seconds: float, params: dict[str, str] | None = None
) -> LoadResult:
    """wrk where it is installed (it leaves the CPU to the server, and sends ``bodies[0]``);
    else Python clients cycling through ``bodies``, which cap throughput themselves.

    Args:
        url: The server's base URL.
        bodies: PNG bodies.
        clients: Concurrent connections.
        seconds: Duration with wrk; Python clients send ``60 * seconds`` requests (at least 50).
        params: Query parameters of every request.

    Returns:
        Throughput and latency percentiles.
    """
    if wrk_available():
        return load_wrk(url, bodies[0], seconds, clients, params)
    return load(url, bodies, max(50, int(seconds * 60)), clients, params)
