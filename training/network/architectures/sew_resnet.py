"""SEW-ResNet-18 (Fang et al., 2021) with a CIFAR stem: 3x3 stride-1 stem, no max pool.

Spike-element-wise blocks with ADD connections: out = SN(BN(conv(SN(BN(conv(x)))))) + shortcut(x),
where the shortcut is the identity or conv1x1-BN-SN when the shape changes. The stem's conv+BN
is the encoder's Phi, so the body starts at the first residual stage (without a stem the body
begins with that convolution as a spiking layer).
"""

from __future__ import annotations

import torch
from torch import nn

from training.network.layers import ActivationFactory, Chain, Layer, Stateless, conv_bn_act
from training.network.run import Run


class SEWBasicBlock(Layer):
    """Two conv-BN-SN layers with an ADD connection: SN(BN(conv(SN(BN(conv(x)))))) + shortcut(x).

    Args:
        in_channels: the input's channels.
        out_channels: the block's channels.
        stride: the first convolution's stride (and the shortcut's).
        activation: makes each activation (LIF for SNNs, ReLU for the ANN).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, activation: ActivationFactory
    ) -> None:
        super().__init__()
        self.residual = Chain(
            conv_bn_act(in_channels, out_channels, activation, stride=stride),
            conv_bn_act(out_channels, out_channels, activation),
        )
        self.shortcut = (
            conv_bn_act(in_channels, out_channels, activation, stride=stride, kernel_size=1)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x, run)
        return self.residual(x, run) + identity


def sew_resnet18(
    in_channels: int, activation: ActivationFactory, stem: bool = True, width: float = 1.0
) -> Chain:
    """The SEW-ResNet-18 body: four stages of two blocks, then global average pooling.

    Args:
        in_channels: the channels the encoder hands over.
        activation: makes each activation (LIF for SNNs, ReLU for the ANN).
        stem: whether the encoder's Phi is the stem; without it the stem convolution is the
            body's first spiking layer.
        width: scales every stage's channels.

    Returns:
        The body.
    """
    stages = [(int(64 * width), 1), (int(128 * width), 2), (int(256 * width), 2), (int(512 * width), 2)]
    blocks: list[Layer] = []
    if not stem:  # event frames or raw intensities: the stem convolution is part of the body
        blocks.append(conv_bn_act(in_channels, int(64 * width), activation))
        in_channels = int(64 * width)
    for out_channels, stride in stages:
        blocks.append(SEWBasicBlock(in_channels, out_channels, stride, activation))
        blocks.append(SEWBasicBlock(out_channels, out_channels, 1, activation))
        in_channels = out_channels
    blocks += [Stateless(nn.AdaptiveAvgPool2d(1)), Stateless(nn.Flatten())]
    return Chain(*blocks)
