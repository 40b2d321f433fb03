"""What a model needs to know about its data: input shape, classes, normalisation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from training.contract.images.resize import DEFAULT_RESIZE, ResizePolicy


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    input_shape: tuple[int, int, int]  # channels, height, width as the network sees them
    labels: tuple[str, ...]
    # Per-channel (x - mean) / std applied after scaling pixels to [0, 1].
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: str = "image"  # or "events": frames of DVS events, one per timestep
    bin_us: int | None = None  # events: the duration of one timestep's frame
    # images: how a file of another size becomes input_shape (recorded in the manifest)
    resize: ResizePolicy = DEFAULT_RESIZE

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["input_shape"] = list(self.input_shape)
        values["labels"] = list(self.labels)
        values["mean"] = list(self.mean)
        values["std"] = list(self.std)
        return values
