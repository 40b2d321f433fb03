"""Running the network one timestep at a time gives the outputs of the multi-step run."""

import pytest
import torch

from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec


def _trained_like(spec: NetworkSpec, seed: int = 0) -> SpikingNetwork:
    """A network with non-trivial batchnorm statistics, so that spikes actually happen."""
    torch.manual_seed(seed)
    network = SpikingNetwork(spec)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.05, 0.3)
            module.weight.data.uniform_(0.8, 1.6)
    # A larger classifier makes the output layer fire within T, as a trained one does.
    network.head.module.weight.data.mul_(8.0)
    network.head.module.bias.data.fill_(0.3)
    return network.eval()


def _stepwise(network: SpikingNetwork, images: torch.Tensor):
    features = network.features(images)
    state = network.initial_state(images.shape[0])
    outputs = []
    for t in range(1, network.timesteps + 1):
        out = network.step(features, t, state)
        state = out.state
        outputs.append(out)
    return outputs


SPECS = [
    NetworkSpec("digits_net", (1, 8, 8), 10, coding="latency", encoder="le", timesteps=4),
    NetworkSpec("digits_net", (1, 8, 8), 10, coding="latency", encoder="intensity", timesteps=3),
    NetworkSpec("digits_net", (1, 8, 8), 10, coding="rate", timesteps=4),
    NetworkSpec("sew_resnet18", (3, 16, 16), 5, arch_args={"width": 0.125}, timesteps=4),
    NetworkSpec("vgg11", (3, 32, 32), 4, arch_args={"width": 0.125}, timesteps=2),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.architecture}-{s.coding}-{s.encoder}")
@torch.no_grad()
def test_step_by_step_equals_multi_step(spec):
    network = _trained_like(spec)
    images = torch.rand(6, *spec.input_shape)
    full = network(images)
    steps = _stepwise(network, images)
    assert full.spikes.sum() > 0 and full.layer_spikes.sum() > 0, "the check needs activity to mean anything"
    for t, out in enumerate(steps):
        assert torch.equal(out.spikes, full.spikes[t])
        assert torch.equal(out.layer_spikes, full.layer_spikes[t])
        torch.testing.assert_close(out.membrane, full.membrane[t], rtol=0, atol=1e-5)
        torch.testing.assert_close(out.current, full.current[t], rtol=0, atol=1e-5)
        torch.testing.assert_close(out.synaptic_inputs, full.synaptic_inputs[t], rtol=0, atol=1e-4)
    final = steps[-1].state
    for stepped, whole in zip(final.hidden, full.state.hidden):
        torch.testing.assert_close(stepped.membrane, whole.membrane, rtol=0, atol=1e-5)


def test_two_networks_do_not_share_state():
    spec = SPECS[0]
    first, second = _trained_like(spec, seed=1), _trained_like(spec, seed=1)
    images = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        alone = second(images)
        first(torch.rand(4, 1, 8, 8))  # anything run on another model must not leak in
        again = second(images)
    assert torch.equal(alone.membrane, again.membrane)


def test_layout_counts_neurons_and_flops():
    network = SpikingNetwork(SPECS[0])
    spiking = network.layout["spiking_layers"]
    assert [layer["neurons"] for layer in spiking] == [32 * 8 * 8, 64 * 8 * 8, 128 * 4 * 4]
    flops = [layer["flops"] for layer in network.layout["synaptic_layers"]]
    # H_out * W_out * C_in * C_out * K^2, and I * O for the classifier
    assert flops == [8 * 8 * 1 * 32 * 9, 8 * 8 * 32 * 64 * 9, 4 * 4 * 64 * 128 * 9, 128 * 2 * 2 * 10]
    kinds = [layer["kind"] for layer in network.layout["synaptic_layers"]]
    assert kinds == ["mac", "sop", "sop", "sop"]


def test_spec_round_trips_through_json_dict():
    spec = NetworkSpec("vgg16", (3, 32, 32), 100, arch_args={"width": 0.5}, coding="rate", timesteps=6)
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    assert NetworkSpec("vgg11", (3, 32, 32), 10, coding="ann", timesteps=4).timesteps == 1  # one pass


@pytest.mark.parametrize(
    "bad",
    [
        dict(architecture="resnet50"),
        dict(coding="phase"),
        dict(coding="rate", encoder="le"),
        dict(timesteps=0),
    ],
)
def test_invalid_specs_are_refused(bad):
    values = dict(architecture="digits_net", input_shape=(1, 8, 8), num_classes=10) | bad
    with pytest.raises(ValueError):
        NetworkSpec(**values)
