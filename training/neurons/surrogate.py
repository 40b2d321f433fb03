"""Heaviside firing (3) with surrogate gradients for backpropagation through time.

The forward pass is always the exact step function H(x) = 1 if x >= 0 else 0; only the
backward pass differs between surrogates. Each surrogate is a tiny frozen dataclass, so it is
hashable, comparable and serialisable into a manifest by name and ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Exact firing function of (3): a neuron spikes when its potential reaches threshold."""
    return (x >= 0).to(x.dtype)


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward; backward multiplies by the surrogate's derivative at x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, derivative) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x), None


@dataclass(frozen=True)
class SigmoidSurrogate:
    """Backward: derivative of sigmoid(alpha x), peak alpha/4 at the threshold."""

    alpha: float = 4.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(self.alpha * x)
        return self.alpha * sig * (1 - sig)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SurrogateSpike.apply(x, self.derivative)


@dataclass(frozen=True)
class ArctanSurrogate:
    """Backward: derivative of arctan(pi/2 alpha x)/pi, peak alpha/2 at the threshold."""

    alpha: float = 2.0

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (math.pi / 2) * self.alpha * x
        return (self.alpha / 2) / (1 + scaled * scaled)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SurrogateSpike.apply(x, self.derivative)


SURROGATES = {"sigmoid": SigmoidSurrogate, "arctan": ArctanSurrogate}
