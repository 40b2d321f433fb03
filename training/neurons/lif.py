"""Leaky integrate-and-fire neuron, iterative form with soft reset: eqs (2)-(4).

    U[t]   = leak * U_reset[t-1] + I[t]          (2)
    S[t]   = H(U[t] - V_th)                      (3)
    U_reset[t] = U[t] - S[t] * V_th              (4)  (what the next step starts from)

``lif_step`` is the pure state transition; ``lif_sequence`` folds it over a time axis.
State is an explicit ``LIFState`` passed in and returned, never stored on a module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from training.neurons.surrogate import SURROGATES


@dataclass(frozen=True)
class LIFParameters:
    """Leak factor tau of (2), threshold V_th of (3)-(4) and the surrogate for the backward pass."""

    leak: float = 0.5
    threshold: float = 1.0
    surrogate: str = "arctan"
    surrogate_alpha: float = 2.0
    spike_fn: object = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.leak <= 1.0:
            raise ValueError(f"leak must be in [0, 1], got {self.leak}")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}; choose from {sorted(SURROGATES)}")
        object.__setattr__(self, "spike_fn", SURROGATES[self.surrogate](self.surrogate_alpha))

    def to_dict(self) -> dict:
        return {
            "leak": self.leak,
            "threshold": self.threshold,
            "surrogate": self.surrogate,
            "surrogate_alpha": self.surrogate_alpha,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "LIFParameters":
        return cls(**{k: values[k] for k in ("leak", "threshold", "surrogate", "surrogate_alpha") if k in values})


class LIFState(NamedTuple):
    """Membrane potential after the reset of the previous step (zero at rest)."""

    membrane: torch.Tensor


class LIFStepOutput(NamedTuple):
    spikes: torch.Tensor
    membrane: torch.Tensor  # U[t] before reset: what decoding (11) compares
    state: LIFState


def fire(membrane: torch.Tensor, params: LIFParameters) -> torch.Tensor:
    """Spikes of (3), H(U - threshold), through the surrogate when gradients are recorded.
    Without them it is the comparison U >= threshold: the same values (in IEEE arithmetic
    U - threshold is zero only where U == threshold and keeps its sign otherwise) with one
    operation fewer per layer in serving and in the exported graphs."""
    if torch.is_grad_enabled():
        return params.spike_fn(membrane - params.threshold)
    return (membrane >= params.threshold).to(membrane.dtype)


def lif_step(input_current: torch.Tensor, state: LIFState | None, params: LIFParameters) -> LIFStepOutput:
    """One timestep of (2)-(4) for a whole tensor of neurons; ``state`` None is rest (U = 0)."""
    # From rest, (2) is U = I exactly: no zero membrane is made or scaled (an exported first
    # timestep then has no state inputs and no leak arithmetic).
    membrane = input_current if state is None else params.leak * state.membrane + input_current
    spikes = fire(membrane, params)
    return LIFStepOutput(spikes, membrane, LIFState(membrane - spikes * params.threshold))


def lif_sequence(
    input_current: torch.Tensor, params: LIFParameters, state: LIFState | None = None
) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """Run ``lif_step`` over the leading time axis of ``input_current`` [T, ...].

    Returns (spikes [T, ...], membranes before reset [T, ...], final state). ``state`` None
    starts from rest.
    """
    if input_current.dtype in (torch.bfloat16, torch.float16):
        # Mixed precision: synapses may compute in 16 bits, the membrane integrates in 32.
        input_current = input_current.float()
    spikes, membranes = [], []
    for current in input_current:
        out = lif_step(current, state, params)
        spikes.append(out.spikes)
        membranes.append(out.membrane)
        state = out.state
    return torch.stack(spikes), torch.stack(membranes), state
