"""Phi of (5): the convolution + batchnorm that reads the analog image.

Shared by the LE module (which squashes it with a sigmoid into spike times) and by direct
input (which injects it as a current every timestep). Its input is static, so it runs once
per image and its cost counts once, as MACs, in (16).
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureStem(nn.Module):
    """Phi of (5), conv + batchnorm, shared by the encoders that read an analog image.

    Args:
        in_channels: the image's channels.
        out_channels: the feature maps Phi makes.
        kernel_size: the convolution's square kernel, padded to keep the image's size.
        stride: the convolution's stride.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.out_channels = out_channels

    def phi(self, image: torch.Tensor) -> torch.Tensor:
        """Phi(I) of (5).

        Args:
            image: the normalised images [B, C, H, W].

        Returns:
            [B, out_channels, H', W'].
        """
        features: torch.Tensor = self.norm(self.conv(image))
        return features
