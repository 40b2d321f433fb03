"""Heaviside firing (3) with surrogate gradients for backpropagation through time.

The forward pass is always the exact step function H(x) = 1 if x >= 0 else 0; only the
backward pass differs between surrogates. Each surrogate is a tiny frozen dataclass, so it is
hashable, comparable and serialisable into a manifest by name and ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Exact firing function of (3): a neuron spikes when its potential reaches threshold.

    Args:
        x: the potential minus the threshold, U - V_th.

    Returns:
        1 where ``x >= 0``, else 0, in the dtype of ``x``.
    """
    return (x >= 0).to(x.dtype)


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward; backward multiplies by the surrogate's derivative at x."""

    # ``ctx: Any`` as in torch's own ``Function.forward``: the derivative is stored on it.
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, derivative: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        return heaviside(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x), None


class Surrogate:
    """A spike function: forward, the Heaviside step H(x) of (3); backward, ``derivative``."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate gradient at ``x`` = U - V_th."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes H(x) of (3), with this surrogate's gradient.

        Args:
            x: U - V_th.

        Returns:
            0 or 1 per element.
        """
        # torch leaves ``Function.apply`` unannotated.
        spikes: torch.Tensor = _SurrogateSpike.apply(x, self.derivative)  # type: ignore[no-untyped-call]
        return spikes


@dataclass(frozen=True)
class SigmoidSurrogate(Surrogate):
    """Backward: derivative of sigmoid(alpha x), peak alpha/4 at the threshold.

    Attributes:
        alpha: the steepness; larger is closer to the step.
    """

    alpha: float = 4.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate gradient.

        Args:
            x: U - V_th.

        Returns:
            alpha sigmoid(alpha x) (1 - sigmoid(alpha x)).
        """
        sig = torch.sigmoid(self.alpha * x)
        return self.alpha * sig * (1 - sig)


@dataclass(frozen=True)
class ArctanSurrogate(Surrogate):
    """Backward: derivative of arctan(pi/2 alpha x)/pi, peak alpha/2 at the threshold.

    Attributes:
        alpha: the steepness; larger is closer to the step.
    """

    alpha: float = 2.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate gradient.

        Args:
            x: U - V_th.

        Returns:
            (alpha / 2) / (1 + (pi/2 alpha x)^2).
        """
        scaled = (math.pi / 2) * self.alpha * x
        return (self.alpha / 2) / (1 + scaled * scaled)


SURROGATES = {"sigmoid": SigmoidSurrogate, "arctan": ArctanSurrogate}
