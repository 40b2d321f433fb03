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
    """What one timestep gives for a batch of B rows (K classes, L spiking and S synaptic layers).

    Attributes:
        current: [B, K] pre-synaptic current of the output layer.
        membrane: [B, K] output membrane before reset.
        spikes: [B, K] output spikes.
        layer_spikes: [B, L] spikes per spiking layer.
        synaptic_inputs: [B, S] input activity per synaptic layer.
        state: the next state, opaque to the loop (only the runtime reads it).
    """

    current: np.ndarray
    membrane: np.ndarray
    spikes: np.ndarray
    layer_spikes: np.ndarray
    synaptic_inputs: np.ndarray
    state: Any


class Runtime(Protocol):
    """One model version, run one timestep at a time.

    Attributes:
        name: the runtime's name (``torch`` or ``onnx``), as ``GET /models`` shows it.
        timesteps: T, the most timesteps the model runs.
        decides_first: new rows start with ``first_decision``: the runtime found that cheaper
            on average for its model (``service.inference.runtimes.first_decision``).
    """

    name: str
    timesteps: int
    decides_first: bool

    def encode(self, images: np.ndarray) -> Any:
        """What a row carries from one timestep to the next: the once-per-input part (the LE
        module's features), or the input itself where the step computes that part (the onnx
        runtime's step graphs that take the images).

        Args:
            images: float32 [B, C, H, W].

        Returns:
            The batch's encoded rows, opaque to the loop.
        """

    def initial_state(self, batch_size: int) -> Any:
        """Every neuron at rest.

        Args:
            batch_size: B, the rows of the batch.

        Returns:
            The state of B rows at rest, opaque to the loop.
        """

    def first_step(self, images: np.ndarray) -> tuple[Any, StepResult]:
        """``encode`` and timestep 1 from rest in one call, what early exit runs first for new
        inputs: the same results as ``step(encode(images), 1, initial_state(B))``.

        Args:
            images: float32 [B, C, H, W].

        Returns:
            The encoded rows and timestep 1's result.
        """

    def first_decision(self, images: np.ndarray) -> StepResult:
        """Timestep 1's outputs as ``first_step`` gives them, without features or state (the
        result's ``state`` is None): all that a row decided at timestep 1 needs. A row that goes
        on runs ``first_step`` for them.

        Args:
            images: float32 [B, C, H, W].

        Returns:
            Timestep 1's result, its ``state`` None.
        """

    def step(self, encoded: Any, timesteps: np.ndarray, state: Any) -> StepResult:
        """One timestep per row.

        Args:
            encoded: the rows as ``encode`` made them.
            timesteps: [B] each row's own 1-based timestep.
            state: the rows' state after their previous timestep.

        Returns:
            The timestep's result, with the next state.
        """

    def select(self, encoded: Any, state: Any, rows: np.ndarray) -> tuple[Any, Any]:
        """Keep only ``rows`` of a batch (in that order).

        Args:
            encoded: the batch's encoded rows.
            state: the batch's state.
            rows: indices of the rows to keep.

        Returns:
            The encoded rows and the state of the rows kept.
        """

    def merge(self, parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        """Stack batches row-wise.

        Args:
            parts: (encoded, state) of each batch, in order.

        Returns:
            The encoded rows and the state of the stacked batch.
        """


def first_step_in_parts(runtime: Runtime, images: np.ndarray) -> tuple[Any, StepResult]:
    """``first_step`` as two calls, encode then step 1 from rest, for a runtime (or a model
    version) without a fused one.

    Args:
        runtime: the runtime to call.
        images: float32 [B, C, H, W].

    Returns:
        The encoded rows and timestep 1's result.
    """
    encoded = runtime.encode(images)
    return encoded, runtime.step(encoded, np.ones(len(images), np.int64), runtime.initial_state(len(images)))
