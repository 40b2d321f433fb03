"""The request profile (service/benchmarks/profile.py) accounts for every microsecond it reports
and leaves the runtime as it found it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import MODEL_STORE
from service.benchmarks.profile import RUNTIME_CALLS, profile_batched_step, profile_request
from service.early_exit import Widths, classify
from service.runtimes.onnx_runtime import OnnxRuntime
from training.data import dataset_info
from training.evaluate import evaluate
from training.store.export import export_version
from training.store.load import load_network
from training.store.manifest import read_manifest


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The shipped digits/1 weights exported with every graph the exporter writes now."""
    network, _ = load_network(MODEL_STORE / "digits" / "1")
    sample = [(torch.rand(network.spec.input_shape), 0) for _ in range(2)]
    version_dir = export_version(network, tmp_path_factory.mktemp("store"), "digits", dataset_info("digits"),
                                 evaluate(network, sample), split="random", onnx=True)
    manifest = read_manifest(version_dir)
    images = np.random.default_rng(0).random((8, 1, 1, 8, 8), dtype=np.float32)
    return OnnxRuntime(version_dir, manifest), Widths.from_manifest(manifest), list(images)


def test_a_request_profile_splits_the_whole_request(digits):
    runtime, widths, images = digits
    sessions = (runtime.encoder, runtime.stepper, runtime.first_stepper)
    expected = [classify(runtime, image, widths)[0] for image in images]
    profile = profile_request(runtime, widths, images, seconds=0.0)
    assert (runtime.encoder, runtime.stepper, runtime.first_stepper) == sessions, "the sessions are put back"
    assert [classify(runtime, image, widths)[0] for image in images] == expected
    calls = sum(profile[name] for name in RUNTIME_CALLS)
    assert profile["loop"] == pytest.approx(profile["total"] - calls)
    assert 0 < profile["first_stepper.run"] < profile["first_step"] < profile["total"]
    assert profile["encode"] == profile["encoder.run"] == profile["initial_state"] == 0.0, "fused into first_step"
    if profile["step"]:  # rows that went on past timestep 1
        assert 0 < profile["stepper.run"] < profile["step"]
    assert profile["select"] == profile["merge"] == 0.0  # one row: nothing to compact or join


def test_a_batched_step_profile_times_one_timestep_of_every_row(digits):
    runtime, widths, images = digits
    profile = profile_batched_step(runtime, widths, np.concatenate(images), seconds=0.0)
    assert profile["encode"] == profile["encoder.run"] == 0.0, "encoding happens before the timed step"
    assert 0 < profile["stepper.run"] < profile["step"] < profile["total"]
    assert profile["loop"] == pytest.approx(profile["total"] - profile["step"] - profile["initial_state"])
