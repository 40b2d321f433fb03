"""VGG-11 and VGG-16 without their fully connected layers (paper, Sec. IV-A).

The first convolution of the usual configuration is the encoder's Phi (the LE module's
feature extractor), so with a stem the body starts from the second entry; without one (event
frames, raw intensities) the body has it as an ordinary spiking layer. Pooling is max pooling, which
keeps spikes binary. The classifier is a single linear layer added by the network.
"""

from __future__ import annotations

from torch import nn

from training.network.layers import ActivationFactory, Chain, Layer, Stateless, conv_bn_act

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg(
    config: tuple[int | str, ...], in_channels: int, activation: ActivationFactory, width: float, stem: bool
) -> Chain:
    layers: list[Layer] = []
    for entry in config[1:] if stem else config:
        if isinstance(entry, str):  # "M"
            layers.append(Stateless(nn.MaxPool2d(2)))
        else:
            out_channels = max(1, int(entry * width))
            layers.append(conv_bn_act(in_channels, out_channels, activation))
            in_channels = out_channels
    layers.append(Stateless(nn.Flatten()))
    return Chain(*layers)


def vgg11(in_channels: int, activation: ActivationFactory, stem: bool = True, width: float = 1.0) -> Chain:
    """The VGG-11 body.

    Args:
        in_channels: the channels the encoder hands over.
        activation: makes each activation (LIF for SNNs, ReLU for the ANN).
        stem: whether the encoder's Phi is the first convolution.
        width: scales every convolution's channels.

    Returns:
        The body.
    """
    return _vgg(VGG11, in_channels, activation, width, stem)


def vgg16(in_channels: int, activation: ActivationFactory, stem: bool = True, width: float = 1.0) -> Chain:
    """The VGG-16 body.

    Args:
        in_channels: the channels the encoder hands over.
        activation: makes each activation (LIF for SNNs, ReLU for the ANN).
        stem: whether the encoder's Phi is the first convolution.
        width: scales every convolution's channels.

    Returns:
        The body.
    """
    return _vgg(VGG16, in_channels, activation, width, stem)


def vgg_stem_channels(name: str, width: float = 1.0) -> int:
    """The channels of a VGG's first convolution, the encoder's Phi.

    Args:
        name: ``vgg11`` or ``vgg16``.
        width: the width scale.

    Returns:
        The first entry of the configuration, scaled, at least 1.
    """
    first = {"vgg11": VGG11, "vgg16": VGG16}[name][0]
    assert isinstance(first, int)  # every configuration starts with a convolution
    return max(1, int(first * width))
