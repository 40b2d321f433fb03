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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from training.neurons.surrogate import SURROGATES


@dataclass(frozen=True)
class LIFParameters:
    """Leak factor tau of (2), threshold V_th of (3)-(4) and the surrogate for the backward pass.

    Attributes:
        leak: tau of (2), in [0, 1]: the share of the membrane kept from one timestep to the next.
        threshold: V_th of (3)-(4), positive.
        surrogate: the surrogate gradient's name, a key of ``SURROGATES``.
        surrogate_alpha: the surrogate's steepness.
        spike_fn: H of (3) with the surrogate's gradient, made from ``surrogate`` and
            ``surrogate_alpha``.

    Raises:
        ValueError: a leak outside [0, 1], a threshold that is not positive or an unknown
            surrogate.
    """

    leak: float = 0.5
    threshold: float = 1.0
    surrogate: str = "arctan"
    surrogate_alpha: float = 2.0
    spike_fn: Callable[[torch.Tensor], torch.Tensor] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.leak <= 1.0:
            raise ValueError(f"leak must be in [0, 1], got {self.leak}")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}; choose from {sorted(SURROGATES)}")
        object.__setattr__(self, "spike_fn", SURROGATES[self.surrogate](self.surrogate_alpha))

    def to_dict(self) -> dict[str, float | str]:
        """The parameters as a manifest or config records them (``spike_fn`` is derived)."""
        return {
            "leak": self.leak,
            "threshold": self.threshold,
            "surrogate": self.surrogate,
            "surrogate_alpha": self.surrogate_alpha,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LIFParameters:
        """Parameters from a manifest's or config's mapping.

        Args:
            values: any of ``leak``, ``threshold``, ``surrogate`` and ``surrogate_alpha``;
                other keys are ignored, missing ones take their defaults.

        Returns:
            The parameters.
        """
        return cls(
            **{k: values[k] for k in ("leak", "threshold", "surrogate", "surrogate_alpha") if k in values}
        )


class LIFState(NamedTuple):
    """Membrane potential U[t] of the step run last, before its reset (4) (zero at rest)."""

    membrane: torch.Tensor


class LIFStepOutput(NamedTuple):
    """One timestep of ``lif_step``.

    Attributes:
        spikes: S[t] of (3).
        membrane: U[t] of (2), before the reset (4): what decoding (11) compares.
        state: the state for the next timestep.
    """

    spikes: torch.Tensor
    membrane: torch.Tensor
    state: LIFState


def fire(membrane: torch.Tensor, params: LIFParameters) -> torch.Tensor:
    """Spikes of (3), H(U - threshold), through the surrogate when gradients are recorded.

    Without them it is the comparison U >= threshold: the same values (in IEEE arithmetic
    U - threshold is zero only where U == threshold and keeps its sign otherwise) with one
    operation fewer per layer in serving and in the exported graphs.

    Args:
        membrane: U[t] of (2).
        params: the neurons' parameters.

    Returns:
        S[t], 0 or 1 per neuron, in the membrane's dtype.
    """
    if torch.is_grad_enabled():
        return params.spike_fn(membrane - params.threshold)
    return (membrane >= params.threshold).to(membrane.dtype)


def soft_reset(membrane: torch.Tensor, spikes: torch.Tensor, params: LIFParameters) -> torch.Tensor:
    """U_reset of (4): the excess over the threshold stays where a neuron fired.

    Args:
        membrane: U[t] of (2).
        spikes: S[t] of (3), fired from ``membrane``.
        params: the neurons' parameters.

    Returns:
        U[t] - S[t] V_th, what the next timestep starts from.
    """
    return membrane - spikes * params.threshold


def integrate(
    reset_membrane: torch.Tensor | None, input_current: torch.Tensor, params: LIFParameters
) -> torch.Tensor:
    """U[t] of (2).

    From rest (2) is U = I exactly: no zero membrane is made or scaled (an exported first
    timestep has no state inputs and no leak arithmetic).

    Args:
        reset_membrane: U_reset[t-1] of (4); None is rest.
        input_current: I[t], the synaptic input.
        params: the neurons' parameters.

    Returns:
        leak * U_reset[t-1] + I[t].
    """
    return input_current if reset_membrane is None else params.leak * reset_membrane + input_current


def membrane_precision(input_current: torch.Tensor) -> torch.Tensor:
    """Mixed precision: synapses may compute in 16 bits, the membrane integrates in 32.

    Args:
        input_current: the synaptic input, of any float dtype.

    Returns:
        ``input_current`` in float32 if it is bfloat16 or float16, else itself.
    """
    return input_current.float() if input_current.dtype in (torch.bfloat16, torch.float16) else input_current


def lif_step(input_current: torch.Tensor, state: LIFState | None, params: LIFParameters) -> LIFStepOutput:
    """One timestep of (2)-(4) for a whole tensor of neurons.

    The previous step's reset (4) comes first, from its U and its spikes fired again.

    Args:
        input_current: I[t], any shape.
        state: the state after the previous timestep; None is rest (U = 0).
        params: the neurons' parameters.

    Returns:
        The spikes S[t], the membrane U[t] before its reset and the state for the next step.
    """
    input_current = membrane_precision(input_current)
    reset = None if state is None else soft_reset(state.membrane, fire(state.membrane, params), params)
    membrane = integrate(reset, input_current, params)
    return LIFStepOutput(fire(membrane, params), membrane, LIFState(membrane))


def lif_sequence(
    input_current: torch.Tensor, params: LIFParameters, state: LIFState | None = None
) -> tuple[torch.Tensor, torch.Tensor, LIFState]:
    """Run ``lif_step`` over the leading time axis of ``input_current``.

    Within the sequence each reset reuses the spikes its step fired (in training they carry the
    surrogate's gradient) rather than firing them again.

    Args:
        input_current: I [T, ...].
        params: the neurons' parameters.
        state: the state before the first timestep; None is rest.

    Returns:
        The spikes [T, ...], the membranes before reset [T, ...] and the final state.
    """
    input_current = membrane_precision(input_current)
    first = lif_step(input_current[0], state, params)
    spikes, membranes = [first.spikes], [first.membrane]
    for current in input_current[1:]:
        membrane = integrate(soft_reset(membranes[-1], spikes[-1], params), current, params)
        spikes.append(fire(membrane, params))
        membranes.append(membrane)
    return torch.stack(spikes), torch.stack(membranes), LIFState(membranes[-1])
