"""Layers that take the explicit ``Run`` alongside their input.

Only two kinds of layer touch the run: spiking activations (state in, state out, spike counts)
and synapses (count the activity that drives them, for the energy estimate of (16)).
Everything else is an ordinary stateless module applied to the folded batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from training.network.run import Run
from training.neurons.lif import lif_sequence, lif_step


class Layer(nn.Module):
    """A module whose forward takes (x, run)."""

    if TYPE_CHECKING:
        # ``nn.Module.__call__`` runs ``forward``; this states its types for every layer.
        def __call__(self, x: torch.Tensor, run: Run) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:  # pragma: no cover - interface
        """Apply the layer.

        Args:
            x: the folded input [k * B, ...] of a pass of k timesteps ([B, ...] when stepping).
            run: the pass's context.

        Returns:
            The folded output.
        """
        raise NotImplementedError


class Stateless(Layer):
    """An ordinary module (batchnorm, pooling, flatten) on the folded batch.

    Args:
        module: the module, which sees the timesteps as more samples.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:
        out: torch.Tensor = self.module(x)
        return out


class Synapse(Layer):
    """A weighted layer (conv or linear). Records the summed activity of its input per step.

    ``index`` is assigned by the network; it orders the energy table.

    Args:
        module: the weights.
    """

    def __init__(self, module: nn.Conv2d | nn.Linear) -> None:
        super().__init__()
        self.module = module
        self.index = -1

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:
        run.synaptic_inputs[self.index] = run.per_sample_sum(x.detach())
        out: torch.Tensor = self.module(x)
        if run.probe is not None:
            run.probe.setdefault("synapse_in", {})[self.index] = tuple(x.shape[1:])
            run.probe.setdefault("synapse_out", {})[self.index] = tuple(out.shape[1:])
        return out

    def flops(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
        """Multiply-accumulates of one dense pass (paper, Sec. IV-B): FLOPs_l of (15)-(16).

        Args:
            input_shape: one sample's input shape, without the batch.
            output_shape: one sample's output shape, without the batch.

        Returns:
            The MACs per sample and timestep.
        """
        if isinstance(self.module, nn.Linear):
            return self.module.in_features * self.module.out_features
        conv = self.module
        c_out, h_out, w_out = output_shape
        k_h, k_w = conv.kernel_size
        return h_out * w_out * (conv.in_channels // conv.groups) * c_out * k_h * k_w


class SpikingActivation(Layer):
    """LIF neurons (2)-(4) after a synaptic layer; may fire many times within T."""

    def __init__(self) -> None:
        super().__init__()
        self.index = -1

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:
        if run.timesteps == 1:
            # One timestep (every serving step): the folded batch is that step, so it needs no
            # time axis to unfold, iterate and stack (each a node of an exported graph).
            out = lif_step(x, run.state_for(self.index), run.neuron)
            spikes, state = out.spikes, out.state
        else:
            unfolded, _, state = lif_sequence(run.unfold(x), run.neuron, run.state_for(self.index))
            spikes = run.fold(unfolded)
        run.states_out[self.index] = state
        run.layer_spikes[self.index] = run.per_sample_sum(spikes.detach())
        if run.record is not None:
            run.record[self.index] = run.unfold(spikes.detach())
        if run.probe is not None:
            run.probe.setdefault("spiking", {})[self.index] = tuple(x.shape[1:])
        return spikes


class ReLUActivation(Layer):
    """The ANN counterpart of ``SpikingActivation``: same place in the graph, no state."""

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:
        return torch.relu(x)


class Chain(Layer):
    """Layers applied in order, each given the same run.

    Args:
        layers: the layers, in order.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, run: Run) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, run)
        return x


ActivationFactory = Callable[[], Layer]


def conv_bn_act(
    in_channels: int, out_channels: int, activation: ActivationFactory, stride: int = 1, kernel_size: int = 3
) -> Chain:
    """conv -> batchnorm -> activation, the building block of every architecture here.

    Args:
        in_channels: the input's channels.
        out_channels: the convolution's channels.
        activation: makes the activation (LIF for SNNs, ReLU for the ANN).
        stride: the convolution's stride.
        kernel_size: the convolution's square kernel, padded to keep the size at stride 1.

    Returns:
        The three layers as one.
    """
    return Chain(
        Synapse(nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)),
        Stateless(nn.BatchNorm2d(out_channels)),
        activation(),
    )
