"""Choose the output neurons' decision rule for a latency budget, without retraining.

TAD (14) trains the output currents O[t]; the output LIF's leak and threshold (2)-(4) only set
*when* the first output spike (the decision) comes. A higher threshold makes an uncertain
sample gather evidence over more timesteps before it answers, which buys accuracy with
latency. Calibration runs the network once over a sample of a split, keeps O[t], and replays
the output neuron for every candidate (leak, threshold) on those currents: the scan costs one
forward pass, however many candidates it tries.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from dataclasses import asdict, dataclass, replace
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from training.data.samples import Sample
from training.decoding import first_spike_decision
from training.network.network import SpikingNetwork
from training.neurons.lif import LIFParameters, lif_sequence

DEFAULT_THRESHOLDS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
DEFAULT_LEAKS = (0.5, 1.0)
# After training on a user's folder the budget must be met if anything can meet it: thresholds
# below the trained 1.0 make the first output spike come sooner.
WIDE_THRESHOLDS = (0.25, 0.5, 0.75, *DEFAULT_THRESHOLDS)


@dataclass(frozen=True)
class OutputRule:
    """One candidate output neuron and what it gives on the calibration sample.

    Attributes:
        leak: The output neurons' leak (2).
        threshold: Their threshold (3).
        accuracy: Share of the sample decided right.
        mean_decision_timestep: Mean timestep of the first output spike (T where none came).
        no_spike_share: Share of samples whose output never fired: decided at T by the membrane.
    """

    leak: float
    threshold: float
    accuracy: float
    mean_decision_timestep: float
    no_spike_share: float


@torch.no_grad()
def output_currents(
    network: SpikingNetwork,
    dataset: Dataset[Sample],
    samples: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """O[t] for a seeded sample of ``dataset``: ([T, N, K] float32, labels [N]).

    Args:
        network: A trained latency-coded network, put in eval mode.
        dataset: (input, label) samples.
        samples: How many to draw (without replacement); None or more than there are: all.
        seed: Seeds the draw.
        batch_size: Samples per forward pass.

    Returns:
        The output currents [T, N, K] and the labels [N].
    """
    # torch types Dataset without __len__ (iterable data sets have none); every data set here has one.
    sized = cast(Sized, dataset)
    if samples is not None and samples < len(sized):
        order = torch.randperm(len(sized), generator=torch.Generator().manual_seed(seed))
        dataset = Subset(dataset, order[:samples].tolist())
    network.eval()
    currents, labels = [], []
    for images, batch_labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        currents.append(network(images).current.float())
        labels.append(batch_labels)
    return torch.cat(currents, dim=1), torch.cat(labels)


def replay(currents: torch.Tensor, labels: torch.Tensor, neuron: LIFParameters) -> OutputRule:
    """First-spike decisions of ``neuron`` driven by recorded currents [T, N, K].

    Args:
        currents: Output currents O[t] [T, N, K].
        labels: The samples' labels [N].
        neuron: The output neurons' LIF parameters (2)-(4).

    Returns:
        What that output neuron gives on the sample.
    """
    spikes, membrane, _ = lif_sequence(currents, neuron)
    decision = first_spike_decision(spikes, membrane)
    return OutputRule(
        leak=neuron.leak,
        threshold=neuron.threshold,
        accuracy=(decision.class_index == labels).float().mean().item(),
        mean_decision_timestep=decision.decision_timestep.float().mean().item(),
        no_spike_share=(~decision.fired).float().mean().item(),
    )


def scan(
    currents: torch.Tensor,
    labels: torch.Tensor,
    neuron: LIFParameters,
    leaks: Sequence[float] = DEFAULT_LEAKS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> list[OutputRule]:
    """``replay`` every (leak, threshold) pair on the same currents.

    Args:
        currents: Output currents O[t] [T, N, K].
        labels: The samples' labels [N].
        neuron: The trained output neuron; the candidates change only its leak and threshold.
        leaks: The leaks to try.
        thresholds: The thresholds to try.

    Returns:
        One rule per pair, leak by leak.
    """
    return [
        replay(currents, labels, replace(neuron, leak=leak, threshold=threshold))
        for leak in leaks
        for threshold in thresholds
    ]


def choose(rules: list[OutputRule], max_mean_timestep: float) -> OutputRule:
    """The most accurate rule whose mean decision timestep fits the budget (ties: the faster).

    Args:
        rules: The candidates (``scan``).
        max_mean_timestep: The latency budget.

    Returns:
        The chosen rule.

    Raises:
        ValueError: No rule fits the budget.
    """
    fitting = [rule for rule in rules if rule.mean_decision_timestep <= max_mean_timestep]
    if not fitting:
        fastest = min(rule.mean_decision_timestep for rule in rules)
        raise ValueError(
            f"no output rule decides within {max_mean_timestep} timesteps on average "
            f"(the fastest takes {fastest:.3f})"
        )
    return max(fitting, key=lambda rule: (rule.accuracy, -rule.mean_decision_timestep))


@dataclass(frozen=True)
class Calibration:
    """A calibration's outcome: every candidate tried and the one chosen.

    Attributes:
        rules: The candidates, as ``scan`` gives them.
        chosen: The one ``choose`` picks for the budget (not ``strict``, where none fits: the
            fastest).
        samples: How many samples the currents came from.
        met_budget: Whether ``chosen`` fits the budget.
    """

    rules: list[OutputRule]
    chosen: OutputRule
    samples: int
    met_budget: bool = True


def calibrate(
    network: SpikingNetwork,
    dataset: Dataset[Sample],
    max_mean_timestep: float,
    samples: int | None = None,
    seed: int = 0,
    leaks: Sequence[float] = DEFAULT_LEAKS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    strict: bool = True,
) -> Calibration:
    """Record the output currents over (a sample of) ``dataset`` and choose a rule for the budget.

    The network is left as it is: ``SpikingNetwork.set_output_neuron`` applies the choice.

    Args:
        network: A trained latency-coded network.
        dataset: The split to calibrate on (never the test split).
        max_mean_timestep: The latency budget.
        samples: A seeded sample of that many; None for all.
        seed: Seeds the sample.
        leaks: The leaks to try.
        thresholds: The thresholds to try.
        strict: Refuse when no rule fits the budget; False chooses the fastest then (the most
            accurate of equally fast ones), so that a long training run is not lost to it.

    Returns:
        The rules tried and the chosen one.

    Raises:
        ValueError: ``strict`` and no rule fits the budget.
    """
    currents, labels = output_currents(network, dataset, samples, seed)
    output_neuron = network.spec.output_parameters
    rules = scan(currents, labels, output_neuron, leaks, thresholds)
    if strict or any(rule.mean_decision_timestep <= max_mean_timestep for rule in rules):
        return Calibration(rules, choose(rules, max_mean_timestep), len(labels))
    fastest = min(rules, key=lambda rule: (rule.mean_decision_timestep, -rule.accuracy))
    return Calibration(rules, fastest, len(labels), met_budget=False)


def as_rows(rules: list[OutputRule]) -> list[dict[str, float]]:
    """The rules as JSON-ready rows.

    Args:
        rules: The rules.

    Returns:
        One mapping of fields per rule.
    """
    return [asdict(rule) for rule in rules]
