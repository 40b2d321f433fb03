"""A JSON-serialisable description of a network: enough to rebuild it without training code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from training.contract.known_fields import refuse_unknown
from training.neurons.lif import LIFParameters

CODINGS = ("latency", "rate", "ann")
ENCODERS = {"latency": ("le", "intensity", "frames"), "rate": ("direct", "frames"), "ann": ("direct",)}
DEFAULT_STEM_CHANNELS = {"digits_net": 32, "vgg11": 64, "vgg16": 64, "sew_resnet18": 64}


@dataclass(frozen=True)
class NetworkSpec:
    """Architecture (name + constructor args), input, coding and neuron parameters.

    The first output spike decides, so an output layer that leaks less and fires later makes an
    uncertain input wait for more timesteps of evidence. TAD (14) acts on the currents O[t],
    which do not depend on it: one training serves any output neuron.

    Attributes:
        architecture: a key of ``ARCHITECTURES``.
        input_shape: one input's [C, H, W] (for event frames, one frame's [2, H, W]).
        num_classes: K, the output neurons.
        arch_args: the architecture builder's keyword arguments (``width``, ``channels``).
        coding: ``latency`` (first-spike decision), ``rate`` (direct input, time-mean decoding)
            or ``ann`` (the same architecture with ReLU, one pass).
        encoder: ``le`` (the LE module, (5)-(9)) or ``intensity`` (raw pixels to latency) for
            latency coding; ``direct`` (analog current) for rate coding and the ANN; ``frames``
            for DVS event frames, one per timestep. None: the coding's first.
        timesteps: T (always 1 for the ANN).
        stem_channels: the channels of the encoder's Phi; None: the architecture's default,
            scaled by ``arch_args["width"]``.
        neuron: the LIF parameters (2)-(4) of the hidden layers.
        output_neuron: the output layer's LIF parameters; the paper's single ``neuron`` when not
            given.
        input_mean: the per-channel mean the data set subtracts from its images; the
            ``intensity`` encoder undoes the normalisation, so that spike times come from raw
            pixels in [0, 1] (paper Sec. IV-E 1: "directly encodes the pixel intensity"). None:
            the images are raw already.
        input_std: the per-channel standard deviation the data set divides by; None: raw.

    Raises:
        ValueError: an unknown architecture, coding or encoder, or an invalid value.
    """

    architecture: str
    input_shape: tuple[int, int, int]
    num_classes: int
    arch_args: dict[str, Any] = field(default_factory=dict)
    coding: str = "latency"
    encoder: str | None = None
    timesteps: int = 4
    stem_channels: int | None = None
    neuron: LIFParameters = field(default_factory=LIFParameters)
    output_neuron: LIFParameters | None = None
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        from training.network.architectures import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}; choose from {sorted(ARCHITECTURES)}"
            )
        if self.coding not in CODINGS:
            raise ValueError(f"unknown coding {self.coding!r}; choose from {list(CODINGS)}")
        encoder = self.encoder or ENCODERS[self.coding][0]
        if encoder not in ENCODERS[self.coding]:
            raise ValueError(
                f"encoder {encoder!r} does not fit {self.coding} coding; use one of {ENCODERS[self.coding]}"
            )
        object.__setattr__(self, "encoder", encoder)
        if self.coding == "ann":
            object.__setattr__(self, "timesteps", 1)
        if self.timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps}")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        for name in ("input_mean", "input_std"):
            values = getattr(self, name)
            if values is not None:
                values = tuple(float(v) for v in values)
                if len(values) != self.input_shape[0]:
                    raise ValueError(
                        f"{name} needs one value per input channel ({self.input_shape[0]}), got {len(values)}"
                    )
                object.__setattr__(self, name, values)
        if self.input_std is not None and min(self.input_std) <= 0:
            raise ValueError(f"input_std must be positive, got {self.input_std}")
        if self.output_neuron is None:
            object.__setattr__(self, "output_neuron", self.neuron)
        if self.stem_channels is None:
            width = float(self.arch_args.get("width", 1.0))
            object.__setattr__(
                self, "stem_channels", max(1, int(DEFAULT_STEM_CHANNELS[self.architecture] * width))
            )

    @property
    def output_parameters(self) -> LIFParameters:
        """The output layer's LIF parameters: ``output_neuron``, which defaults to ``neuron``."""
        return self.neuron if self.output_neuron is None else self.output_neuron

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON values, as a manifest's ``network`` records it."""
        values = asdict(self)
        values["neuron"] = self.neuron.to_dict()
        values["output_neuron"] = self.output_parameters.to_dict()
        values["input_shape"] = list(self.input_shape)
        for name in ("input_mean", "input_std"):
            if values[name] is not None:
                values[name] = list(values[name])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetworkSpec:
        """A spec from its JSON values (``to_dict``, a manifest's ``network``).

        Args:
            values: the fields; ``neuron`` and ``output_neuron`` as mappings.

        Returns:
            The spec.

        Raises:
            ValueError: an unknown field or an invalid value.
        """
        refuse_unknown(values, cls, "network spec fields")
        values = dict(values)
        values["neuron"] = LIFParameters.from_dict(values.get("neuron", {}))
        if values.get("output_neuron") is not None:
            values["output_neuron"] = LIFParameters.from_dict(values["output_neuron"])
        values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)
