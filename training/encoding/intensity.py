"""Direct intensity-to-latency encoding: the ablation of the LE module (paper Sec. IV-E 1).

Raw pixel intensities in [0, 1] are mapped straight to spike times with (8); there is no
feature extractor, so the first synaptic layer of the body sees the image's own channels. The
network's input is normalised like every other network's ((x - mean) / std per channel, as the
data sets and the service prepare it); the encoder undoes that first, since a normalised pixel
below its channel's mean would otherwise clamp to 0 and fire last, whatever its brightness.
"""

from __future__ import annotations

import torch
from torch import nn

from training.encoding.latency import latency_encode, latency_spikes_at


class IntensityLatencyEncoder(nn.Module):
    """Raw pixel intensities to spike times by (8), without a feature extractor.

    Args:
        in_channels: the image's channels.
        mean: the per-channel mean the data set subtracts; None: the images are raw.
        std: the per-channel standard deviation the data set divides by; None: raw.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, in_channels: int, mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None
    ) -> None:
        super().__init__()
        self.out_channels = in_channels
        # Buffers, not parameters: fixed by the data set, saved and exported with the network.
        self.register_buffer(
            "mean", torch.tensor(mean or (0.0,) * in_channels).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std or (1.0,) * in_channels).view(1, -1, 1, 1), persistent=False
        )

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The raw pixels in [0, 1] behind the normalised ``image``.

        Args:
            image: the normalised images [B, C, H, W].

        Returns:
            image * std + mean, clamped to [0, 1].
        """
        return (image * self.std + self.mean).clamp(0.0, 1.0)

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        """The spike train of (6)-(7) (``latency_encode``).

        Args:
            features: the raw pixels [B, C, H, W].
            timesteps: T.

        Returns:
            X [T, B, C, H, W].
        """
        return latency_encode(features, timesteps)

    def input_at(self, features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
        """X[t] of (7) for one timestep (``latency_spikes_at``).

        Args:
            features: the raw pixels [B, C, H, W].
            timestep: the 1-based timestep, one for the batch or [B], each row's own.
            timesteps: T.

        Returns:
            [B, C, H, W] of 0s and 1s.
        """
        return latency_spikes_at(features, timestep, timesteps)
