"""Latency encoding (5)-(9): spike times for chosen x and T, one spike per neuron, STE."""

import pytest
import torch

from training.encoding import LatencyEncoder, latency_encode, latency_spikes_at, spike_times


@pytest.mark.parametrize(
    "x, timesteps, expected",
    [
        (0.9, 4, 1),  # ceil(0.4)
        (0.75, 4, 1),  # ceil(1.0)
        (0.74, 4, 2),  # ceil(1.04)
        (0.5, 4, 2),  # ceil(2.0)
        (0.3, 4, 3),  # ceil(2.8)
        (0.01, 4, 4),  # ceil(3.96)
        (0.0, 4, 4),
        (1.0, 4, 1),  # ceil(0) = 0 is clamped to the first step
        (0.55, 2, 1),  # ceil(0.9)
        (0.45, 2, 2),  # ceil(1.1)
        (0.2, 8, 7),  # ceil(6.4)
    ],
)
def test_spike_times(x, timesteps, expected):
    assert spike_times(torch.tensor([x]), timesteps).item() == expected


def test_every_neuron_fires_exactly_once_at_its_time():
    features = torch.tensor([[0.9, 0.5, 0.3, 0.01]])
    train = latency_encode(features, 4)
    assert train.shape == (4, 1, 4)
    assert train.sum(dim=0).tolist() == [[1, 1, 1, 1]]
    assert train[:, 0, :].argmax(dim=0).add(1).tolist() == [1, 2, 3, 4]
    for t in range(1, 5):
        assert torch.equal(latency_spikes_at(features, t, 4), train[t - 1])


def test_straight_through_gradient_is_the_sum_over_time():
    features = torch.tensor([0.9, 0.5, 0.2], requires_grad=True)
    train = latency_encode(features, 3)
    upstream = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0], [-2.0, 0.25, 1.0]])
    (train * upstream).sum().backward()
    assert features.grad.tolist() == pytest.approx([-0.5, 1.25, 8.0])  # column sums of upstream


def test_le_module_features_are_sigmoid_of_conv_bn():
    encoder = LatencyEncoder(1, 4).eval()
    image = torch.rand(2, 1, 8, 8)
    features = encoder.features(image)
    assert torch.allclose(features, torch.sigmoid(encoder.norm(encoder.conv(image))))
    assert features.min() > 0 and features.max() < 1


@pytest.mark.parametrize("timesteps", [2, 3, 4, 6, 8, 16])
def test_first_timestep_spikes_equal_the_general_rule_at_every_boundary(timesteps):
    # Timestep 1 takes a shorter path (y <= 1, or x >= 1 - 1/T for T = 4, 8, 16, instead of
    # clamp(ceil(y), 1, T) == 1); it must fire exactly the same neurons, also one float step
    # either side of the boundary 1 - 1/T.
    boundary = torch.tensor(1.0 - 1.0 / timesteps)
    near = [
        torch.nextafter(boundary, torch.tensor(-1.0)),
        boundary,
        torch.nextafter(boundary, torch.tensor(2.0)),
    ]
    half = torch.tensor(0.5)
    edges = [
        torch.nextafter(half, torch.tensor(0.0)),
        half,
        torch.tensor(0.0),
        torch.tensor(1.0),
        torch.tensor(-0.5),
        torch.tensor(1.5),
        torch.tensor(float("nan")),
    ]
    features = torch.cat(
        [torch.stack(near + edges), torch.rand(10_000, generator=torch.Generator().manual_seed(0))]
    )
    general = (spike_times(features, timesteps) == 1).to(features.dtype)
    assert torch.equal(latency_spikes_at(features, 1, timesteps), general)
    assert general[:3].sum() >= 1 and general[:10].sum() < 10, "the boundary must lie among the values tried"
    assert torch.equal(latency_spikes_at(features, torch.ones(len(features)), timesteps), general)
