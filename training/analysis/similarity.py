"""Temporal similarity of spike representations, eq. (18) (paper, Sec. IV-D, Fig. 3).

    M[i, j] = (1/N) sum_k cos(v_k[t_i], v_k[t_j])

v_k[t] is sample k's flattened spike map of one layer at timestep t. A timestep at which a sample
emits no spike in that layer has no direction; its cosine with anything is counted as 0 (the
representations share nothing), except with itself on the diagonal, which is 1 by definition.
"""

from __future__ import annotations

import numpy as np
import torch


class TemporalSimilarity:
    """Accumulates M over batches of spike maps [T, B, ...].

    Args:
        timesteps: T, the side of M.
    """

    def __init__(self, timesteps: int) -> None:
        self.total = np.zeros((timesteps, timesteps))
        self.samples = 0

    def add(self, spike_maps: torch.Tensor) -> None:
        """Add one batch's cosines to the running sum.

        Args:
            spike_maps: One layer's spikes [T, B, ...].
        """
        vectors = spike_maps.flatten(2).double()  # [T, B, D]
        norms = vectors.norm(dim=2)  # [T, B]
        dots = torch.einsum("tbd,sbd->tsb", vectors, vectors)
        denominator = norms[:, None, :] * norms[None, :, :]
        cosine = torch.where(denominator > 0, dots / denominator.clamp_min(1e-12), torch.zeros_like(dots))
        timesteps = cosine.shape[0]
        cosine[range(timesteps), range(timesteps)] = 1.0
        self.total += cosine.sum(dim=2).numpy()
        self.samples += spike_maps.shape[1]

    def matrix(self) -> np.ndarray:
        """M over every sample added so far (zeros before the first).

        Returns:
            [T, T], the mean cosine of each pair of timesteps.
        """
        return self.total / max(self.samples, 1)
