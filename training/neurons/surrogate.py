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


class _SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.alpha * x)
        return grad_output * ctx.alpha * sig * (1 - sig), None


class _ArctanSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        # d/dx of (1/pi) arctan(pi/2 alpha x) + 1/2
        scaled = (math.pi / 2) * ctx.alpha * x
        return grad_output * (ctx.alpha / 2) / (1 + scaled * scaled), None


@dataclass(frozen=True)
class SigmoidSurrogate:
    """Backward: derivative of sigmoid(alpha x), peak alpha/4 at the threshold."""

    alpha: float = 4.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SigmoidSpike.apply(x, self.alpha)


@dataclass(frozen=True)
class ArctanSurrogate:
    """Backward: derivative of arctan(pi/2 alpha x)/pi, peak alpha/2 at the threshold."""

    alpha: float = 2.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _ArctanSpike.apply(x, self.alpha)


SURROGATES = {"sigmoid": SigmoidSurrogate, "arctan": ArctanSurrogate}
