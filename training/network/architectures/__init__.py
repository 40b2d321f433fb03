"""Architecture bodies. Each builder returns the layers between the encoder and the classifier.

A builder takes the channels the encoder hands over, an activation factory (LIF for SNNs, ReLU
for the ANN) and whether the encoder has a convolutional stem (Phi), so one definition serves
every coding and input.
"""

from collections.abc import Callable

from training.network.architectures.digits import digits_net
from training.network.architectures.sew_resnet import sew_resnet18
from training.network.architectures.vgg import vgg11, vgg16
from training.network.layers import Chain

# name -> builder(in_channels, activation, stem=..., **arch_args); the keyword arguments differ
# between builders.
ARCHITECTURES: dict[str, Callable[..., Chain]] = {
    "digits_net": digits_net,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "sew_resnet18": sew_resnet18,
}

__all__ = ["ARCHITECTURES"]
