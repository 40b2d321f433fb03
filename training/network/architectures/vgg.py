"""VGG-11 and VGG-16 without their fully connected layers (paper, Sec. IV-A).

The first convolution of the usual configuration is the encoder's Phi (the LE module's
feature extractor), so with a stem the body starts from the second entry; without one (event
frames, raw intensities) the body has it as an ordinary spiking layer. Pooling is max pooling, which
keeps spikes binary. The classifier is a single linear layer added by the network.
"""

from __future__ import annotations

from torch import nn

from training.network.layers import ActivationFactory, Chain, Stateless, conv_bn_act

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg(config: tuple, in_channels: int, activation: ActivationFactory, width: float, stem: bool) -> Chain:
    layers = []
    for entry in config[1:] if stem else config:
        if entry == "M":
            layers.append(Stateless(nn.MaxPool2d(2)))
        else:
            out_channels = max(1, int(entry * width))
            layers.append(conv_bn_act(in_channels, out_channels, activation))
            in_channels = out_channels
    layers.append(Stateless(nn.Flatten()))
    return Chain(*layers)


def vgg11(in_channels: int, activation: ActivationFactory, stem: bool = True, width: float = 1.0) -> Chain:
    return _vgg(VGG11, in_channels, activation, width, stem)


def vgg16(in_channels: int, activation: ActivationFactory, stem: bool = True, width: float = 1.0) -> Chain:
    return _vgg(VGG16, in_channels, activation, width, stem)


def vgg_stem_channels(name: str, width: float = 1.0) -> int:
    return max(1, int({"vgg11": VGG11, "vgg16": VGG16}[name][0] * width))
