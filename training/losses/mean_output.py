"""Baseline loss of the TAD ablation (Sec. IV-E 2): CE of the time-mean output,
L = CE((1/T) sum_t O[t], y)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mean_output_cross_entropy(current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE((1/T) sum_t O[t], y): cross-entropy of the time-mean output current.

    Args:
        current: the output layer's pre-synaptic currents O [T, B, K].
        target: the class indices y [B].

    Returns:
        The loss, averaged over the batch.
    """
    return F.cross_entropy(current.mean(dim=0), target)
