"""Temporal efficient training (TET, Deng et al. 2022) for the rate-coded baseline.

    L = (1 - reg_weight) * (1/T) sum_t CE(O[t], y) + reg_weight * (1/T) sum_t MSE(O[t], target)

The second term is TET's regulariser pulling outputs towards a constant ``target``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tet_loss(
    current: torch.Tensor, target: torch.Tensor, reg_weight: float = 1e-3, reg_target: float = 1.0
) -> torch.Tensor:
    """TET's loss: the per-timestep cross-entropy, with its regulariser.

    Args:
        current: the output layer's pre-synaptic currents O [T, B, K].
        target: the class indices y [B].
        reg_weight: the regulariser's share; 0 leaves the cross-entropy alone.
        reg_target: the constant the regulariser pulls every output towards.

    Returns:
        The scalar loss.
    """
    timesteps, batch, num_classes = current.shape
    cross_entropy = F.cross_entropy(current.reshape(timesteps * batch, num_classes), target.repeat(timesteps))
    if reg_weight == 0:
        return cross_entropy
    regulariser = F.mse_loss(current, torch.full_like(current, reg_target))
    return (1 - reg_weight) * cross_entropy + reg_weight * regulariser
