"""The early-exit loop: it really stops, and its answer is the full T-step run's decision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.inference.early_exit import Widths, classify
from service.inference.runtimes.base import StepResult, first_step_in_parts
from service.inference.runtimes.torch_runtime import TorchRuntime
from tests.helpers import MODEL_STORE, CountingRuntime
from training.data import load_dataset
from training.decoding import first_spike_decision
from training.network.inference import InferenceNetwork
from training.store.load import load_network


@pytest.fixture(scope="module")
def digits():
    network, manifest = load_network(MODEL_STORE / "digits" / "1")
    return TorchRuntime(InferenceNetwork(network)), Widths.from_manifest(manifest)


def test_every_test_digit_decides_as_the_full_run_and_runs_exactly_that_many_steps(digits):
    runtime, widths = digits
    dataset = load_dataset("digits", "test")
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    with torch.no_grad():
        full = runtime.network.network(images)
    expected = first_spike_decision(full.spikes, full.membrane)
    counting = CountingRuntime(runtime)
    for index in range(len(dataset)):
        counting.sample_timesteps = 0
        outcome = classify(counting, images[index : index + 1].numpy(), widths)[0]
        assert outcome.class_index == int(expected.class_index[index])
        assert outcome.decision_timestep == int(expected.decision_timestep[index])
        assert counting.sample_timesteps == outcome.decision_timestep == outcome.timesteps_run


class ScriptedRuntime:
    """Output spikes and membranes given per timestep, to exercise every branch by hand."""

    name = "scripted"
    decides_first = False

    def __init__(self, spikes, membranes) -> None:
        self.spikes = np.asarray(spikes, dtype=np.float32)  # [T, B, K]
        self.membranes = np.asarray(membranes, dtype=np.float32)
        self.timesteps = self.spikes.shape[0]
        self.calls = 0

    def encode(self, images):
        return np.arange(len(images))

    def initial_state(self, batch_size):
        return None

    def first_step(self, images):
        return first_step_in_parts(self, images)

    def step(self, encoded, timesteps, state):
        self.calls += 1
        rows = encoded  # each row remembers which scripted sample it is
        t = timesteps - 1
        return StepResult(
            self.membranes[t, rows],
            self.membranes[t, rows],
            self.spikes[t, rows],
            np.repeat(timesteps[:, None].astype(float), 2, axis=1),
            np.ones((len(rows), 1)),
            state,
        )

    def select(self, encoded, state, rows):
        return encoded[rows], state

    def merge(self, parts):
        return np.concatenate([e for e, _ in parts]), None


def test_tie_break_no_spike_and_per_sample_accounting():
    spikes = [
        [[0, 0, 0], [1, 1, 0], [0, 0, 0]],  # t=1: sample 1 ties between classes 0 and 1
        [[0, 0, 1], [0, 0, 0], [0, 0, 0]],  # t=2: sample 0 fires class 2
        [[1, 1, 1], [1, 1, 1], [0, 0, 0]],  # t=3: sample 2 never fires
    ]
    membranes = [
        [[0.1, 0.2, 0.3], [1.2, 1.5, 0.1], [0.0, 0.0, 0.0]],
        [[0.2, 0.3, 1.1], [9.0, 9.0, 9.0], [0.1, 0.4, 0.2]],
        [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0], [0.3, 0.2, 0.9]],
    ]
    runtime = ScriptedRuntime(spikes, membranes)
    outcomes = classify(runtime, np.zeros((3, 1, 1, 1), dtype=np.float32), Widths(3, 2, 1))
    assert [o.class_index for o in outcomes] == [2, 1, 2]
    assert [o.decision_timestep for o in outcomes] == [2, 1, 3]
    assert [o.exit_reason for o in outcomes] == ["first_spike", "first_spike", "no_spike"]
    assert outcomes[1].scores == pytest.approx([1.2, 1.5, 0.1])
    # activity counted only up to each sample's own decision
    assert [o.layer_spikes for o in outcomes] == [[3.0, 3.0], [1.0, 1.0], [6.0, 6.0]]
    assert [o.output_spikes for o in outcomes] == [[0, 0, 1], [1, 1, 0], [0, 0, 0]]
    assert runtime.calls == 3


def test_without_early_exit_every_step_runs_and_counts_but_the_answer_is_the_same():
    spikes = [[[0, 1]], [[1, 0]], [[0, 0]], [[1, 1]]]
    membranes = [[[0.5, 1.2]], [[1.3, 0.1]], [[0.0, 0.0]], [[2.0, 2.0]]]
    fast_runtime, full_runtime = ScriptedRuntime(spikes, membranes), ScriptedRuntime(spikes, membranes)
    fast = classify(fast_runtime, np.zeros((1, 1, 1, 1), dtype=np.float32), Widths(2, 2, 1))[0]
    full = classify(
        full_runtime, np.zeros((1, 1, 1, 1), dtype=np.float32), Widths(2, 2, 1), early_exit=False
    )[0]
    assert (fast.class_index, fast.decision_timestep) == (full.class_index, full.decision_timestep) == (1, 1)
    assert (fast_runtime.calls, full_runtime.calls) == (1, 4)
    assert (fast.timesteps_run, full.timesteps_run) == (1, 4)
    assert full.output_spikes == [2, 2] and fast.output_spikes == [0, 1]


def test_output_raster_is_the_same_on_both_runtimes_and_adds_up_to_the_spike_counts():
    """``output_raster`` (per timestep run, the output neurons that fired) comes from the shared
    loop: torch and onnx give the same one, with early exit and without."""
    from service.inference.runtimes.onnx_runtime import OnnxRuntime
    from training.contract.manifest import read_manifest

    version_dir = MODEL_STORE / "digits" / "2"
    manifest = read_manifest(version_dir)
    widths = Widths.from_manifest(manifest)
    dataset = load_dataset("digits", "test")
    images = torch.stack([dataset[i][0] for i in range(120)]).numpy()
    for early_exit in (True, False):
        by_torch = classify(TorchRuntime.load(version_dir, manifest), images, widths, early_exit=early_exit)
        by_onnx = classify(OnnxRuntime(version_dir, manifest), images, widths, early_exit=early_exit)
        assert [o.output_raster for o in by_torch] == [o.output_raster for o in by_onnx]
        for outcome in by_torch:
            assert len(outcome.output_raster) == outcome.timesteps_run
            counts = np.zeros(widths.classes, int)
            for fired in outcome.output_raster:
                counts[fired] += 1
            assert counts.tolist() == outcome.output_spikes
            if outcome.exit_reason == "first_spike":
                assert not any(outcome.output_raster[: outcome.decision_timestep - 1])
                assert outcome.class_index in outcome.output_raster[outcome.decision_timestep - 1]
