"""The torch runtime: the training package's own network definition, in inference mode.

torch itself stays behind ``training.network.inference``, which takes and returns numpy; this
module is imported only when a version is served with torch (``registry.make_runtime``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from service.inference.runtimes.base import StepResult
from service.inference.runtimes.heap import keep_freed_memory
from training.contract.manifest import Manifest
from training.network.inference import InferenceNetwork, StepArrays


class TorchRuntime:
    """``Runtime`` over a torch network (see ``runtimes.base`` for the contract)."""

    name = "torch"

    # Torch computes the state of a step with its outputs, so leaving it out saves nothing.
    decides_first = False

    def __init__(self, network: InferenceNetwork) -> None:
        """Serve ``network``.

        Args:
            network: the version's network, in inference mode.
        """
        keep_freed_memory()
        self.network = network
        self.timesteps = network.timesteps

    @classmethod
    def load(cls, version_dir: Path, manifest: Manifest, threads: int = 1) -> TorchRuntime:
        """The runtime of a verified version.

        Args:
            version_dir: the version's directory in the model store.
            manifest: its manifest.
            threads: intra-op threads.

        Returns:
            The runtime.
        """
        return cls(InferenceNetwork.from_store(version_dir, manifest, threads))

    def encode(self, images: np.ndarray) -> Any:
        return self.network.encode(images)

    def initial_state(self, batch_size: int) -> Any:
        return self.network.initial_state(batch_size)

    def first_step(self, images: np.ndarray) -> tuple[Any, StepResult]:
        features, arrays = self.network.first_step(images)
        return features, _step_result(arrays)

    def first_decision(self, images: np.ndarray) -> StepResult:
        return replace(self.first_step(images)[1], state=None)

    def step(self, encoded: Any, timesteps: np.ndarray, state: Any) -> StepResult:
        return _step_result(self.network.step(encoded, timesteps, state))

    def select(self, encoded: Any, state: Any, rows: np.ndarray) -> tuple[Any, Any]:
        return self.network.select(encoded, state, rows)

    def merge(self, parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        return self.network.merge(parts)


def _step_result(arrays: StepArrays) -> StepResult:
    return StepResult(
        arrays.current,
        arrays.membrane,
        arrays.spikes,
        arrays.layer_spikes,
        arrays.synaptic_inputs,
        arrays.state,
    )
