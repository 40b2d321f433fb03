"""The explicit context of one pass through a network.

A pass runs ``timesteps`` consecutive timesteps for a batch, folded into the batch dimension
([timesteps * batch, ...]) so that stateless layers (conv, batchnorm, pooling) see one big
batch; spiking layers unfold the time axis, start from the given states and hand back their
final states. Training uses one pass of T timesteps from rest; serving uses passes of one
timestep, each starting from the state the previous one returned. Both go through the same
layer code, which is why step-by-step inference equals the multi-step run.

A ``Run`` is created per call and discarded afterwards: two models (or two requests) never
share one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from training.neurons.lif import LIFParameters, LIFState


@dataclass
class Run:
    timesteps: int
    batch_size: int
    neuron: LIFParameters
    # One serving step: per-sample results come as [batch] without a time axis, so that an
    # exported step graph has no axis to add and take off again around every output.
    stepping: bool = False
    states_in: tuple[LIFState, ...] | None = None  # None: every neuron starts at rest
    states_out: dict[int, LIFState] = field(default_factory=dict)
    layer_spikes: dict[int, torch.Tensor] = field(default_factory=dict)  # [timesteps, batch]
    synaptic_inputs: dict[int, torch.Tensor] = field(default_factory=dict)  # [timesteps, batch]
    # Shapes seen by each layer on a probe pass; filled only when probing an architecture.
    probe: dict[str, dict[int, tuple[int, ...]]] | None = None
    # Whole spike maps per spiking layer [timesteps, batch, ...], kept only when asked for
    # (temporal similarity analysis, eq. (18)).
    record: dict[int, torch.Tensor] | None = None

    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """[timesteps * batch, ...] -> [timesteps, batch, ...]"""
        return x.reshape(self.timesteps, self.batch_size, *x.shape[1:])

    @staticmethod
    def fold(x: torch.Tensor) -> torch.Tensor:
        """[timesteps, batch, ...] -> [timesteps * batch, ...]"""
        return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    def per_sample_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of a folded activity tensor per timestep and sample: [timesteps, batch] ([batch,
        1] when stepping, ready to be joined with ``per_sample_table``)."""
        if self.stepping:
            return x.flatten(1).sum(dim=1, keepdim=True)
        return self.unfold(x).flatten(2).sum(dim=2)

    def per_sample_table(self, sums: list[torch.Tensor]) -> torch.Tensor:
        """``per_sample_sum`` results side by side: [timesteps, batch, n] ([batch, n] when stepping)."""
        return torch.cat(sums, dim=-1) if self.stepping else torch.stack(sums, dim=-1)

    def state_for(self, index: int) -> LIFState | None:
        """The state spiking layer ``index`` starts from; None: at rest."""
        return None if self.states_in is None else self.states_in[index]
