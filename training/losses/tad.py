"""Temporal adaptive decision (TAD) loss, eqs (12)-(14).

    z[t]      = softmax(O[t])
    lambda[t] = 1 - H(z[t]) / log C                          (12)  confidence
    Lambda[t] = softmax_t(lambda[t] / temperature)           (13)
    L_TAD     = sum_t Lambda[t] * CE(O[t], y)                (14)

Weights are computed per sample (each sample has its own confidence trajectory) and the loss
is averaged over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def confidence(current: torch.Tensor) -> torch.Tensor:
    """lambda of (12): one minus the normalised entropy of softmax(O[t]), per timestep.

    Args:
        current: the output layer's pre-synaptic currents O [T, B, K].

    Returns:
        lambda [T, B] in [0, 1]: 1 when one class takes all the probability, 0 when all share it.
    """
    num_classes = current.shape[-1]
    log_probs = F.log_softmax(current, dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    return 1.0 - entropy / math.log(num_classes)


def tad_weights(current: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Lambda of (13): each timestep's weight, from its confidence (12).

    Args:
        current: the output layer's pre-synaptic currents O [T, B, K].
        temperature: tau of (13); lower concentrates the weight on the most confident timestep.

    Returns:
        Lambda [T, B], summing to 1 over T for each sample.
    """
    return torch.softmax(confidence(current) / temperature, dim=0)


def tad_loss(
    current: torch.Tensor, target: torch.Tensor, temperature: float = 2.0, detach_weights: bool = False
) -> torch.Tensor:
    """L_TAD of (14), averaged over the batch.

    Args:
        current: the output layer's pre-synaptic currents O [T, B, K].
        target: the class indices y [B].
        temperature: tau of (13).
        detach_weights: treat the weights Lambda as constants; the paper leaves them in the
            graph (an option for experiments, off by default).

    Returns:
        The scalar loss.
    """
    timesteps, batch, num_classes = current.shape
    weights = tad_weights(current, temperature)
    if detach_weights:
        weights = weights.detach()
    per_step = F.cross_entropy(
        current.reshape(timesteps * batch, num_classes), target.repeat(timesteps), reduction="none"
    ).view(timesteps, batch)
    return (weights * per_step).sum(dim=0).mean()
