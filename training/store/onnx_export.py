"""Single-timestep ONNX graphs of a network, for serving without torch.

Four graphs per model version, all with a dynamic batch dimension:

- ``encoder.onnx``: images [B, C, H, W] -> features [B, ...], the once-per-input part
  (the LE module's F of (5));
- ``step.onnx``: (images, timestep [B], hidden states..., output state) -> (current,
  membrane, spikes, layer_spikes, synaptic_inputs, next hidden states..., next output state);
  it computes the features itself, so a running row carries its input (784 values for
  Fashion-MNIST) instead of its features (50,176), and timestep 1 writes no features out;
- ``first_step.onnx``: images -> the step's outputs for timestep 1 from rest, with no state to
  pass in: what early exit runs first;
- ``first_decision.onnx``: images -> the five outputs of timestep 1 only, without features or
  states: all that a row decided at timestep 1 needs, for a model that decides most inputs there.

``timestep`` holds each row's own 1-based timestep (float32), so rows that joined a batch at
different times step together. The states are the membranes of ``NetworkState`` in order.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from training.network.network import NetworkState, SpikingNetwork, StepOutput
from training.neurons.lif import LIFState
from training.store.onnx_counts import counts_by_pooling
from training.store.onnx_spikes import heaviside_as_hardsigmoid

ENCODER_FILE = "encoder.onnx"
STEP_FILE = "step.onnx"
FIRST_STEP_FILE = "first_step.onnx"
FIRST_DECISION_FILE = "first_decision.onnx"
STEP_OUTPUTS = ("current", "membrane", "spikes", "layer_spikes", "synaptic_inputs")


class _EncoderGraph(nn.Module):
    def __init__(self, network: SpikingNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.features(images)


class _StepGraph(nn.Module):
    def __init__(self, network: SpikingNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(
        self, images: torch.Tensor, timestep: torch.Tensor, *membranes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        state = NetworkState(tuple(LIFState(m) for m in membranes[:-1]), LIFState(membranes[-1]))
        return _flat(self.network.step(self.network.features(images), timestep, state))


class _FirstStepGraph(nn.Module):
    """Timestep 1 from the images: outputs and states; or, ``decision_only``, the five outputs
    alone."""

    def __init__(self, network: SpikingNetwork, decision_only: bool = False) -> None:
        super().__init__()
        self.network, self.decision_only = network, decision_only

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, out = self.network.first_step(images)
        return tuple(out[:5]) if self.decision_only else _flat(out)


def _flat(out: StepOutput) -> tuple[torch.Tensor, ...]:
    """A step's outputs as the graphs return them: the five outputs, then the membranes."""
    return (*out[:5], *(s.membrane for s in out.state.hidden), out.state.output.membrane)


def export_onnx(network: SpikingNetwork, directory: Path, opset: int = 18) -> dict[str, Any]:
    """Write the four single-timestep graphs of ``network`` into ``directory``.

    Args:
        network: the network, put in eval mode.
        directory: the version's staging folder.
        opset: the ONNX opset.

    Returns:
        The manifest's ``onnx`` section: the opset, and each graph's file, inputs and outputs.
    """
    network = network.eval()
    batch = 2
    images = torch.zeros((batch, *network.spec.input_shape))
    state = network.initial_state(batch)
    membranes = [s.membrane for s in state.hidden] + [state.output.membrane]
    state_names = [f"state_{i}" for i in range(len(state.hidden))] + ["output_state"]
    step_inputs = ["images", "timestep", *state_names]
    step_outputs = [*STEP_OUTPUTS, *(f"next_{name}" for name in state_names)]
    batch_dim = torch.export.Dim("batch", min=1, max=65536)
    _export(
        _EncoderGraph(network),
        (images,),
        directory / ENCODER_FILE,
        ["images"],
        ["features"],
        {"images": {0: batch_dim}},
        opset,
    )
    _export(
        _StepGraph(network),
        (images, torch.ones(batch), *membranes),
        directory / STEP_FILE,
        step_inputs,
        step_outputs,
        {
            "images": {0: batch_dim},
            "timestep": {0: batch_dim},
            "membranes": tuple({0: batch_dim} for _ in membranes),
        },
        opset,
    )
    _export(
        _FirstStepGraph(network),
        (images,),
        directory / FIRST_STEP_FILE,
        ["images"],
        step_outputs,
        {"images": {0: batch_dim}},
        opset,
    )
    _export(
        _FirstStepGraph(network, decision_only=True),
        (images,),
        directory / FIRST_DECISION_FILE,
        ["images"],
        list(STEP_OUTPUTS),
        {"images": {0: batch_dim}},
        opset,
    )
    return {
        "opset": opset,
        "encoder": {"file": ENCODER_FILE, "inputs": ["images"], "outputs": ["features"]},
        "step": {"file": STEP_FILE, "inputs": step_inputs, "outputs": step_outputs},
        "first_step": {"file": FIRST_STEP_FILE, "inputs": ["images"], "outputs": step_outputs},
        "first_decision": {"file": FIRST_DECISION_FILE, "inputs": ["images"], "outputs": list(STEP_OUTPUTS)},
    }


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic_shapes: dict[str, Any],
    opset: int,
) -> None:
    # The exporter reports progress on stdout and warns about optional torchvision ops; an
    # export that fails still raises.
    quiet = logging.getLogger("torch.onnx")
    previous = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # Graphs for inference: no gradients, so spikes are a plain comparison (``fire``).
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                args,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        assert program is not None  # the dynamo exporter always returns its program
        graph = program.model_proto
        heaviside_as_hardsigmoid(graph)
        counts_by_pooling(graph)
        onnx.save(graph, str(path))
    finally:
        quiet.setLevel(previous)
