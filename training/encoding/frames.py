"""Event-camera input: frames of binned DVS events go in directly, one per timestep.

The events are already spikes (counts per pixel and polarity), so there is no feature extractor
and no latency code; the first synaptic layer of the body is driven by the events themselves.
"""

from __future__ import annotations

import torch
from torch import nn


class EventFrameEncoder(nn.Module):
    """Binned DVS event frames as the network's input spikes, one frame per timestep.

    Args:
        in_channels: the frame's channels (2: OFF and ON polarity).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.out_channels = in_channels

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """Frames as they are: there is nothing to compute once per input.

        Args:
            inputs: [B, T, C, H, W] for a whole stream, [B, C, H, W] for one step.

        Returns:
            ``inputs``.
        """
        return inputs

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        """A stream's frames, time first: the first T frames, empty ones if there are fewer.

        Args:
            features: the frames [B, T', C, H, W].
            timesteps: T.

        Returns:
            [T, B, C, H, W].
        """
        frames = features.transpose(0, 1)[:timesteps]
        if frames.shape[0] < timesteps:
            padding = frames.new_zeros((timesteps - frames.shape[0], *frames.shape[1:]))
            frames = torch.cat([frames, padding])
        return frames

    def input_at(self, features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
        """The input of one timestep: serving hands each frame to ``step`` as it completes.

        Args:
            features: the timestep's frame [B, C, H, W].
            timestep: the 1-based timestep (unused).
            timesteps: T (unused).

        Returns:
            ``features``.
        """
        return features
