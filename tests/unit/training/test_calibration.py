"""Choosing the output neurons' rule: replayed decisions against hand-computed ones."""

from pathlib import Path

import pytest
import torch

from training.calibration import choose, output_currents, replay, scan
from training.neurons.lif import LIFParameters

ROOT = Path(__file__).parents[3]

# O[t] for two samples over T=4, two classes. Sample 0 (class 0) is plain; sample 1 (class 1)
# starts with a misleading step toward class 0 and then shows class 1 clearly.
CURRENTS = torch.tensor(
    [
        [[0.6, 0.1], [0.55, 0.1]],
        [[0.6, 0.1], [0.0, 0.95]],
        [[0.6, 0.1], [0.0, 0.95]],
        [[0.6, 0.1], [0.0, 0.95]],
    ]
)
LABELS = torch.tensor([0, 1])


def test_a_low_threshold_answers_at_once_and_is_misled():
    rule = replay(CURRENTS, LABELS, LIFParameters(leak=1.0, threshold=0.5))
    # both samples cross 0.5 at t=1 (0.6 and 0.55): sample 1 answers class 0, wrongly
    assert (rule.accuracy, rule.mean_decision_timestep, rule.no_spike_share) == (0.5, 1.0, 0.0)


def test_a_higher_threshold_waits_for_the_evidence():
    rule = replay(CURRENTS, LABELS, LIFParameters(leak=1.0, threshold=1.0))
    # sample 0: 0.6, 1.2 -> t=2; sample 1: class 0 stays 0.55, class 1 0.1, 1.05 -> t=2, right
    assert (rule.accuracy, rule.mean_decision_timestep) == (1.0, 2.0)


def test_a_leak_delays_the_decision():
    rule = replay(CURRENTS[:, :1], LABELS[:1], LIFParameters(leak=0.5, threshold=1.0))
    # sample 0, class 0: 0.6, 0.5 * 0.6 + 0.6 = 0.9, 0.45 + 0.6 = 1.05 -> t=3 (no leak: t=2)
    assert (rule.accuracy, rule.mean_decision_timestep) == (1.0, 3.0)


def test_no_output_spike_decides_at_t_by_the_membrane():
    rule = replay(CURRENTS, LABELS, LIFParameters(leak=1.0, threshold=100.0))
    # membranes at T: sample 0 [2.4, 0.4] -> class 0; sample 1 [0.55, 2.95] -> class 1
    assert (rule.accuracy, rule.mean_decision_timestep, rule.no_spike_share) == (1.0, 4.0, 1.0)


def test_choose_takes_the_most_accurate_rule_within_the_budget():
    rules = scan(CURRENTS, LABELS, LIFParameters(), leaks=(1.0,), thresholds=(0.5, 1.0, 100.0))
    assert choose(rules, 1.5).threshold == 0.5
    assert choose(rules, 2.0).threshold == 1.0  # as accurate as 100.0 and faster
    with pytest.raises(ValueError, match="fastest takes 1.000"):
        choose(rules, 0.9)


def test_replaying_the_trained_rule_reproduces_evaluate():
    from training.data import load_dataset
    from training.evaluate import evaluate
    from training.store.load import load_network

    network, _ = load_network(ROOT / "model_store" / "digits")
    test = load_dataset("digits", "test")
    currents, labels = output_currents(network, test)
    replayed = replay(currents, labels, network.spec.output_neuron)
    evaluated = evaluate(network, test)
    assert replayed.accuracy == pytest.approx(evaluated.accuracy)
    assert replayed.mean_decision_timestep == pytest.approx(evaluated.mean_decision_timestep)
    subset, subset_labels = output_currents(network, test, samples=50, seed=1)
    assert subset.shape == (network.timesteps, 50, 10) and subset_labels.shape == (50,)
