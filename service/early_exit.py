"""The runtime-independent early-exit loop: step until the first output spike, eqs (10)-(11).

At every timestep a sample that emits any output spike is decided; its class is the argmax of
the output membrane potentials at that step (before reset), which breaks ties between neurons
firing together. A sample with no output spike by T takes the argmax at T (``no_spike``).
Spikes and synaptic activity are counted only over the timesteps a sample actually ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.runtimes.base import Runtime

FIRST_SPIKE = "first_spike"
NO_SPIKE = "no_spike"


@dataclass(frozen=True)
class Outcome:
    class_index: int
    decision_timestep: int  # 1-based
    exit_reason: str
    timesteps_run: int  # == decision_timestep with early exit, T without
    scores: list[float]  # output membrane potentials at the decision timestep
    output_spikes: list[int]  # per output neuron, over the timesteps run
    layer_spikes: list[float]  # per spiking layer, over the timesteps run
    synaptic_inputs: list[float]  # per synaptic layer, over the timesteps run


def step_decision(spikes: np.ndarray, membrane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fired [B] bool, class [B]) for one timestep's output spikes and membranes [B, K]."""
    return spikes.sum(axis=1) > 0, membrane.argmax(axis=1)


def classify(runtime: Runtime, images: np.ndarray, early_exit: bool = True) -> list[Outcome]:
    """Run ``images`` [B, C, H, W] until every sample has decided (or all T steps)."""
    batch = images.shape[0]
    timesteps = runtime.timesteps
    encoded = runtime.encode(images)
    state = runtime.initial_state(batch)
    running = np.ones(batch, dtype=bool)
    decided_at = np.zeros(batch, dtype=np.int64)
    classes = np.zeros(batch, dtype=np.int64)
    fired_any = np.zeros(batch, dtype=bool)
    scores: list[np.ndarray | None] = [None] * batch
    totals: dict[str, np.ndarray] = {}
    timesteps_run = 0
    for timestep in range(1, timesteps + 1):
        result = runtime.step(encoded, timestep, state)
        state = result.state
        timesteps_run = timestep
        # Without early exit the work of every step is really done, so it is counted.
        counted = running if early_exit else np.ones(batch, dtype=bool)
        for key, value in (("output", result.spikes), ("layers", result.layer_spikes),
                           ("synapses", result.synaptic_inputs)):
            totals[key] = totals.get(key, np.zeros_like(value, dtype=np.float64)) + value * counted[:, None]
        fired, winner = step_decision(result.spikes, result.membrane)
        deciding = running & (fired | (timestep == timesteps))
        for index in np.flatnonzero(deciding):
            decided_at[index], classes[index], fired_any[index] = timestep, winner[index], fired[index]
            scores[index] = result.membrane[index]
        running &= ~deciding
        if early_exit and not running.any():
            break
    return [
        Outcome(
            class_index=int(classes[b]),
            decision_timestep=int(decided_at[b]),
            exit_reason=FIRST_SPIKE if fired_any[b] else NO_SPIKE,
            timesteps_run=int(decided_at[b]) if early_exit else timesteps_run,
            scores=[float(v) for v in scores[b]],
            output_spikes=[int(v) for v in totals["output"][b]],
            layer_spikes=[float(v) for v in totals["layers"][b]],
            synaptic_inputs=[float(v) for v in totals["synapses"][b]],
        )
        for b in range(batch)
    ]
