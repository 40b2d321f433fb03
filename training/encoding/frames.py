"""Event-camera input: frames of binned DVS events go in directly, one per timestep.

The events are already spikes (counts per pixel and polarity), so there is no feature extractor
and no latency code; the first synaptic layer of the body is driven by the events themselves.
"""

from __future__ import annotations

import torch
from torch import nn


class EventFrameEncoder(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.out_channels = in_channels

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Frames as they are: [B, T, C, H, W] for a whole stream, [B, C, H, W] for one step."""
        return inputs

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        """[B, T', C, H, W] -> [T, B, C, H, W]: the first T frames, empty ones if T' < T."""
        frames = features.transpose(0, 1)[:timesteps]
        if frames.shape[0] < timesteps:
            padding = frames.new_zeros((timesteps - frames.shape[0], *frames.shape[1:]))
            frames = torch.cat([frames, padding])
        return frames

    def input_at(self, features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
        """Serving hands each timestep's frame to ``step`` as it completes."""
        return features
