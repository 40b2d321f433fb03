"""Training objectives on the output layer's pre-synaptic currents O [T, B, K]."""

from training.losses.mean_output import mean_output_cross_entropy
from training.losses.tad import tad_loss, tad_weights
from training.losses.tet import tet_loss

LOSSES = {
    "tad": tad_loss,
    "mean_ce": mean_output_cross_entropy,
    "tet": tet_loss,
}

__all__ = ["LOSSES", "mean_output_cross_entropy", "tad_loss", "tad_weights", "tet_loss"]
