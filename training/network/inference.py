"""A stored network for inference, numpy at its boundary: what the service's torch runtime steps.

Inputs come in and outputs go out as numpy arrays, so that the caller needs no torch of its own;
the features and the state that a row carries from one timestep to the next stay tensors, opaque
to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from training.contract.manifest import Manifest
from training.network.network import NetworkState, SpikingNetwork, StepOutput
from training.neurons.lif import LIFState
from training.store.load import network_from_manifest


class StepArrays(NamedTuple):
    """One timestep's outputs as numpy, with the state for the next.

    Attributes:
        current: [B, K] the output layer's pre-synaptic current.
        membrane: [B, K] the output membrane before reset.
        spikes: [B, K] the output spikes.
        layer_spikes: [B, L] spikes per spiking layer.
        synaptic_inputs: [B, S] summed input activity per synaptic layer.
        state: the state for the next timestep.
    """

    current: np.ndarray
    membrane: np.ndarray
    spikes: np.ndarray
    layer_spikes: np.ndarray
    synaptic_inputs: np.ndarray
    state: NetworkState


class InferenceNetwork:
    """A ``SpikingNetwork`` in inference mode, stepped one timestep at a time on numpy inputs.

    Args:
        network: the network, put in eval mode.
    """

    def __init__(self, network: SpikingNetwork) -> None:
        self.network = network.eval()
        self.timesteps = network.timesteps

    @classmethod
    def from_store(cls, version_dir: Path, manifest: Manifest, threads: int = 1) -> InferenceNetwork:
        """The network of a verified model-store version.

        Args:
            version_dir: the version's folder.
            manifest: its manifest, already read and verified.
            threads: torch's intra-op threads.

        Returns:
            The network, ready to step.
        """
        # A process-wide torch setting: every torch runtime in the process asks for the same
        # number (from the service settings), so they never disagree.
        torch.set_num_threads(threads)
        return cls(network_from_manifest(version_dir, manifest))

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        """The once-per-input features (F of eq (5) for the LE module).

        Args:
            images: float32 [B, C, H, W], normalised.

        Returns:
            The features that ``step`` reads.
        """
        return self.network.features(torch.from_numpy(images))

    def initial_state(self, batch_size: int) -> NetworkState:
        """Every neuron at rest.

        Args:
            batch_size: the rows.

        Returns:
            The state that timestep 1 starts from.
        """
        return self.network.initial_state(batch_size)

    @torch.inference_mode()
    def first_step(self, images: np.ndarray) -> tuple[torch.Tensor, StepArrays]:
        """The features of ``images`` and timestep 1 from rest, in one pass.

        Args:
            images: float32 [B, C, H, W], normalised.

        Returns:
            The features and timestep 1's outputs.
        """
        features, out = self.network.first_step(torch.from_numpy(images))
        return features, _arrays(out)

    @torch.inference_mode()
    def step(self, features: torch.Tensor, timesteps: np.ndarray, state: NetworkState) -> StepArrays:
        """One timestep per row.

        Args:
            features: the rows' features (``encode``).
            timesteps: [B] each row's own 1-based timestep.
            state: the rows' state after their previous timestep.

        Returns:
            The outputs and the new state.
        """
        return _arrays(self.network.step(features, torch.from_numpy(timesteps.astype(np.float32)), state))

    def select(
        self, features: torch.Tensor, state: NetworkState, rows: np.ndarray
    ) -> tuple[torch.Tensor, NetworkState]:
        """Only some rows of a batch.

        Args:
            features: the batch's features.
            state: the batch's state.
            rows: the indices of the rows to keep, in the order wanted.

        Returns:
            The features and state of those rows.
        """
        index = torch.from_numpy(rows)
        hidden = tuple(LIFState(layer.membrane[index]) for layer in state.hidden)
        return features[index], NetworkState(hidden, LIFState(state.output.membrane[index]))

    def merge(self, parts: Sequence[tuple[torch.Tensor, NetworkState]]) -> tuple[torch.Tensor, NetworkState]:
        """Batches stacked row-wise.

        Args:
            parts: (features, state) of each batch, in order.

        Returns:
            The features and state of all their rows.
        """
        states: list[NetworkState] = [state for _, state in parts]
        hidden = tuple(
            LIFState(torch.cat([state.hidden[layer].membrane for state in states]))
            for layer in range(len(states[0].hidden))
        )
        output = LIFState(torch.cat([state.output.membrane for state in states]))
        return torch.cat([features for features, _ in parts]), NetworkState(hidden, output)


def _arrays(out: StepOutput) -> StepArrays:
    return StepArrays(
        out.current.numpy(),
        out.membrane.numpy(),
        out.spikes.numpy(),
        out.layer_spikes.numpy(),
        out.synaptic_inputs.numpy(),
        out.state,
    )
