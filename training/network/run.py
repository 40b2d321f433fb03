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
    """The context of one pass: its shape, the states in and out, and what the layers count.

    Attributes:
        timesteps: k, the consecutive timesteps of the pass.
        batch_size: B.
        neuron: the hidden layers' LIF parameters.
        stepping: a pass of one serving step: per-sample results come without a time axis.
        states_in: one state per spiking layer to start from; None: at rest.
        states_out: each spiking layer's state after the pass, by index.
        layer_spikes: each spiking layer's spikes per timestep and sample, by index.
        synaptic_inputs: each synaptic layer's summed input per timestep and sample, by index.
        probe: the shapes each layer sees, by kind and index, on a probe pass only.
        record: whole spike maps by spiking layer, only when asked for.
    """

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
        """[timesteps * batch, ...] -> [timesteps, batch, ...].

        Args:
            x: a folded tensor of this pass.

        Returns:
            The same values with the time axis first.
        """
        return x.reshape(self.timesteps, self.batch_size, *x.shape[1:])

    @staticmethod
    def fold(x: torch.Tensor) -> torch.Tensor:
        """[timesteps, batch, ...] -> [timesteps * batch, ...].

        Args:
            x: a tensor with a time axis first.

        Returns:
            The same values, the timesteps folded into the batch.
        """
        return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    def per_sample_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of a folded activity tensor per timestep and sample.

        Args:
            x: a folded tensor of this pass.

        Returns:
            [timesteps, batch] ([batch, 1] when stepping, ready to be joined with
            ``per_sample_table``).
        """
        if self.stepping:
            return x.flatten(1).sum(dim=1, keepdim=True)
        return self.unfold(x).flatten(2).sum(dim=2)

    def per_sample_table(self, sums: list[torch.Tensor]) -> torch.Tensor:
        """``per_sample_sum`` results side by side.

        Args:
            sums: n results of ``per_sample_sum``.

        Returns:
            [timesteps, batch, n] ([batch, n] when stepping).
        """
        return torch.cat(sums, dim=-1) if self.stepping else torch.stack(sums, dim=-1)

    def state_for(self, index: int) -> LIFState | None:
        """The state a spiking layer starts from.

        Args:
            index: the spiking layer's index in the network.

        Returns:
            Its state; None: at rest.
        """
        return None if self.states_in is None else self.states_in[index]
