"""Every architecture, in every coding, does a forward and backward pass at T=2."""

import pytest
import torch

from training.losses import tad_loss
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec

CASES = [
    ("digits_net", (1, 8, 8), "latency"),
    ("digits_net", (1, 8, 8), "rate"),
    ("digits_net", (1, 8, 8), "ann"),
    ("vgg11", (3, 32, 32), "latency"),
    ("vgg11", (3, 32, 32), "ann"),
    ("vgg16", (3, 32, 32), "latency"),
    ("vgg16", (3, 32, 32), "rate"),
    ("sew_resnet18", (3, 32, 32), "latency"),
    ("sew_resnet18", (3, 32, 32), "rate"),
    ("sew_resnet18", (3, 32, 32), "ann"),
]


@pytest.mark.parametrize("architecture, input_shape, coding", CASES)
def test_forward_and_backward(architecture, input_shape, coding):
    torch.manual_seed(0)
    network = SpikingNetwork(NetworkSpec(architecture, input_shape, 10, coding=coding, timesteps=2))
    images = torch.rand(2, *input_shape)
    output = network(images)
    expected_steps = 1 if coding == "ann" else 2
    assert output.current.shape == (expected_steps, 2, 10)
    loss = tad_loss(output.current, torch.tensor([1, 7]))
    loss.backward()
    first_conv = network.encoder.conv.weight
    assert first_conv.grad is not None and torch.isfinite(first_conv.grad).all()
    assert first_conv.grad.abs().sum() > 0, (
        "the gradient must reach the encoder (through the STE for latency)"
    )
    assert network.head.module.weight.grad.abs().sum() > 0


def test_vgg_and_sew_resnet_have_the_paper_shapes():
    vgg11 = SpikingNetwork(NetworkSpec("vgg11", (3, 32, 32), 10))
    vgg16 = SpikingNetwork(NetworkSpec("vgg16", (3, 32, 32), 10))
    sew = SpikingNetwork(NetworkSpec("sew_resnet18", (3, 32, 32), 100))
    convs = lambda net: sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d))  # noqa: E731
    assert convs(vgg11) == 8 and convs(vgg16) == 13  # no FC layers besides the classifier
    assert vgg11.head.module.in_features == 512 and vgg16.head.module.in_features == 512
    assert convs(sew) == 1 + 16 + 3  # stem, 8 basic blocks, 3 downsampling shortcuts
    assert sew.head.module.in_features == 512


@pytest.mark.parametrize("architecture", ["vgg11", "sew_resnet18"])
def test_event_frames_get_the_stem_convolution_in_the_body(architecture):
    spec = NetworkSpec(architecture, (2, 32, 32), 10, encoder="frames", timesteps=2)
    network = SpikingNetwork(spec)
    first = next(m for m in network.body.modules() if isinstance(m, torch.nn.Conv2d))
    assert (first.in_channels, first.out_channels) == (2, 64)
    output = network(torch.rand(2, 2, 2, 32, 32))  # [B, T, C, H, W]
    assert output.current.shape == (2, 2, 10)


def test_digits_net_stages_of_several_convolutions():
    spec = NetworkSpec(
        "digits_net", (1, 28, 28), 10, arch_args={"channels": [[8, 8], 16, [24, 24]]}, timesteps=2
    )
    network = SpikingNetwork(spec)
    convs = [m for m in network.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(32, 8), (8, 8), (8, 16), (16, 24), (24, 24)]
    pools = [m for m in network.body.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3  # one per stage: 28 -> 14 -> 7 -> 3
    assert network.head.module.in_features == 24 * 3 * 3
    assert network(torch.rand(2, 1, 28, 28)).current.shape == (2, 2, 10)
