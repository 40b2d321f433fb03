"""The torch runtime: the training package's own network definition, in inference mode."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from service.inference.runtimes.base import StepResult
from service.inference.runtimes.heap import keep_freed_memory
from training.network.network import NetworkState, SpikingNetwork, StepOutput
from training.neurons.lif import LIFState
from training.store.load import network_from_manifest


class TorchRuntime:
    name = "torch"

    # Torch computes the state of a step with its outputs, so leaving it out saves nothing.
    decides_first = False

    def __init__(self, network: SpikingNetwork) -> None:
        keep_freed_memory()
        self.network = network.eval()
        self.timesteps = network.timesteps

    @classmethod
    def load(cls, version_dir: Path, manifest: dict, threads: int = 1) -> "TorchRuntime":
        # Intra-op threads are a process-wide torch setting; every torch runtime in the process
        # asks for the same number (from the service settings), so they never disagree.
        torch.set_num_threads(threads)
        return cls(network_from_manifest(version_dir, manifest))

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        return self.network.features(torch.from_numpy(images))

    def initial_state(self, batch_size: int) -> NetworkState:
        return self.network.initial_state(batch_size)

    @torch.inference_mode()
    def first_step(self, images: np.ndarray) -> tuple[torch.Tensor, StepResult]:
        features, out = self.network.first_step(torch.from_numpy(images))
        return features, _step_result(out)

    def first_decision(self, images: np.ndarray) -> StepResult:
        return replace(self.first_step(images)[1], state=None)

    @torch.inference_mode()
    def step(self, encoded: torch.Tensor, timesteps: np.ndarray, state: NetworkState) -> StepResult:
        out = self.network.step(encoded, torch.from_numpy(timesteps.astype(np.float32)), state)
        return _step_result(out)

    def select(self, encoded: torch.Tensor, state: NetworkState, rows: np.ndarray):
        index = torch.from_numpy(rows)
        return encoded[index], _map_state(state, lambda m: m[index])

    def merge(self, parts):
        encoded = torch.cat([e for e, _ in parts])
        hidden = tuple(LIFState(torch.cat([s.hidden[i].membrane for _, s in parts]))
                       for i in range(len(parts[0][1].hidden)))
        return encoded, NetworkState(hidden, LIFState(torch.cat([s.output.membrane for _, s in parts])))


def _map_state(state: NetworkState, fn) -> NetworkState:
    return NetworkState(tuple(LIFState(fn(s.membrane)) for s in state.hidden), LIFState(fn(state.output.membrane)))


def _step_result(out: StepOutput) -> StepResult:
    return StepResult(*(t.numpy() for t in out[:5]), out.state)
