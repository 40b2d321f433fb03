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


@pytest.mark.parametrize(
    "spec",
    [*SPECS, NetworkSpec("vgg11", (3, 32, 32), 4, coding="ann", arch_args={"width": 0.125})],
    ids=lambda s: f"{s.architecture}-{s.coding}-{s.encoder}",
)
@torch.no_grad()
def test_first_step_is_features_then_step_one_from_rest(spec):
    network = _trained_like(spec)
    images = torch.rand(6, *spec.input_shape)
    features, fused = network.first_step(images)
    parts = network.step(network.features(images), 1, network.initial_state(6))
    assert torch.equal(features, network.features(images))
    for name in ("current", "membrane", "spikes", "layer_spikes", "synaptic_inputs"):
        assert torch.equal(getattr(fused, name), getattr(parts, name)), name
    for a, b in zip((*fused.state.hidden, fused.state.output), (*parts.state.hidden, parts.state.output)):
        assert torch.equal(a.membrane, b.membrane)


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


def test_unknown_spec_fields_are_a_clear_error():
    values = NetworkSpec("digits_net", (1, 8, 8), 10).to_dict() | {"encoder_args": {}}
    with pytest.raises(ValueError, match="unknown network spec fields: encoder_args"):
        NetworkSpec.from_dict(values)


def test_output_neuron_defaults_to_the_papers_single_neuron_and_round_trips():
    from training.neurons.lif import LIFParameters

    spec = NetworkSpec("digits_net", (1, 8, 8), 10)
    assert spec.output_neuron == spec.neuron
    old_manifest = {key: value for key, value in spec.to_dict().items() if key != "output_neuron"}
    assert NetworkSpec.from_dict(old_manifest).output_neuron == spec.neuron
    custom = NetworkSpec("digits_net", (1, 8, 8), 10, output_neuron=LIFParameters(leak=1.0, threshold=4.0))
    assert NetworkSpec.from_dict(custom.to_dict()) == custom
    assert custom.neuron == LIFParameters()  # the hidden layers keep the paper's neuron


def _constant_output(current: list[float], timesteps: int = 4) -> SpikingNetwork:
    """A network whose output current O[t] is ``current`` at every timestep, whatever the input."""
    network = SpikingNetwork(
        NetworkSpec(
            "digits_net",
            (1, 8, 8),
            len(current),
            arch_args={"channels": [4]},
            encoder="intensity",
            timesteps=timesteps,
        )
    ).eval()
    network.head.module.weight.data.zero_()
    network.head.module.bias.data = torch.tensor(current)
    return network


@pytest.mark.parametrize(
    "output_neuron, decision_timestep, fired",
    [
        # O = 0.6 each step. leak 0.5, V_th 1: U = 0.6, 0.9, 1.05 -> first spike at t=3.
        ({}, 3, True),
        # leak 1 (no leak): U = 0.6, 1.2 -> t=2.
        ({"leak": 1.0}, 2, True),
        # leak 1, V_th 2: U = 0.6, 1.2, 1.8, 2.4 -> t=4.
        ({"leak": 1.0, "threshold": 2.0}, 4, True),
        # leak 1, V_th 4: U reaches 2.4 at T=4, no spike: decided at T by the larger potential.
        ({"leak": 1.0, "threshold": 4.0}, 4, False),
    ],
)
def test_output_neuron_sets_when_the_first_spike_decides(output_neuron, decision_timestep, fired):
    from training.evaluate import decide

    network = _constant_output([0.6, 0.5, 0.1])
    if output_neuron:
        network.set_output_neuron(**output_neuron)
    images = torch.rand(2, 1, 8, 8)
    decision = decide(network, network(images))
    assert decision.class_index.tolist() == [0, 0]
    assert decision.decision_timestep.tolist() == [decision_timestep] * 2
    assert decision.fired.tolist() == [fired] * 2
    # Serving's step-by-step path carries the same output neuron.
    steps = _stepwise(network, images)
    first = next((t for t, out in enumerate(steps, 1) if out.spikes.sum() > 0), None)
    assert first == (decision_timestep if fired else None)
    # The hidden layers and the currents O[t] that training fits do not change.
    assert network.spec.neuron == NetworkSpec("digits_net", (1, 8, 8), 3).neuron
    assert torch.allclose(network(images).current, torch.tensor([0.6, 0.5, 0.1]).expand(4, 2, 3))
