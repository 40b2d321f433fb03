"""The direct-intensity encoder (the LE ablation) times spikes from raw pixels, whatever
normalisation the data set applies before the network sees them."""

from __future__ import annotations

import torch

from training.config import load_config
from training.data.cifar import CIFAR10_INFO
from training.encoding.intensity import IntensityLatencyEncoder
from training.encoding.latency import latency_encode
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec


def _cifar_like_image() -> tuple[torch.Tensor, torch.Tensor]:
    """A raw 3x4x4 image in [0, 1] with dark, mid and bright pixels, and its normalised form."""
    raw = torch.linspace(0.0, 1.0, 48).view(1, 3, 4, 4)
    mean = torch.tensor(CIFAR10_INFO.mean).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_INFO.std).view(1, 3, 1, 1)
    return raw, (raw - mean) / std


def test_intensity_encoder_uses_raw_pixels_of_a_normalised_image():
    raw, normalised = _cifar_like_image()
    encoder = IntensityLatencyEncoder(3, CIFAR10_INFO.mean, CIFAR10_INFO.std)
    assert torch.allclose(encoder.features(normalised), raw, atol=1e-6)
    spikes = encoder.input_sequence(encoder.features(normalised), 4)
    assert torch.equal(spikes, latency_encode(raw.clamp(0, 1), 4))
    # by hand, eq. (8) with T = 4: the brightest pixel fires at t = 1, the darkest at t = 4
    first_spike = spikes.argmax(dim=0)[0] + 1
    assert first_spike[2, 3, 3] == 1 and first_spike[0, 0, 0] == 4


def test_intensity_encoder_uses_raw_pixels_not_the_normalised_values():
    """Without undoing the normalisation, pixels below their channel's mean clamp to 0 and fire
    last: the spike times would not follow brightness."""
    raw, normalised = _cifar_like_image()
    naive = latency_encode(normalised.clamp(0, 1), 4)
    assert not torch.equal(naive, latency_encode(raw, 4))


def test_intensity_encoder_uses_raw_pixels_through_the_config_and_the_network():
    config = load_config("cifar10_vgg11", ["network.encoder=intensity", "data_root=/nowhere"])
    spec = config.network_spec()
    assert spec.input_mean == CIFAR10_INFO.mean and spec.input_std == CIFAR10_INFO.std
    assert NetworkSpec.from_dict(spec.to_dict()) == spec  # survives the manifest
    network = SpikingNetwork(
        NetworkSpec(
            "digits_net",
            (3, 4, 4),
            10,
            encoder="intensity",
            timesteps=4,
            arch_args={"channels": [4]},
            input_mean=CIFAR10_INFO.mean,
            input_std=CIFAR10_INFO.std,
        )
    )
    raw, normalised = _cifar_like_image()
    assert torch.allclose(network.features(normalised), raw, atol=1e-6)
    assert "encoder.mean" not in network.state_dict()  # fixed by the data set, not weights


def test_intensity_encoder_uses_raw_pixels_as_given_without_a_normalisation():
    raw, _ = _cifar_like_image()
    assert torch.equal(IntensityLatencyEncoder(3).features(raw * 2 - 0.5), (raw * 2 - 0.5).clamp(0, 1))
