"""A small convolutional net sized for the 8x8 built-in digits."""

from __future__ import annotations

from torch import nn

from training.network.layers import ActivationFactory, Chain, Stateless, conv_bn_act


def digits_net(in_channels: int, activation: ActivationFactory, channels: tuple[int, ...] = (64, 128)) -> Chain:
    """conv-bn-act, pool, conv-bn-act, pool over 8x8 inputs: 8x8 -> 4x4 -> 2x2 -> flatten."""
    layers = []
    for out_channels in channels:
        layers += [conv_bn_act(in_channels, out_channels, activation), Stateless(nn.MaxPool2d(2))]
        in_channels = out_channels
    layers.append(Stateless(nn.Flatten()))
    return Chain(*layers)
