"""Evaluation: accuracy, mean decision timestep, firing rate, spikes and energy per sample,
each counted only over the timesteps a sample actually runs before its decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from training.contract.decisions import TIME_MEAN
from training.contract.energy import operation_counts
from training.contract.manifest import SynapticLayer
from training.data.samples import Sample
from training.decoding import Decision, first_spike_decision, time_mean_decision
from training.losses.tad import confidence
from training.network.network import NetworkOutput, SpikingNetwork


def decide(network: SpikingNetwork, output: NetworkOutput) -> Decision:
    """The network's decisions on a batch: first spike (latency coding) or time-mean output.

    Args:
        network: The network that produced ``output``.
        output: Its output over all T timesteps.

    Returns:
        Class and decision timestep per sample.
    """
    if network.spec.coding == "latency":
        return first_spike_decision(output.spikes, output.membrane)
    return time_mean_decision(output.current)


@dataclass
class EvaluationResult:
    """A network's results on a data set.

    Attributes:
        samples: Samples evaluated.
        accuracy: Share decided right.
        mean_decision_timestep: Mean timestep of the decision (1..T).
        mean_timesteps_run: Mean timesteps run: the above with early exit, T without.
        firing_rate: Spikes per neuron per timestep run (the paper's "sparsity"); None for an ANN.
        firing_rate_per_layer: The same per spiking layer.
        spikes_per_sample: Spikes per sample over the timesteps run.
        synaptic_ops_per_sample: Synaptic operations per sample (accumulates driven by spikes,
            the SOPs of (16)).
        macs_per_sample: Multiply-accumulates per sample (the analog first layer, and every
            layer of an ANN).
        energy_joules_per_sample: Energy per inference by (15)-(16).
        exits: Samples by exit reason.
        decision_timestep_counts: Samples by decision timestep.
        timesteps: The network's T.
        per_sample: Columns by name (label, class_index, decision_timestep, exit_reason, spikes,
            joules, confidence: (12) at the decision timestep), one entry per sample.
    """

    samples: int
    accuracy: float
    mean_decision_timestep: float
    mean_timesteps_run: float
    firing_rate: float | None
    firing_rate_per_layer: dict[str, float]
    spikes_per_sample: float
    synaptic_ops_per_sample: float
    macs_per_sample: float
    energy_joules_per_sample: float
    exits: dict[str, int]
    decision_timestep_counts: dict[int, int]
    timesteps: int
    per_sample: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        """Every figure but the per-sample columns, as JSON-ready values.

        Returns:
            The fields by name, ``per_sample`` left out.
        """
        values = asdict(self)
        values.pop("per_sample")
        return values


class _Totals:
    """Running sums over batches."""

    def __init__(self, num_layers: int, timesteps: int) -> None:
        self.layer_spikes = torch.zeros(num_layers, dtype=torch.float64)
        self.correct = self.samples = self.timesteps_run = self.decision_timesteps = 0
        self.spikes = self.synaptic_ops = self.macs = self.joules = 0.0
        self.exits: dict[str, int] = {}
        self.timestep_counts = {t: 0 for t in range(1, timesteps + 1)}
        self.per_sample: dict[str, list[Any]] = {
            "label": [],
            "class_index": [],
            "decision_timestep": [],
            "exit_reason": [],
            "spikes": [],
            "joules": [],
            "confidence": [],
        }


@torch.no_grad()
def evaluate(
    network: SpikingNetwork,
    dataset: Dataset[Sample],
    batch_size: int = 256,
    device: str = "cpu",
    early_exit: bool = True,
) -> EvaluationResult:
    """Accuracy, decision time, activity and energy of ``network`` on ``dataset``.

    Activity (spikes, operations, energy) is counted over the timesteps each sample runs.

    Args:
        network: The network, put in eval mode.
        dataset: (input, label) samples.
        batch_size: Samples per forward pass.
        device: Where the network and the batches are.
        early_exit: False counts activity over all T timesteps (the decision is the same).

    Returns:
        The results.
    """
    network.eval()
    layout = network.layout
    spiking_layers = layout["spiking_layers"]
    totals = _Totals(len(spiking_layers), network.timesteps)
    for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        images, labels = images.to(device), labels.to(device)
        output = network(images)
        decision = decide(network, output)
        _accumulate(totals, network, output, decision, labels, early_exit)
    neurons = torch.tensor([layer["neurons"] for layer in spiking_layers], dtype=torch.float64)
    spiking = network.spec.coding != "ann"
    all_neurons = float(neurons.sum()) + layout["output_neurons"]
    n = max(totals.samples, 1)
    return EvaluationResult(
        samples=totals.samples,
        accuracy=totals.correct / n,
        mean_decision_timestep=totals.decision_timesteps / n,
        mean_timesteps_run=totals.timesteps_run / n,
        firing_rate=totals.spikes / (all_neurons * totals.timesteps_run) if spiking else None,
        firing_rate_per_layer={
            layer["name"]: float(count / (layer["neurons"] * totals.timesteps_run))
            for layer, count in zip(spiking_layers, totals.layer_spikes)
        },
        spikes_per_sample=totals.spikes / n,
        synaptic_ops_per_sample=totals.synaptic_ops / n,
        macs_per_sample=totals.macs / n,
        energy_joules_per_sample=totals.joules / n,
        exits=totals.exits,
        decision_timestep_counts=totals.timestep_counts,
        timesteps=network.timesteps,
        per_sample=totals.per_sample,
    )


def _accumulate(
    totals: _Totals,
    network: SpikingNetwork,
    output: NetworkOutput,
    decision: Decision,
    labels: torch.Tensor,
    early_exit: bool = True,
) -> None:
    """Add one batch's decisions and activity to ``totals``."""
    timesteps = output.current.shape[0]
    steps = torch.arange(1, timesteps + 1, device=labels.device).view(-1, 1)
    last = (
        decision.decision_timestep if early_exit else torch.full_like(decision.decision_timestep, timesteps)
    )
    ran = (steps <= last.view(1, -1)).to(output.current.dtype)  # [T, B]
    layer_spikes = (output.layer_spikes * ran.unsqueeze(-1)).sum(dim=0).double()  # [B, L]
    output_spikes = (output.spikes.sum(dim=2) * ran).sum(dim=0).double()  # [B]
    synaptic_inputs = (output.synaptic_inputs * ran.unsqueeze(-1)).sum(dim=0).double()  # [B, S]
    spikes_per_sample = layer_spikes.sum(dim=1) + output_spikes
    reasons = decision.exit_reasons() if network.spec.coding == "latency" else [TIME_MEAN] * len(labels)
    # (12) of the currents at the timestep each sample decided at
    at_decision = (decision.decision_timestep - 1).clamp(max=timesteps - 1).view(1, -1)
    confidences = confidence(output.current.float()).gather(0, at_decision).view(-1)
    synaptic_layers = [SynapticLayer.model_validate(layer) for layer in network.layout["synaptic_layers"]]
    for b, reason in enumerate(reasons):
        counts = operation_counts(synaptic_layers, synaptic_inputs[b].tolist(), int(last[b]))
        totals.synaptic_ops += counts.synaptic_ops
        totals.macs += counts.macs
        joules = counts.joules()
        totals.joules += joules
        totals.exits[reason] = totals.exits.get(reason, 0) + 1
        step = int(decision.decision_timestep[b])
        totals.timestep_counts[step] += 1
        record = totals.per_sample
        record["label"].append(int(labels[b]))
        record["class_index"].append(int(decision.class_index[b]))
        record["decision_timestep"].append(step)
        record["exit_reason"].append(reason)
        record["spikes"].append(float(spikes_per_sample[b]))
        record["joules"].append(joules)
        record["confidence"].append(float(confidences[b]))
    totals.layer_spikes += layer_spikes.sum(dim=0).cpu()
    totals.spikes += float(spikes_per_sample.sum())
    totals.correct += int((decision.class_index == labels).sum())
    totals.samples += len(labels)
    totals.timesteps_run += int(last.sum())
    totals.decision_timesteps += int(decision.decision_timestep.sum())
