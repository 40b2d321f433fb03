"""The runtime contract (DESIGN.md): make an empty state for a batch, run one timestep.

Arrays at this boundary are numpy, so the early-exit loop and the batcher above it work the
same for every runtime, including one without torch. ``encoded`` and ``state`` are opaque to
them: only ``select`` and ``merge`` reshape a batch (compaction, joining).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class StepResult:
    current: np.ndarray  # [B, K] pre-synaptic current of the output layer
    membrane: np.ndarray  # [B, K] output membrane before reset
    spikes: np.ndarray  # [B, K] output spikes
    layer_spikes: np.ndarray  # [B, L] spikes per spiking layer
    synaptic_inputs: np.ndarray  # [B, S] input activity per synaptic layer
    state: Any  # opaque to the loop; only the runtime reads it


class Runtime(Protocol):
    name: str
    timesteps: int
    # New rows start with ``first_decision``: the runtime found that cheaper on average for its
    # model (``service.inference.runtimes.first_decision``).
    decides_first: bool

    def encode(self, images: np.ndarray) -> Any:
        """What a row carries from one timestep to the next, for a batch [B, C, H, W]: the
        once-per-input part (the LE module's features), or the input itself where the step
        computes that part (the onnx runtime's graphs exported now)."""

    def initial_state(self, batch_size: int) -> Any:
        """Every neuron at rest."""

    def first_step(self, images: np.ndarray) -> tuple[Any, StepResult]:
        """``encode`` and timestep 1 from rest in one call, what early exit runs first for new
        inputs: the same results as ``step(encode(images), 1, initial_state(B))``."""

    def first_decision(self, images: np.ndarray) -> StepResult:
        """Timestep 1's outputs as ``first_step`` gives them, without features or state (the
        result's ``state`` is None): all that a row decided at timestep 1 needs. A row that goes
        on runs ``first_step`` for them."""

    def step(self, encoded: Any, timesteps: np.ndarray, state: Any) -> StepResult:
        """One timestep per row; ``timesteps`` [B] holds each row's own 1-based timestep."""

    def select(self, encoded: Any, state: Any, rows: np.ndarray) -> tuple[Any, Any]:
        """Keep only ``rows`` of a batch (in that order)."""

    def merge(self, parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        """Stack batches row-wise."""


def first_step_in_parts(runtime: Runtime, images: np.ndarray) -> tuple[Any, StepResult]:
    """``first_step`` as two calls, encode then step 1 from rest, for a runtime (or a model
    version) without a fused one."""
    encoded = runtime.encode(images)
    return encoded, runtime.step(encoded, np.ones(len(images), np.int64), runtime.initial_state(len(images)))
