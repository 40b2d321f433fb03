"""First-spike decoding with the membrane-potential tie-break, eqs (10)-(11), and the
time-mean decoding of rate-coded networks.

    decision timestep = min{ t : sum_k S_k[t] > 0 }          (10)
    class = argmax_k U_k[decision timestep]                  (11)  (membrane before reset)

With no output spike by T the class is argmax_k U_k[T] and the exit reason ``no_spike``.
The service applies the same rule one timestep at a time (``service.inference.early_exit``); the tests
check that both agree on every test sample.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from training.contract.decisions import FIRST_SPIKE, NO_SPIKE


class Decision(NamedTuple):
    """The decisions of a batch.

    Attributes:
        class_index: [B] int64, the class of (11).
        decision_timestep: [B] int64, 1-based: the timestep of (10), or T.
        fired: [B] bool, whether an output spike happened by the decision timestep.
    """

    class_index: torch.Tensor
    decision_timestep: torch.Tensor
    fired: torch.Tensor

    def exit_reasons(self) -> list[str]:
        """Each sample's exit reason: ``first_spike`` where an output fired, else ``no_spike``."""
        return [FIRST_SPIKE if fired else NO_SPIKE for fired in self.fired.tolist()]


def first_spike_decision(spikes: torch.Tensor, membrane: torch.Tensor) -> Decision:
    """Decide by (10)-(11) from a whole run.

    Args:
        spikes: the output spikes S [T, B, K].
        membrane: the output membranes before reset U [T, B, K].

    Returns:
        Per sample, the class at the first timestep with an output spike, or at T where none
        fired.
    """
    timesteps = spikes.shape[0]
    any_spike = spikes.detach().sum(dim=2) > 0  # [T, B]
    fired = any_spike.any(dim=0)
    # argmax over a boolean time axis returns the first True; samples that never fire use T.
    first = torch.where(
        fired, any_spike.to(torch.int8).argmax(dim=0), torch.full_like(fired, timesteps - 1, dtype=torch.long)
    )
    at_decision = membrane.detach().gather(0, first.view(1, -1, 1).expand(1, *membrane.shape[1:]))[0]
    return Decision(at_decision.argmax(dim=1), first + 1, fired)


def time_mean_decision(current: torch.Tensor) -> Decision:
    """Rate-coded (and ANN) decoding: argmax of the time-mean output, always after all T steps.

    Args:
        current: the output layer's pre-synaptic currents O [T, B, K].

    Returns:
        Per sample, the class; the decision timestep is T and nothing counts as fired.
    """
    timesteps, batch = current.shape[:2]
    return Decision(
        current.detach().mean(dim=0).argmax(dim=1),
        torch.full((batch,), timesteps, dtype=torch.long, device=current.device),
        torch.zeros(batch, dtype=torch.bool, device=current.device),
    )
