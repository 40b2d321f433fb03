"""Energy of one request from the manifest's layer table and the activity actually recorded."""

from __future__ import annotations

from dataclasses import dataclass

from service.inference.early_exit import Outcome
from training.contract.energy import operation_counts
from training.contract.manifest import Manifest


@dataclass(frozen=True)
class Energy:
    """One request's operations and their energy, eq (16).

    Attributes:
        synaptic_ops: accumulate operations driven by spikes.
        macs: multiply-accumulates of the analog first layer.
        joules: E_MAC * macs + E_AC * synaptic_ops.
    """

    synaptic_ops: float
    macs: float
    joules: float


def request_energy(manifest: Manifest, outcome: Outcome) -> Energy:
    """The operations one decision took and their energy, by the manifest's constants.

    Args:
        manifest: the version that decided.
        outcome: the decision, with the synaptic activity of the timesteps it ran.

    Returns:
        Synaptic operations, MACs and joules.
    """
    counts = operation_counts(manifest.layers.synaptic, outcome.synaptic_inputs, outcome.timesteps_run)
    constants = manifest.energy
    return Energy(
        synaptic_ops=counts.synaptic_ops,
        macs=counts.macs,
        joules=counts.joules(constants.e_mac_joules, constants.e_ac_joules),
    )
