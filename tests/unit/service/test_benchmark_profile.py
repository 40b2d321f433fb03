"""The request profile (benchmarks/profile.py) accounts for every microsecond it reports
and leaves the runtime as it found it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from benchmarks import profile
from benchmarks.profile import RUNTIME_CALLS, interleaved_ratio, profile_batched_step, profile_request
from service.inference.early_exit import Widths, classify
from service.inference.runtimes.onnx_runtime import OnnxRuntime
from tests.helpers import MODEL_STORE
from training.contract.manifest import read_manifest
from training.data import dataset_info
from training.evaluate import evaluate
from training.store.export import export_version
from training.store.load import load_network


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The shipped digits/1 weights exported with every graph the exporter writes now."""
    network, _ = load_network(MODEL_STORE / "digits" / "1")
    sample = [(torch.rand(network.spec.input_shape), 0) for _ in range(2)]
    version_dir = export_version(
        network,
        tmp_path_factory.mktemp("store"),
        "digits",
        dataset_info("digits"),
        evaluate(network, sample),
        split="random",
        onnx=True,
    )
    manifest = read_manifest(version_dir)
    images = np.random.default_rng(0).random((8, 1, 1, 8, 8), dtype=np.float32)
    return OnnxRuntime(version_dir, manifest), Widths.from_manifest(manifest), list(images)


@pytest.mark.parametrize("decides_first", [False, True])
def test_a_request_profile_splits_the_whole_request(digits, decides_first):
    runtime, widths, images = digits
    runtime.decides_first = decides_first
    sessions = (runtime.encoder, runtime.stepper, runtime.first_stepper, runtime.first_decider)
    expected = [classify(runtime, image, widths)[0] for image in images]
    profile = profile_request(runtime, widths, images, seconds=0.0)
    assert (runtime.encoder, runtime.stepper, runtime.first_stepper, runtime.first_decider) == sessions, (
        "the sessions are put back"
    )
    assert [classify(runtime, image, widths)[0] for image in images] == expected
    calls = sum(profile[name] for name in RUNTIME_CALLS)
    assert profile["loop"] == pytest.approx(profile["total"] - calls)
    first, session = (
        ("first_decision", "first_decider.run") if decides_first else ("first_step", "first_stepper.run")
    )
    assert 0 < profile[session] < profile[first] < profile["total"]
    assert profile["encode"] == profile["encoder.run"] == profile["initial_state"] == 0.0, (
        "fused into the first call"
    )
    if profile["step"]:  # rows that went on past timestep 1
        assert 0 < profile["stepper.run"] < profile["step"]
    assert profile["select"] == profile["merge"] == 0.0  # one row: nothing to compact or join


def test_a_batched_step_profile_times_one_timestep_of_every_row(digits):
    runtime, widths, images = digits
    profile = profile_batched_step(runtime, widths, np.concatenate(images), seconds=0.0)
    assert profile["encode"] == profile["encoder.run"] == 0.0, "encoding happens before the timed step"
    assert 0 < profile["stepper.run"] < profile["step"] < profile["total"]
    assert profile["loop"] == pytest.approx(profile["total"] - profile["step"] - profile["initial_state"])


class _FakeClock:
    """perf_counter that moves only when the measured functions say, and drifts: every call
    from the 45th on costs three times as much, as when a neighbour starts a job."""

    def __init__(self) -> None:
        self.now, self.calls = 0.0, []

    def perf_counter(self) -> float:
        return self.now

    def spend(self, name: str, cost: float) -> None:
        self.calls.append(name)
        self.now += cost * (3.0 if len(self.calls) > 44 else 1.0)


def test_interleaved_ratio_alternates_and_cancels_drift(monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(profile.time, "perf_counter", clock.perf_counter)
    ratio, rounds = interleaved_ratio(
        lambda: clock.spend("snn", 2e-3), lambda: clock.spend("ann", 1e-3), seconds=0.0, calls_per_round=4
    )
    # warm-up (4 + 4 calls), then at least 5 rounds of 4 + 4 calls, the order switching each round
    assert len(rounds) == 5 and len(clock.calls) == 8 + 5 * 8
    assert clock.calls[8:12] == ["ann"] * 4 and clock.calls[16:20] == ["snn"] * 4
    assert rounds[-1] == pytest.approx(
        6.0
    )  # the round the drift began in (its ANN half before, its SNN half after)
    assert ratio == pytest.approx(2.0)  # the median keeps it out


def test_in_process_ratio_turns_among_loads_one_per_round():
    from benchmarks.comparison import _turns

    calls = list(itertools.islice(_turns(["load 1", "load 2", "load 3"], ["a", "b", "c"], 2), 8))
    assert calls == [
        ("load 1", "a"),
        ("load 1", "b"),
        ("load 2", "c"),
        ("load 2", "a"),
        ("load 3", "b"),
        ("load 3", "c"),
        ("load 1", "a"),
        ("load 1", "b"),
    ]
