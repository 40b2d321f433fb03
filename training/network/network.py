"""The spiking network: encoder -> body -> linear classifier -> output LIF layer.

Two ways to run it, through one code path (see ``run.py``):

- ``forward(images)``: all T timesteps from rest, for training and evaluation;
- ``features(images)`` once, then ``step(features, t, state)`` per timestep with an explicit
  ``NetworkState``, for early-exit serving. ``initial_state(batch)`` makes the state at rest;
  ``first_step(images)`` is ``features`` and timestep 1 from rest in one call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, NamedTuple, TypedDict

import torch
from torch import nn

from training.encoding import (
    DirectCurrentEncoder,
    EventFrameEncoder,
    FeatureStem,
    IntensityLatencyEncoder,
    LatencyEncoder,
)
from training.network.architectures import ARCHITECTURES
from training.network.layers import Layer, ReLUActivation, SpikingActivation, Synapse
from training.network.run import Run
from training.network.spec import NetworkSpec
from training.neurons.lif import LIFState, lif_sequence, lif_step

# The encoders a network can have (``NetworkSpec.encoder``).
Encoder = LatencyEncoder | IntensityLatencyEncoder | EventFrameEncoder | DirectCurrentEncoder


class NetworkState(NamedTuple):
    """Every neuron's state between two timesteps.

    Attributes:
        hidden: one state per spiking activation, in network order.
        output: the output layer's state.
    """

    hidden: tuple[LIFState, ...]
    output: LIFState


class NetworkOutput(NamedTuple):
    """Outputs of a pass of k timesteps; k = T for ``forward``, 1 for ``step``.

    Attributes:
        current: [k, B, K] O[t], the output layer's pre-synaptic current (TAD's logits, (14)).
        membrane: [k, B, K] the output membrane before reset (decoding (11)).
        spikes: [k, B, K] the output spikes.
        layer_spikes: [k, B, L] spikes per spiking layer (encoder, hidden), per sample.
        synaptic_inputs: [k, B, S] summed input activity per synaptic layer (for (16)).
        state: the state after the last timestep.
        recorded: spike maps [k, B, ...] per spiking layer name, only from
            ``forward(..., record_spikes=True)``.
    """

    current: torch.Tensor
    membrane: torch.Tensor
    spikes: torch.Tensor
    layer_spikes: torch.Tensor
    synaptic_inputs: torch.Tensor
    state: NetworkState
    recorded: dict[str, torch.Tensor] | None = None


class StepOutput(NamedTuple):
    """One timestep: [B, K] output tensors, [B, L] layer spikes, [B, S] synaptic inputs.

    Attributes:
        current: O[t], the output layer's pre-synaptic current.
        membrane: the output membrane before reset.
        spikes: the output spikes.
        layer_spikes: spikes per spiking layer, per sample.
        synaptic_inputs: summed input activity per synaptic layer.
        state: the state for the next timestep.
    """

    current: torch.Tensor
    membrane: torch.Tensor
    spikes: torch.Tensor
    layer_spikes: torch.Tensor
    synaptic_inputs: torch.Tensor
    state: NetworkState


class SpikingLayerRow(TypedDict):
    """A spiking layer of ``Layout``: the manifest's ``layers.spiking`` row."""

    name: str
    neurons: int


class SynapticLayerRow(TypedDict):
    """A synaptic layer of ``Layout``: the manifest's ``layers.synaptic`` row (the energy table)."""

    name: str
    kind: str
    flops: int
    input_neurons: int
    static: bool


class Layout(TypedDict):
    """Per-layer neuron counts and FLOPs, for the firing rate and the energy of (15)-(16)."""

    spiking_layers: list[SpikingLayerRow]
    output_neurons: int
    synaptic_layers: list[SynapticLayerRow]
    hidden_state_shapes: list[tuple[int, ...]]


def build_encoder(spec: NetworkSpec) -> Encoder:
    """The encoder a spec names.

    Args:
        spec: the network's spec (its ``encoder`` already resolved).

    Returns:
        The LE module, the intensity or event-frame encoder, or direct current.
    """
    in_channels = spec.input_shape[0]
    assert spec.stem_channels is not None  # NetworkSpec.__post_init__ resolves the default
    if spec.encoder == "le":
        return LatencyEncoder(in_channels, spec.stem_channels)
    if spec.encoder == "intensity":
        return IntensityLatencyEncoder(in_channels, spec.input_mean, spec.input_std)
    if spec.encoder == "frames":
        return EventFrameEncoder(in_channels)
    return DirectCurrentEncoder(in_channels, spec.stem_channels)


class SpikingNetwork(nn.Module):
    """Encoder -> body -> linear classifier -> output LIF layer, run k timesteps at a time.

    Args:
        spec: what to build; the network keeps it as ``spec``.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.timesteps = spec.timesteps
        self.encoder = build_encoder(spec)
        activation: type[Layer] = ReLUActivation if spec.coding == "ann" else SpikingActivation
        # Direct current needs a first activation to become spikes (rate) or activations (ANN);
        # latency encoders already emit spikes.
        self.entry = activation() if isinstance(self.encoder, DirectCurrentEncoder) else None
        builder = ARCHITECTURES[spec.architecture]
        self.body = builder(
            self.encoder.out_channels,
            activation,
            stem=isinstance(self.encoder, FeatureStem),
            **spec.arch_args,
        )
        self._spiking = [m for m in self.modules() if isinstance(m, SpikingActivation)]
        for index, layer in enumerate(self._spiking):
            layer.index = index
        body_synapses = [m for m in self.body.modules() if isinstance(m, Synapse)]
        feature_dim = self._probe()["body_out"][-1]
        self.head = Synapse(nn.Linear(feature_dim, spec.num_classes))
        self._synapses = body_synapses + [self.head]
        for index, synapse in enumerate(self._synapses):
            synapse.index = index
        self.layout = self._describe(self._probe())

    @property
    def emits_input_spikes(self) -> bool:
        """Whether the encoder's output is spikes (latency codes, event frames), not a current."""
        return isinstance(self.encoder, (LatencyEncoder, IntensityLatencyEncoder, EventFrameEncoder))

    def set_output_neuron(self, **changes: Any) -> None:
        """Change the output layer's LIF parameters.

        They set when the first output spike comes, not the currents O[t] that training fits, so
        a trained network can be given another decision rule without retraining.

        Args:
            **changes: new values of ``LIFParameters`` fields (``leak``, ``threshold``).
        """
        self.spec = replace(self.spec, output_neuron=replace(self.spec.output_parameters, **changes))

    # -- running ---------------------------------------------------------------------------

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The static, once-per-input part of the encoder (F of (5) for the LE module).

        Args:
            images: the normalised inputs [B, ...].

        Returns:
            The features [B, ...] that ``step`` reads.
        """
        return self.encoder.features(images)

    def forward(self, images: torch.Tensor, record_spikes: bool = False) -> NetworkOutput:
        """All T timesteps from rest.

        Args:
            images: the normalised inputs [B, ...] (event frames: [B, T, C, H, W]).
            record_spikes: also return every spiking layer's spike maps.

        Returns:
            The outputs of all T timesteps, [T, B, ...].
        """
        features = self.features(images)
        inputs = self.encoder.input_sequence(features, self.timesteps)
        return self._pass(Run.fold(inputs), self.timesteps, images.shape[0], None, record=record_spikes)

    def step(
        self, features: torch.Tensor, timestep: int | torch.Tensor, state: NetworkState | None
    ) -> StepOutput:
        """One timestep from ``state`` (None: at rest); returns the new state with the outputs.

        Args:
            features: [B, ...] the once-per-input features (``features``).
            timestep: the 1-based timestep, one for the batch or [B], each row's own.
            state: the state after the previous timestep, or None at rest.

        Returns:
            The output layer's current, membrane and spikes, the spikes per layer, the synaptic
            inputs and the new state.
        """
        inputs = self.encoder.input_at(features, timestep, self.timesteps)
        out = self._pass(inputs, 1, features.shape[0], state, stepping=True)
        return StepOutput(*out[:5], out.state)

    def first_step(self, images: torch.Tensor) -> tuple[torch.Tensor, StepOutput]:
        """``features(images)`` and timestep 1 from rest in one pass.

        What early exit runs first (one exported graph, no state to pass in).

        Args:
            images: the normalised inputs [B, ...].

        Returns:
            The features and the outputs of timestep 1.
        """
        features = self.features(images)
        return features, self.step(features, 1, None)

    def initial_state(
        self, batch_size: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> NetworkState:
        """Every neuron at rest, as explicit zero membranes.

        Args:
            batch_size: the rows.
            device: where the membranes live.
            dtype: the membranes' dtype.

        Returns:
            The state that ``step`` starts from, equal to passing None.
        """
        hidden = tuple(
            LIFState(torch.zeros((batch_size, *shape), device=device, dtype=dtype))
            for shape in self.layout["hidden_state_shapes"]
        )
        output = LIFState(torch.zeros((batch_size, self.spec.num_classes), device=device, dtype=dtype))
        return NetworkState(hidden, output)

    def _pass(
        self,
        inputs: torch.Tensor,
        timesteps: int,
        batch_size: int,
        state: NetworkState | None,
        probe: dict[str, Any] | None = None,
        record: bool = False,
        stepping: bool = False,
    ) -> NetworkOutput:
        """``timesteps`` from ``state``; ``stepping`` (one timestep) returns [B, ...] tensors
        without the time axis."""
        run = Run(
            timesteps,
            batch_size,
            self.spec.neuron,
            stepping,
            None if state is None else state.hidden,
            probe=probe,
            record={} if record else None,
        )
        layer_spikes = [run.per_sample_sum(inputs.detach())] if self.emits_input_spikes else []
        x = inputs if self.entry is None else self.entry(inputs, run)
        x = self.body(x, run)
        if probe is not None:
            probe["body_out"] = tuple(x.shape[1:])
        current = self.head(x, run)
        current = current if stepping else run.unfold(current)
        start = None if state is None else state.output
        if self.spec.coding == "ann":
            spikes, membrane = torch.zeros_like(current), current
            output_state = LIFState(current if stepping else current[-1])
        elif stepping:
            spikes, membrane, output_state = lif_step(current, start, self.spec.output_parameters)
        else:
            spikes, membrane, output_state = lif_sequence(current, self.spec.output_parameters, start)
        layer_spikes += [run.layer_spikes[i] for i in range(len(self._spiking))]
        empty = current.new_zeros((*current.shape[:-1], 0))
        return NetworkOutput(
            current=current,
            membrane=membrane,
            spikes=spikes,
            layer_spikes=run.per_sample_table(layer_spikes) if layer_spikes else empty,
            synaptic_inputs=run.per_sample_table(
                [run.synaptic_inputs[i] for i in sorted(run.synaptic_inputs)]
            ),
            state=NetworkState(tuple(run.states_out[i] for i in range(len(self._spiking))), output_state),
            recorded=None if run.record is None else self._recorded(run, run.record, inputs),
        )

    def _recorded(
        self, run: Run, record: dict[int, torch.Tensor], inputs: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Spike maps by the layer names of ``layout["spiking_layers"]``."""
        names = [layer["name"] for layer in self.layout["spiking_layers"]]
        maps = ([run.unfold(inputs.detach())] if self.emits_input_spikes else []) + [
            record[i] for i in range(len(self._spiking))
        ]
        return dict(zip(names, maps))

    # -- static description (neuron counts, FLOPs) -----------------------------------------

    @torch.no_grad()
    def _probe(self) -> dict[str, Any]:
        """Run one timestep on one zero image in eval mode and record every layer's shape.

        Called once before the classifier exists (only the body's output size is needed to
        build it) and once after, for the full layout.
        """
        was_training = self.training
        self.eval()
        try:
            features = self.features(torch.zeros((1, *self.spec.input_shape)))
            inputs = self.encoder.input_at(features, 1, self.timesteps)
            probe: dict[str, Any] = {"features": tuple(features.shape[1:])}
            if hasattr(self, "head"):
                self._pass(inputs, 1, 1, None, probe=probe)
            else:
                run = Run(1, 1, self.spec.neuron, probe=probe)
                x = inputs if self.entry is None else self.entry(inputs, run)
                probe["body_out"] = tuple(self.body(x, run).shape[1:])
            return probe
        finally:
            self.train(was_training)

    def _describe(self, probe: dict[str, Any]) -> Layout:
        """Per-layer neuron counts and FLOPs for the firing rate and the energy of (15)-(16)."""
        names = {module: name for name, module in self.named_modules()}
        spiking_layers: list[SpikingLayerRow] = []
        if self.emits_input_spikes:
            name = "events" if isinstance(self.encoder, EventFrameEncoder) else "encoder"
            spiking_layers.append({"name": name, "neurons": _numel(probe["features"])})
        hidden_shapes = [probe["spiking"][i] for i in range(len(self._spiking))]
        spiking_layers += [
            {"name": names[layer], "neurons": _numel(shape)}
            for layer, shape in zip(self._spiking, hidden_shapes)
        ]
        spiking = self.spec.coding != "ann"
        synaptic_layers: list[SynapticLayerRow] = []
        if isinstance(self.encoder, FeatureStem):
            conv = self.encoder.conv
            c_out, h_out, w_out = probe["features"]
            synaptic_layers.append(
                {
                    "name": "encoder.conv",
                    "kind": "mac",
                    "flops": h_out
                    * w_out
                    * conv.in_channels
                    * c_out
                    * conv.kernel_size[0]
                    * conv.kernel_size[1],
                    "input_neurons": _numel(self.spec.input_shape),
                    "static": True,
                }
            )
        for layer in self._synapses:
            synaptic_layers.append(
                {
                    "name": names[layer],
                    "kind": "sop" if spiking else "mac",
                    "flops": layer.flops(probe["synapse_in"][layer.index], probe["synapse_out"][layer.index]),
                    "input_neurons": _numel(probe["synapse_in"][layer.index]),
                    "static": False,
                }
            )
        return {
            "spiking_layers": spiking_layers,
            "output_neurons": self.spec.num_classes,
            "synaptic_layers": synaptic_layers,
            "hidden_state_shapes": hidden_shapes,
        }


def _numel(shape: Iterable[int]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total
