"""Energy (15)-(17) by hand for a tiny layer table with known activity."""

import pytest
import torch

from training.contract.energy import (
    E_AC_JOULES,
    E_MAC_JOULES,
    ann_operation_counts,
    neuromorphic_energy,
    operation_counts,
)
from training.contract.manifest import SynapticLayer
from training.evaluate import evaluate
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec

LAYERS = [
    SynapticLayer.model_validate(layer)
    for layer in (
        {"name": "encoder.conv", "kind": "mac", "flops": 1000, "input_neurons": 64, "static": True},
        {"name": "conv", "kind": "sop", "flops": 8000, "input_neurons": 200, "static": False},
        {"name": "head", "kind": "sop", "flops": 500, "input_neurons": 50, "static": False},
    )
]


def test_snn_energy_counts_first_layer_as_macs_and_the_rest_as_rate_times_flops():
    # 30 spikes into conv over the steps run (alpha = 30/200), 10 into the head (alpha = 10/50)
    counts = operation_counts(LAYERS, [30, 10], timesteps_run=2)
    assert counts.macs == 1000
    assert counts.synaptic_ops == pytest.approx(30 / 200 * 8000 + 10 / 50 * 500)  # 1200 + 100
    assert counts.joules() == pytest.approx(4.6e-12 * 1000 + 0.9e-12 * 1300)


def test_ann_energy_is_all_flops_as_macs():
    counts = ann_operation_counts(LAYERS)
    assert counts.macs == 9500 and counts.synaptic_ops == 0
    assert counts.joules() == pytest.approx(9500 * E_MAC_JOULES)


def test_neuromorphic_energy_17():
    assert neuromorphic_energy(0.5, 0.8, 0.6, 0.4) == pytest.approx(0.6 * 0.5 + 0.4 * 0.8)
    assert neuromorphic_energy(0.5, 0.8, 0.36, 0.64) == pytest.approx(0.36 * 0.5 + 0.64 * 0.8)


def test_activity_count_mismatch_is_an_error():
    with pytest.raises(ValueError):
        operation_counts(LAYERS, [1.0], timesteps_run=1)


@torch.no_grad()
def test_evaluation_counts_only_timesteps_before_the_decision():
    torch.manual_seed(0)
    network = SpikingNetwork(NetworkSpec("digits_net", (1, 8, 8), 10, timesteps=4)).eval()
    network.head.module.weight.data.mul_(8.0)
    images = torch.rand(16, 1, 8, 8)
    dataset = list(zip(images, [0] * 16))
    result = evaluate(network, dataset)
    output = network(images)
    from training.decoding import first_spike_decision

    decision = first_spike_decision(output.spikes, output.membrane)
    expected_joules = 0.0
    for b in range(16):
        ran = int(decision.decision_timestep[b])
        activity = output.synaptic_inputs[:ran, b].sum(dim=0).tolist()
        layers = [SynapticLayer.model_validate(layer) for layer in network.layout["synaptic_layers"]]
        expected_joules += operation_counts(layers, activity, ran).joules()
    assert result.energy_joules_per_sample == pytest.approx(expected_joules / 16)
    assert result.mean_decision_timestep == pytest.approx(decision.decision_timestep.float().mean().item())
    assert E_AC_JOULES < E_MAC_JOULES
