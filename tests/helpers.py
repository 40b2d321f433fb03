"""Helpers the tests import (``from tests.helpers import ...``): paths, a free port, real
``firstspike serve`` processes, the ``firstspike`` command, PNG bytes, a counting runtime.
No torch here: tests/slim imports this where torch is not installed."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MODEL_STORE = ROOT / "model_store"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def firstspike(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The ``firstspike`` command as users run it (the console script, else ``python -m training.cli``);
    ``env``: variables over this process's."""
    script = Path(sys.executable).with_name("firstspike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "training.cli"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


class CountingRuntime:
    """Wraps a runtime and counts what it is asked to compute."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.timesteps = inner, inner.name, inner.timesteps
        self.decides_first = inner.decides_first
        self.sample_timesteps = 0  # rows x timesteps
        self.largest_batch = 0
        self.first_step_rows = 0  # rows run through first_step (after first_decision: again, for the state)

    def encode(self, images):
        return self.inner.encode(images)

    def initial_state(self, batch_size):
        return self.inner.initial_state(batch_size)

    def first_step(self, images):
        self.sample_timesteps += len(images)
        self.first_step_rows += len(images)
        self.largest_batch = max(self.largest_batch, len(images))
        return self.inner.first_step(images)

    def first_decision(self, images):
        self.sample_timesteps += len(images)
        self.largest_batch = max(self.largest_batch, len(images))
        return self.inner.first_decision(images)

    def step(self, encoded, timesteps, state):
        self.sample_timesteps += len(timesteps)
        self.largest_batch = max(self.largest_batch, len(timesteps))
        return self.inner.step(encoded, timesteps, state)

    def select(self, encoded, state, rows):
        return self.inner.select(encoded, state, rows)

    def merge(self, parts):
        return self.inner.merge(parts)


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    tmp_path: Path,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    store: Path = MODEL_STORE,
    args: tuple[str, ...] = (),
) -> Server:
    """``firstspike serve`` in its own process, as a user starts it; ``args``: more options."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    script = Path(sys.executable).with_name("firstspike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "training.cli"]
    process = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--model-store", str(store), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        cwd=ROOT,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    path = "/health/ready" if wait_ready else "/health/live"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    stop_server(server)
    raise RuntimeError(f"server not up within 60 s:\n{server.log()}")


def expected_runtime(env: dict[str, str] | None = None, has_onnx: bool = True) -> str:
    """The runtime a server from ``start_server(env=env)`` serves a version by, one with ONNX
    graphs or one without: its FIRSTSPIKE_RUNTIME is ``env``'s, else the one exported to this
    test run (servers inherit it), else the default, auto."""
    setting = {**os.environ, **(env or {})}.get("FIRSTSPIKE_RUNTIME", "auto")
    if setting == "auto":
        return "onnx" if has_onnx else "torch"
    return setting


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def png_bytes(pixels, mode: str = "L", format: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format)
    return buffer.getvalue()
