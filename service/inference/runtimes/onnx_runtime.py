"""The onnx runtime: the exported single-timestep graphs on onnxruntime. numpy only, no torch,
so it runs in the slim serving image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.inference.runtimes.base import StepResult, first_step_in_parts
from service.inference.runtimes.first_decision import decision_first_pays, least_costs, share_going_on
from service.inference.runtimes.heap import keep_freed_memory
from training.contract.manifest import Manifest, ModelStoreError, OnnxGraph, OnnxGraphs


class OnnxRuntime:
    """``Runtime`` over a version's ONNX graphs (see ``runtimes.base`` for the contract)."""

    name = "onnx"

    def __init__(self, version_dir: Path, manifest: Manifest, threads: int = 1) -> None:
        """Load the version's graphs into onnxruntime sessions.

        Args:
            version_dir: the verified version's directory in the model store.
            manifest: its manifest, which lists the graphs.
            threads: intra-op threads per session.

        Raises:
            ValueError: the manifest lists no ONNX graphs.
            ModelStoreError: onnxruntime cannot load a graph, or the graphs do not fit together.
        """
        graphs = manifest.onnx
        if graphs is None:
            raise ValueError(
                f"{version_dir}: the model has no ONNX graphs (export it with 'firstspike export --onnx')"
            )
        keep_freed_memory()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle intra-op threads would otherwise spin, taking cores from the event loop and from
        # the other requests' threads between timesteps.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(graph: OnnxGraph) -> ort.InferenceSession:
            path = version_dir / graph.file
            try:
                return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as error:  # noqa: BLE001 - onnxruntime's Fail, InvalidGraph, ...: this file is bad
                raise ModelStoreError(f"{path}: onnxruntime cannot load it ({error})") from None

        # A step graph that computes the features itself takes each row's input, carried between
        # timesteps; one that takes features needs the encoder graph to make them once per input.
        self.step_input = graphs.step.inputs[0]
        self.encoder: ort.InferenceSession | None = (
            session(self._encoder_graph(version_dir, graphs)) if self.step_input == "features" else None
        )
        self.stepper = session(graphs.step)
        # Without a fused first-step graph, timestep 1 runs as encoder and step; without a
        # decision-only graph (which needs the fused one), new rows start with the full step.
        first, decision = graphs.first_step, graphs.first_decision
        self.first_stepper: ort.InferenceSession | None = session(first) if first else None
        self.first_decider: ort.InferenceSession | None = session(decision) if decision and first else None
        self.state_names = list(graphs.step.inputs[2:])
        self.state_shapes = list(manifest.layers.hidden_state_shapes)
        self.num_classes = len(manifest.labels)
        self.timesteps = manifest.timesteps
        self.decides_first = self._decision_first_pays(manifest)

    @staticmethod
    def _encoder_graph(version_dir: Path, graphs: OnnxGraphs) -> OnnxGraph:
        if graphs.encoder is None:
            raise ModelStoreError(
                f"{version_dir}: the step graph takes features but the manifest has no encoder graph"
            )
        return graphs.encoder

    def _decision_first_pays(self, manifest: Manifest) -> bool:
        """Whether new rows should start with the decision-only graph (``first_decision``)."""
        going_on = share_going_on(manifest)
        decider, full_stepper = self.first_decider, self.first_stepper
        # the decision-only graph is loaded only beside the fused one
        if decider is None or full_stepper is None or going_on is None or going_on >= 1:
            return False
        if going_on == 0:  # the decision graph is the full one less outputs: never dearer
            return True
        shape = [1 if isinstance(d, str) or d is None else d for d in decider.get_inputs()[0].shape]
        blank = {"images": np.zeros(shape, dtype=np.float32)}
        decision, full = least_costs(lambda: decider.run(None, blank), lambda: full_stepper.run(None, blank))
        return decision_first_pays(decision, full, going_on)

    def encode(self, images: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            return images
        features: np.ndarray = self.encoder.run(None, {"images": images})[0]
        return features

    def initial_state(self, batch_size: int) -> tuple[np.ndarray, ...]:
        shapes = [*self.state_shapes, (self.num_classes,)]
        return tuple(np.zeros((batch_size, *shape), dtype=np.float32) for shape in shapes)

    def first_step(self, images: np.ndarray) -> tuple[np.ndarray, StepResult]:
        if self.first_stepper is None:
            return first_step_in_parts(self, images)
        outputs = self.first_stepper.run(None, {"images": images})
        if self.encoder is None:
            return images, _step_result(outputs)
        return outputs[0], _step_result(outputs[1:])  # the features first

    def first_decision(self, images: np.ndarray) -> StepResult:
        if self.first_decider is None:
            return replace(self.first_step(images)[1], state=None)
        outputs: list[np.ndarray] = self.first_decider.run(None, {"images": images})
        current, membrane, spikes, layer_spikes, synaptic_inputs = outputs
        return StepResult(current, membrane, spikes, layer_spikes, synaptic_inputs, None)

    def step(self, encoded: np.ndarray, timesteps: np.ndarray, state: tuple[np.ndarray, ...]) -> StepResult:
        feeds = {
            self.step_input: encoded,
            "timestep": timesteps.astype(np.float32),
            **dict(zip(self.state_names, state)),
        }
        outputs = self.stepper.run(None, feeds)
        return _step_result(outputs)

    def select(
        self, encoded: np.ndarray, state: tuple[np.ndarray, ...], rows: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        return encoded[rows], tuple(s[rows] for s in state)

    def merge(
        self, parts: list[tuple[np.ndarray, tuple[np.ndarray, ...]]]
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        encoded = np.concatenate([e for e, _ in parts])
        return encoded, tuple(np.concatenate([s[i] for _, s in parts]) for i in range(len(parts[0][1])))


def _step_result(outputs: list[np.ndarray]) -> StepResult:
    """A step graph's outputs: the five of ``StepResult``, then the next states."""
    current, membrane, spikes, layer_spikes, synaptic_inputs = outputs[:5]
    return StepResult(current, membrane, spikes, layer_spikes, synaptic_inputs, tuple(outputs[5:]))
