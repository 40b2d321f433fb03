"""The paper's energy tables from per-model summaries.

Table II: energy per inference by (15)-(16), and its ratio to the same-architecture ANN.
Table III: (17), E = E_static * T' + E_dynamic * S', with timesteps T' and spikes S' normalised
by a baseline model's (the rate-coded SNN's, or the same model run for all T without early exit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from training.contract.energy import NEUROMORPHIC_COEFFICIENTS, neuromorphic_energy

Row = dict[str, str | float | None]


@dataclass(frozen=True)
class ModelSummary:
    """What the tables need to know about one model.

    Attributes:
        name: The row's label.
        accuracy: Test accuracy; None when unknown (an untrained ANN counted for energy only).
        mean_timesteps: Timesteps actually run per sample (the paper's inference time).
        spikes_per_sample: Spikes per sample over those timesteps.
        energy_joules: Energy per inference by (15)-(16).
        firing_rate: Spikes per neuron per timestep run; None for an ANN.
    """

    name: str
    accuracy: float | None
    mean_timesteps: float
    spikes_per_sample: float
    energy_joules: float
    firing_rate: float | None = None

    def to_dict(self) -> dict[str, str | float | None]:
        """The fields by name.

        Returns:
            One entry per field.
        """
        return asdict(self)


def energy_table(models: list[ModelSummary], ann: ModelSummary) -> list[Row]:
    """Table II rows: energy, share of the ANN's energy, accuracy difference to the ANN.

    Args:
        models: The models compared with the ANN.
        ann: The same-architecture ANN.

    Returns:
        One row per model, the ANN's first: model, energy_joules, ratio_to_ann, delta_accuracy
        (None where an accuracy is unknown).
    """
    rows: list[Row] = []
    for model in [ann, *models]:
        delta = None if model.accuracy is None or ann.accuracy is None else model.accuracy - ann.accuracy
        rows.append(
            {
                "model": model.name,
                "energy_joules": model.energy_joules,
                "ratio_to_ann": model.energy_joules / ann.energy_joules,
                "delta_accuracy": delta,
            }
        )
    return rows


def normalized_energy_table(models: list[ModelSummary], baseline: ModelSummary) -> list[Row]:
    """Table III rows: (17) with timesteps and spikes normalised by ``baseline``'s.

    Args:
        models: The models to compare.
        baseline: The model whose timesteps and spikes count as 1.

    Returns:
        One row per model, the baseline's first: model, timesteps, spikes, accuracy, and the
        normalised energy on each platform of ``NEUROMORPHIC_COEFFICIENTS``.
    """
    rows: list[Row] = []
    for model in [baseline, *models]:
        timesteps = model.mean_timesteps / baseline.mean_timesteps
        spikes = model.spikes_per_sample / baseline.spikes_per_sample
        row: Row = {
            "model": model.name,
            "timesteps": model.mean_timesteps,
            "spikes": model.spikes_per_sample,
            "accuracy": model.accuracy,
        }
        for platform, (static, dynamic) in NEUROMORPHIC_COEFFICIENTS.items():
            row[platform] = neuromorphic_energy(timesteps, spikes, static, dynamic)
        rows.append(row)
    return rows
