"""Shared fixtures: real uvicorn servers on 127.0.0.1 and the digits test images as PNG files."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from benchmarks.common import free_port

ROOT = Path(__file__).parents[1]
MODEL_STORE = ROOT / "model_store"


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


def copy_without_onnx(version_dir: Path, destination: Path) -> Path:
    """A copy of a model version as ``firstspike export`` without ``--onnx`` writes it: the
    weights, no ONNX graphs, and a manifest that lists none."""
    shutil.copytree(version_dir, destination)
    manifest = json.loads((destination / "manifest.json").read_text())
    for graph in manifest.pop("onnx").values():
        if isinstance(graph, dict):
            del manifest["files"][graph["file"]]
            (destination / graph["file"]).unlink()
    (destination / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return destination


@pytest.fixture(scope="module")
def graphs_and_none_store(tmp_path_factory) -> Path:
    """``digits/1`` as shipped (with ONNX graphs) and ``digits/2``, the same weights without."""
    root = tmp_path_factory.mktemp("graphs-and-none")
    shutil.copytree(MODEL_STORE / "digits" / "1", root / "digits" / "1")
    copy_without_onnx(MODEL_STORE / "digits" / "1", root / "digits" / "2")
    return root


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(tmp_path: Path, env: dict[str, str] | None = None, wait_ready: bool = True,
                 store: Path = MODEL_STORE, args: tuple[str, ...] = ()) -> Server:
    """``firstspike serve`` in its own process, as a user starts it; ``args``: more options."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    script = Path(sys.executable).with_name("firstspike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "training.cli"]
    process = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--model-store", str(store), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, cwd=ROOT,
        stdout=log_path.open("w"), stderr=subprocess.STDOUT,
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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)


def png_bytes(pixels, mode: str = "L", format: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def digits_test_pngs():
    """The 360 digits test images as PNG files (8-bit grey, value min(255, 16 v)), with labels."""
    from training.data.digits import digit_to_png_pixels, digits_split

    images, labels = digits_split("test")
    return [png_bytes(digit_to_png_pixels(image)) for image in images], [int(label) for label in labels]


@pytest.fixture(scope="session")
def mixed_store(tmp_path_factory):
    """A model store with ``mixed/1``: digits after 2 of 10 epochs, whose test decisions spread
    over every timestep (and include ``no_spike``), exported with its ONNX graphs."""
    from training.config import load_config
    from training.data import dataset_info, load_dataset
    from training.evaluate import evaluate
    from training.store.export import export_version
    from training.trainer import train

    import torch

    store = tmp_path_factory.mktemp("mixed-store")
    # The same model whichever tests ran before in this process (torch runtimes set the thread
    # count, and the sums, so the weights, depend on it).
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        network = train(load_config("digits", ["epochs=10"]), progress=False, until_epoch=2).network
    finally:
        torch.set_num_threads(threads)
    result = evaluate(network, load_dataset("digits", "test"))
    assert len({t for t, n in result.decision_timestep_counts.items() if n}) >= 3, result.decision_timestep_counts
    export_version(network, store, "mixed", dataset_info("digits"), result, onnx=True)
    return store


@pytest.fixture(scope="session")
def mixed_indices(mixed_store):
    """64 test-digit indices, ascending, on which ``mixed/1`` decides at every timestep it uses:
    all its later decisions (up to 48) and the earliest step-1 ones to fill up."""
    from training.data import load_dataset
    from training.evaluate import evaluate
    from training.store.load import load_network

    network, _ = load_network(mixed_store / "mixed" / "1")
    steps = evaluate(network, load_dataset("digits", "test")).per_sample["decision_timestep"]
    later = [i for i, step in enumerate(steps) if step > 1][:48]
    first = [i for i, step in enumerate(steps) if step == 1][: 64 - len(later)]
    chosen = sorted(later + first)
    assert len({steps[i] for i in chosen}) >= 3
    return chosen
