"""Energy estimates of the paper's Sec. IV-B. Pure Python over the manifest's layer table, so
the service (including its torch-free onnx runtime) uses the very same accounting.

    E_ANN = sum_l FLOPs_l * E_MAC                                   (15)
    E_SNN = E_MAC * FLOPs_1 + E_AC * sum_{l>=2} SOPs_l              (16)
    SOPs_l = alpha_{l-1} * FLOPs_l
    E     = E_static * timesteps + E_dynamic * spikes               (17)  normalised units

alpha_{l-1} is the activity entering layer l (its summed input per timestep over the number of
input neurons), summed over the timesteps a sample actually ran, so early exit saves energy.
A layer whose input is analog and static (the encoder's Phi) counts once, as MACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from training.contract.manifest import SynapticLayer

E_MAC_JOULES = 4.6e-12  # 32-bit float multiply-accumulate, 45 nm CMOS
E_AC_JOULES = 0.9e-12  # 32-bit float accumulate, 45 nm CMOS
NEUROMORPHIC_COEFFICIENTS = {"truenorth": (0.6, 0.4), "spinnaker": (0.36, 0.64)}  # (static, dynamic)


@dataclass(frozen=True)
class OperationCounts:
    """The operations of one sample's inference.

    Attributes:
        macs: multiply-accumulates (the analog first layer, and every layer of an ANN).
        synaptic_ops: synaptic operations (accumulates driven by spikes), SOPs of (16).
    """

    macs: float
    synaptic_ops: float

    def joules(self, e_mac: float = E_MAC_JOULES, e_ac: float = E_AC_JOULES) -> float:
        """Energy in joules by (16); with no synaptic ops it is (15).

        Args:
            e_mac: joules per multiply-accumulate.
            e_ac: joules per accumulate.

        Returns:
            ``e_mac * macs + e_ac * synaptic_ops``.
        """
        return e_mac * self.macs + e_ac * self.synaptic_ops


def operation_counts(
    synaptic_layers: Sequence[SynapticLayer], synaptic_inputs: Sequence[float], timesteps_run: int
) -> OperationCounts:
    """MACs and SOPs of one sample.

    Args:
        synaptic_layers: the manifest's table (``Manifest.layers.synaptic``).
        synaptic_inputs: for each non-static layer in order, its input activity summed over the
            timesteps the sample ran.
        timesteps_run: how many timesteps the sample ran.

    Returns:
        The sample's MACs and synaptic operations.

    Raises:
        ValueError: ``synaptic_inputs`` does not have one value per non-static layer.
    """
    dynamic = [layer for layer in synaptic_layers if not layer.static]
    if len(dynamic) != len(synaptic_inputs):
        raise ValueError(f"{len(synaptic_inputs)} activity values for {len(dynamic)} synaptic layers")
    macs = sum(layer.flops for layer in synaptic_layers if layer.static)
    synaptic_ops = 0.0
    for layer, activity in zip(dynamic, synaptic_inputs):
        if layer.kind == "mac":
            macs += layer.flops * timesteps_run
        else:
            synaptic_ops += float(activity) / layer.input_neurons * layer.flops
    return OperationCounts(macs, synaptic_ops)


def ann_operation_counts(synaptic_layers: Sequence[SynapticLayer]) -> OperationCounts:
    """Every layer of the same-architecture ANN as MACs, one pass: the input of (15).

    Args:
        synaptic_layers: the manifest's table (``Manifest.layers.synaptic``).

    Returns:
        The ANN's MACs, and no synaptic operations.
    """
    return OperationCounts(sum(layer.flops for layer in synaptic_layers), 0.0)


def neuromorphic_energy(timesteps: float, spikes: float, static: float, dynamic: float) -> float:
    """Neuromorphic-hardware energy by (17), in normalised units.

    Args:
        timesteps: the timesteps run, already normalised.
        spikes: the spikes fired, already normalised.
        static: the hardware's static coefficient (``NEUROMORPHIC_COEFFICIENTS``).
        dynamic: the hardware's dynamic coefficient.

    Returns:
        ``static * timesteps + dynamic * spikes``.
    """
    return static * timesteps + dynamic * spikes
