"""Leaky integrate-and-fire neuron, iterative form with soft reset: eqs (2)-(4).

    U[t]   = leak * U_reset[t-1] + I[t]          (2)
    S[t]   = H(U[t] - V_th)                      (3)
    U_reset[t] = U[t] - S[t] * V_th              (4)  (what the next step starts from)

``lif_step`` is the pure state transition; ``lif_sequence`` folds it over a time axis.
State is an explicit ``LIFState`` passed in and returned, never stored on a module.

The state a step hands on is U[t] itself, before its reset; the next step applies (4) first.
The values are the same (S[t] is recomputed from the same U[t] by the same comparison), but a
step that ends a pass writes out a membrane it already has instead of computing a reset that
may never be read: most inputs of a latency-coded network are decided at timestep 1 and never
step again.
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
    def from_dict(cls, values: dict) -> LIFParameters:
        return cls(
            **{k: values[k] for k in ("leak", "threshold", "surrogate", "surrogate_alpha") if k in values}
        )


class LIFState(NamedTuple):
    """Membrane potential U[t] of the step run last, before its reset (4) (zero at rest)."""

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


def soft_reset(membrane: torch.Tensor, spikes: torch.Tensor, params: LIFParameters) -> torch.Tensor:
    """U_reset of (4): the excess over the threshold stays where a neuron fired."""
    return membrane - spikes * params.threshold


def integrate(
    reset_membrane: torch.Tensor | None, input_current: torch.Tensor, params: LIFParameters
) -> torch.Tensor:
    """U[t] of (2); ``reset_membrane`` None is rest. From rest (2) is U = I exactly: no zero
    membrane is made or scaled (an exported first timestep has no state inputs and no leak
    arithmetic)."""
    return input_current if reset_membrane is None else params.leak * reset_membrane + input_current


def membrane_precision(input_current: torch.Tensor) -> torch.Tensor:
    """Mixed precision: synapses may compute in 16 bits, the membrane integrates in 32."""
    return input_current.float() if input_current.dtype in (torch.bfloat16, torch.float16) else input_current


def lif_step(input_current: torch.Tensor, state: LIFState | None, params: LIFParameters) -> LIFStepOutput:
    """One timestep of (2)-(4) for a whole tensor of neurons; ``state`` None is rest (U = 0).
    The previous step's reset (4) comes first, from its U and its spikes fired again."""
    input_current = membrane_precision(input_current)
    reset = None if state is None else soft_reset(state.membrane, fire(state.membrane, params), params)
    membrane = integrate(reset, input_current, params)
    return LIFStepOutput(fire(membrane, params), membrane, LIFState(membrane))


def lif_sequence(
    input_current: torch.Tensor, params: LIFParameters, state: LIFState | None = None
) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """Run ``lif_step`` over the leading time axis of ``input_current`` [T, ...].

    Returns (spikes [T, ...], membranes before reset [T, ...], final state). ``state`` None
    starts from rest. Within the sequence each reset reuses the spikes its step fired (in
    training they carry the surrogate's gradient), instead of firing them again.
    """
    input_current = membrane_precision(input_current)
    first = lif_step(input_current[0], state, params)
    spikes, membranes = [first.spikes], [first.membrane]
    for current in input_current[1:]:
        membrane = integrate(soft_reset(membranes[-1], spikes[-1], params), current, params)
        spikes.append(fire(membrane, params))
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes), LIFState(membranes[-1])
