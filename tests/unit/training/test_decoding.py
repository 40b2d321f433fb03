"""First-spike decoding with the membrane tie-break, (10)-(11)."""

import torch

from training.decoding import first_spike_decision, time_mean_decision


def _run(spikes, membrane):
    return torch.tensor(spikes, dtype=torch.float32), torch.tensor(membrane, dtype=torch.float32)


def test_unique_first_spike_wins_even_if_another_neuron_is_higher_later():
    # sample: class 2 fires alone at t=2; class 0 fires at t=3 with a larger potential
    spikes, membrane = _run(
        [[[0, 0, 0]], [[0, 0, 1]], [[1, 0, 1]]],
        [[[0.2, 0.1, 0.5]], [[0.6, 0.2, 1.1]], [[3.0, 0.1, 1.2]]],
    )
    decision = first_spike_decision(spikes, membrane)
    assert decision.class_index.tolist() == [2]
    assert decision.decision_timestep.tolist() == [2]
    assert decision.exit_reasons() == ["first_spike"]


def test_tie_is_broken_by_the_membrane_before_reset():
    spikes, membrane = _run([[[0, 1, 1, 0]], [[1, 1, 1, 1]]], [[[0.3, 1.4, 1.7, 0.9]], [[9, 9, 9, 9]]])
    decision = first_spike_decision(spikes, membrane)
    assert decision.class_index.tolist() == [2]
    assert decision.decision_timestep.tolist() == [1]


def test_no_spike_by_t_takes_argmax_of_membrane_at_t():
    spikes, membrane = _run(
        [[[0, 0, 0]], [[0, 0, 0]], [[0, 0, 0]]], [[[0.9, 0, 0]], [[0, 0.5, 0]], [[0.1, 0.3, 0.7]]]
    )
    decision = first_spike_decision(spikes, membrane)
    assert decision.class_index.tolist() == [2]
    assert decision.decision_timestep.tolist() == [3]
    assert decision.exit_reasons() == ["no_spike"]


def test_batch_mixes_samples():
    spikes = torch.tensor([[[0, 0], [1, 0]], [[0, 1], [1, 1]]], dtype=torch.float32)  # [T=2, B=2, K=2]
    membrane = torch.tensor([[[0.1, 0.2], [1.2, 0.4]], [[0.3, 1.5], [2.0, 1.0]]])
    decision = first_spike_decision(spikes, membrane)
    assert decision.class_index.tolist() == [1, 0]
    assert decision.decision_timestep.tolist() == [2, 1]


def test_time_mean_decision_uses_all_steps():
    current = torch.tensor([[[2.0, 0.0]], [[-1.0, 1.5]]])
    decision = time_mean_decision(current)
    assert decision.class_index.tolist() == [1] and decision.decision_timestep.tolist() == [2]
