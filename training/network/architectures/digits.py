"""Small convolutional nets for small grey images: the 8x8 built-in digits and 28x28
Fashion-MNIST."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from training.network.layers import ActivationFactory, Chain, Layer, Stateless, conv_bn_act


def digits_net(
    in_channels: int,
    activation: ActivationFactory,
    stem: bool = True,
    channels: Sequence[int | Sequence[int]] = (64, 128),
) -> Chain:
    """One stage per entry of ``channels``: conv-bn-act, then 2x2 max pooling; then flatten.

    An entry is one convolution's width, or a list of widths for a VGG-style stage of several
    convolutions before its pooling (``[[64, 64], [128, 128], [256, 256]]`` on 28x28:
    28 -> 14 -> 7 -> 3). The body is the same with or without the encoder's stem.

    Args:
        in_channels: the channels the encoder hands over.
        activation: makes each activation (LIF for SNNs, ReLU for the ANN).
        stem: whether the encoder has a convolutional stem (no difference here).
        channels: the stages' widths.

    Returns:
        The body.
    """
    layers: list[Layer] = []
    for stage in channels:
        for out_channels in map(int, [stage] if isinstance(stage, int) else stage):
            layers.append(conv_bn_act(in_channels, out_channels, activation))
            in_channels = out_channels
        layers.append(Stateless(nn.MaxPool2d(2)))
    layers.append(Stateless(nn.Flatten()))
    return Chain(*layers)
