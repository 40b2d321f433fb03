"""Latency encoding module (LE), eqs (5)-(9).

    F = sigmoid(Phi(I))                      (5)  Phi = conv + batchnorm
    X[t] = 1 iff t == t_s(F), else 0         (6)-(7)
    t_s(x) = ceil((1 - x) T)                 (8)  every feature neuron fires once in 1..T
    dL/dF = sum_t dL/dX[t]                   (9)  straight-through estimator

An encoder exposes two pure halves so that serving can compute the features once per request
and then produce each timestep's spikes cheaply: ``features(image)`` and ``input_at(features, t)``.
"""

from __future__ import annotations

from typing import Any

import torch

from training.encoding.stem import FeatureStem


def spike_times(features: torch.Tensor, timesteps: int) -> torch.Tensor:
    """t_s of (8), 1-based, for features in [0, 1].

    Clamped to [1, T]: a float32 sigmoid can round to exactly 1.0 (ceil(0) = 0) and a raw
    intensity can be exactly 0 (ceil(T) = T already, kept for symmetry).

    Args:
        features: F of (5), or raw intensities, in [0, 1].
        timesteps: T.

    Returns:
        ceil((1 - F) T) clamped to [1, T], in the features' dtype.
    """
    return torch.ceil((1.0 - features) * timesteps).clamp_(1, timesteps)


def latency_spikes_at(features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
    """X[t] of (7) for one 1-based timestep, without building the whole train.

    Args:
        features: F of (5), shape ``[B, ...]``, in [0, 1].
        timestep: the 1-based timestep t: one for the batch, or a tensor ``[B]`` holding each
            sample's own, so that samples that started at different times can share a batch.
        timesteps: T.

    Returns:
        ``X[t]``, shape ``[B, ...]``, of 0s and 1s, in the features' dtype.
    """
    if isinstance(timestep, int) and timestep == 1 and timesteps > 1:
        return _first_timestep_spikes(features, timesteps).to(features.dtype)
    if isinstance(timestep, torch.Tensor) and timestep.dim() == 1:
        timestep = timestep.view(-1, *([1] * (features.dim() - 1)))
    return (spike_times(features, timesteps) == timestep).to(features.dtype)


def _first_timestep_spikes(features: torch.Tensor, timesteps: int) -> torch.Tensor:
    """X[1] in as few operations as the step every input runs deserves, the same spikes.

    t_s = 1 iff ceil(y) <= 1 iff y <= 1 for y = (1 - x) T: ceil is exact, and the clamp sends
    every lower time to 1 and (while T > 1) none from above. For T = 2^m with m >= 2 that is
    x >= 1 - 2^-m: y is fl(1 - x) scaled exactly by T, 1 - x is exact for x in [0.5, 2], and
    below 0.5 fl(1 - x) >= 0.5 > 2^-m. A comparison with a constant is what the exported graph
    fuses into one operation (``training.store.onnx_spikes``).
    """
    if timesteps >= 4 and timesteps & (timesteps - 1) == 0:
        return features >= 1.0 - 1.0 / timesteps
    return (1.0 - features) * timesteps <= 1.0


class _LatencyEncodeSTE(torch.autograd.Function):
    """X of (6)-(7) forward; the straight-through gradient of (9) backward."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        times = spike_times(features, timesteps)
        steps = torch.arange(1, timesteps + 1, device=features.device, dtype=features.dtype)
        steps = steps.view(timesteps, *([1] * features.dim()))
        return (times.unsqueeze(0) == steps).to(features.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.sum(dim=0), None


def latency_encode(features: torch.Tensor, timesteps: int) -> torch.Tensor:
    """The spike train X of (6)-(7), differentiable through the STE of (9).

    Args:
        features: F of (5) [B, ...], in [0, 1].
        timesteps: T.

    Returns:
        X [T, B, ...]: one spike per feature neuron, at t_s of (8).
    """
    # torch leaves ``Function.apply`` unannotated.
    spikes: torch.Tensor = _LatencyEncodeSTE.apply(features, timesteps)  # type: ignore[no-untyped-call]
    return spikes


class LatencyEncoder(FeatureStem):
    """The LE module: Phi (conv + batchnorm) -> sigmoid -> one spike per feature neuron, eqs (5)-(9).

    Args:
        in_channels: the image's channels.
        out_channels: the feature maps Phi makes: the encoder's spiking neurons per pixel.
        kernel_size: the convolution's square kernel.
        stride: the convolution's stride.
    """

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """F of (5), computed once per input.

        Args:
            image: the normalised images [B, C, H, W].

        Returns:
            F = sigmoid(Phi(I)) [B, C', H', W'].
        """
        return torch.sigmoid(self.phi(image))

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        """The spike train of (6)-(7) (``latency_encode``).

        Args:
            features: F of (5) [B, ...].
            timesteps: T.

        Returns:
            X [T, B, ...].
        """
        return latency_encode(features, timesteps)

    def input_at(self, features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
        """X[t] of (7) for one timestep (``latency_spikes_at``).

        Args:
            features: F of (5) [B, ...].
            timestep: the 1-based timestep, one for the batch or [B], each row's own.
            timesteps: T.

        Returns:
            [B, ...] of 0s and 1s.
        """
        return latency_spikes_at(features, timestep, timesteps)
