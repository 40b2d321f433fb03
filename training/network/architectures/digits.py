"""A small convolutional net sized for the 8x8 built-in digits."""

from __future__ import annotations

from torch import nn

from training.network.layers import ActivationFactory, Chain, Stateless, conv_bn_act


def digits_net(in_channels: int, activation: ActivationFactory, stem: bool = True,
               channels: tuple[int, ...] = (64, 128)) -> Chain:
    """conv-bn-act then 2x2 max pooling per entry of ``channels`` (8x8 digits: 8 -> 4 -> 2),
    then flatten. Its body is the same with or without the encoder's stem."""
    layers = []
    for out_channels in channels:
        layers += [conv_bn_act(in_channels, out_channels, activation), Stateless(nn.MaxPool2d(2))]
        in_channels = out_channels
    layers.append(Stateless(nn.Flatten()))
    return Chain(*layers)
