"""Direct (analog current) input for the rate-coded baseline and the ANN.

Phi (conv + batchnorm) of the static image is computed once and injected as the same input
current at every timestep; the first activation layer of the network (LIF for the rate-coded
SNN, ReLU for the ANN) turns it into spikes or activations.
"""

from __future__ import annotations

import torch
from torch import nn


class DirectCurrentEncoder(nn.Module):
    uses_analog_layer = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.out_channels = out_channels

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(image))

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        return features.unsqueeze(0).expand(timesteps, *features.shape)

    def input_at(self, features: torch.Tensor, timestep: int, timesteps: int) -> torch.Tensor:
        return features
