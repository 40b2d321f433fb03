"""Direct intensity-to-latency encoding: the ablation of the LE module (paper Sec. IV-E 1).

Raw pixel intensities in [0, 1] are mapped straight to spike times with (8); there is no
feature extractor, so the first synaptic layer of the body sees the image's own channels.
"""

from __future__ import annotations

import torch
from torch import nn

from training.encoding.latency import latency_encode, latency_spikes_at


class IntensityLatencyEncoder(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.out_channels = in_channels

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return image.clamp(0.0, 1.0)

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        return latency_encode(features, timesteps)

    def input_at(self, features: torch.Tensor, timestep: int, timesteps: int) -> torch.Tensor:
        return latency_spikes_at(features, timestep, timesteps)
