"""Where torch is not installed (the slim image): what needs it says so in one line naming the
pip extra that brings it, for the service and for the CLI. `make test-slim` runs this; where
torch is installed there is nothing to refuse and the tests of that skip."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import MODEL_STORE, ROOT, start_server, stop_server

without_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None, reason="torch is installed here"
)
TORCH_HINT = "the torch runtime needs PyTorch: pip install 'firstspike[torch]'"


def firstspike(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("firstspike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "training.cli"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _errors_once_loaded(server) -> tuple[dict, dict]:
    """/models and /health/ready once loading has finished (under torch nothing becomes ready)."""
    with server.client() as client:
        deadline = time.monotonic() + 60
        while True:
            listing = client.get("/models").json()
            if len(listing["errors"]) + sum(len(m["versions"]) for m in listing["models"]) == 2:
                return listing, client.get("/health/ready").json()
            assert time.monotonic() < deadline, listing
            time.sleep(0.05)


@without_torch
def test_auto_serves_the_version_with_graphs_and_names_the_extra_for_the_other(
    tmp_path, graphs_and_none_store
):
    server = start_server(tmp_path, env={"FIRSTSPIKE_RUNTIME": "auto"}, store=graphs_and_none_store)
    try:
        listing, ready = _errors_once_loaded(server)
    finally:
        stop_server(server)
    assert listing["models"][0]["runtimes"] == {"1": "onnx"}
    assert list(listing["errors"]) == ["digits/2"]
    why = listing["errors"]["digits/2"]
    assert TORCH_HINT in why and "has no ONNX graphs" in why and "No module named" not in why
    assert ready["status"] == "ready"


@without_torch
def test_torch_refuses_every_version_naming_the_extra(tmp_path, graphs_and_none_store):
    server = start_server(
        tmp_path, env={"FIRSTSPIKE_RUNTIME": "torch"}, store=graphs_and_none_store, wait_ready=False
    )
    try:
        listing, ready = _errors_once_loaded(server)
    finally:
        stop_server(server)
    assert listing["models"] == [] and sorted(listing["errors"]) == ["digits/1", "digits/2"]
    assert all(why.endswith(f": {TORCH_HINT}") for why in listing["errors"].values()), listing["errors"]
    assert ready["status"] == "not_ready" and ready["detail"]["errors"] == listing["errors"]


@without_torch
@pytest.mark.parametrize(
    "args",
    [
        ["train", "--config", "digits", "--set", "epochs=1"],
        ["eval", str(MODEL_STORE / "digits" / "1"), "--json"],
        ["export", "runs/none"],
        ["calibrate", str(MODEL_STORE / "digits" / "1"), "--max-mean-timestep", "2"],
        ["report", str(MODEL_STORE / "digits" / "1"), "--out", "runs/none"],
    ],
)
def test_training_commands_say_which_extra_they_need(args):
    completed = firstspike(*args)
    assert completed.returncode == 2 and completed.stdout == ""
    assert (
        completed.stderr == f"firstspike: error: {args[0]} needs PyTorch: pip install 'firstspike[train]'\n"
    )


def test_version_needs_no_torch():
    completed = firstspike("--version")
    assert completed.returncode == 0 and completed.stdout.startswith("firstspike ") and completed.stderr == ""
