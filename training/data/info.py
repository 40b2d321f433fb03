"""What a model needs to know about its data: input shape, classes, normalisation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from training.contract.images.resize import DEFAULT_RESIZE, ResizePolicy


@dataclass(frozen=True)
class DatasetInfo:
    """A data set's description, as recorded in a model's manifest.

    Attributes:
        name: The data set's registry name.
        input_shape: Channels, height and width as the network sees them.
        labels: The class names, in class-index order.
        mean: Per-channel means: pixels scaled to [0, 1] become (x - mean) / std.
        std: Per-channel standard deviations of that normalisation.
        kind: ``"image"``, or ``"events"`` for frames of DVS events, one per timestep.
        bin_us: Events only: the duration of one timestep's frame, in microseconds.
        resize: Images only: how a file of another size becomes ``input_shape``.
    """

    name: str
    input_shape: tuple[int, int, int]
    labels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: str = "image"
    bin_us: int | None = None
    resize: ResizePolicy = DEFAULT_RESIZE

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (tuples as lists).

        Returns:
            One entry per field.
        """
        values = asdict(self)
        values["input_shape"] = list(self.input_shape)
        values["labels"] = list(self.labels)
        values["mean"] = list(self.mean)
        values["std"] = list(self.std)
        return values
