"""The torch runtime: the training package's own network definition, in inference mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.runtimes.base import StepResult
from training.store.load import load_network


class TorchRuntime:
    name = "torch"

    def __init__(self, version_dir: Path, threads: int = 1) -> None:
        # Intra-op threads are a process-wide torch setting; every torch runtime in the process
        # asks for the same number (from the service settings), so they never disagree.
        torch.set_num_threads(threads)
        self.network, self.manifest = load_network(version_dir)
        self.timesteps = self.network.timesteps

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        return self.network.features(torch.from_numpy(images))

    def initial_state(self, batch_size: int) -> Any:
        return self.network.initial_state(batch_size)

    @torch.inference_mode()
    def step(self, encoded: torch.Tensor, timestep: int, state: Any) -> StepResult:
        out = self.network.step(encoded, timestep, state)
        return StepResult(out.membrane.numpy(), out.spikes.numpy(), out.layer_spikes.numpy(),
                          out.synaptic_inputs.numpy(), out.state)
