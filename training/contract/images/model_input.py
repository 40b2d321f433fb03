"""A decoded image -> the float32 [C, H, W] tensor an image model reads, as its manifest says.

Colour mode first (to the model's grey or RGB), then the manifest's resize policy
(``training.contract.images.resize``), then x = (pixel / pixel_max - mean) / std per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
from PIL import Image

from training.contract.images.resize import DEFAULT_RESIZE, ResizePolicy, resize_image
from training.contract.manifest import ImageInput, Manifest

if TYPE_CHECKING:
    from training.data.info import DatasetInfo

WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
WIDE_BAND_VALUES = 1 << 20  # pixels of a wide image converted as floats at a time


@dataclass(frozen=True)
class InputSpec:
    """What an image model reads: its input size and how its pixels are normalised.

    Attributes:
        channels: 1 (grey) or 3 (RGB).
        height: the input's height in pixels.
        width: the input's width in pixels.
        pixel_max: the pixel value that maps to 1 before normalisation.
        mean: per channel, subtracted after scaling.
        std: per channel, divided by last.
        resize: how images of other sizes are brought to height x width.
    """

    channels: int
    height: int
    width: int
    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: ResizePolicy = DEFAULT_RESIZE

    @classmethod
    def from_info(cls, info: DatasetInfo) -> InputSpec:
        """The spec an image data set's manifest will record (8-bit pixels).

        Args:
            info: the data set's description.

        Returns:
            The spec of a model trained on it.
        """
        channels, height, width = info.input_shape
        return cls(channels, height, width, 255.0, tuple(info.mean), tuple(info.std), info.resize)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> InputSpec:
        """The spec of an image model's manifest.

        Args:
            manifest: a stored version's manifest.

        Returns:
            The spec its ``input`` section describes.

        Raises:
            ValueError: an event model's manifest, or one that no image model reads.
        """
        return cls.from_image_input(manifest.image_input)

    @classmethod
    def from_image_input(cls, spec: ImageInput) -> InputSpec:
        """The spec of a manifest's ``input`` section.

        Args:
            spec: the section, already validated.

        Returns:
            The spec, with the section's resize policy.

        Raises:
            ValueError: a channel count other than 1 or 3, or an invalid resize policy.
        """
        normalization = spec.normalization
        if spec.channels not in (1, 3):
            raise ValueError(f"image models need 1 or 3 input channels, the manifest says {spec.channels}")
        return cls(
            spec.channels,
            spec.height,
            spec.width,
            float(normalization.pixel_max),
            normalization.mean,
            normalization.std,
            ResizePolicy.from_dict(spec.resize),
        )


def to_model_pixels(image: Image.Image, spec: InputSpec) -> npt.NDArray[np.uint8]:
    """An image at the model's size and channels, before normalisation.

    Args:
        image: a decoded image of any size and mode.
        spec: what the model reads.

    Returns:
        uint8 [H, W, C].
    """
    if image.mode in WIDE_MODES:
        image = wide_to_eight_bits(image)
    mode = "L" if spec.channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    image = resize_image(image, spec.width, spec.height, spec.resize)
    return np.asarray(image, dtype=np.uint8).reshape(spec.height, spec.width, spec.channels)


def wide_to_eight_bits(image: Image.Image) -> Image.Image:
    """A wide grey image in mode L, its full range mapped onto 8 bits rather than clipped at 255.

    A band of rows at a time: never the whole image as floats.

    Args:
        image: a single-band image of mode ``I;16``, ``I`` or ``F`` (one of ``WIDE_MODES``).

    Returns:
        The image in mode L, its maximum at 255.
    """
    # A single band's extrema are one (min, max) pair; Pillow's annotation also covers the
    # pair-per-band result of multi-band modes.
    top = float(cast(float, image.getextrema()[1])) or 1.0
    width, height = image.size
    rows = max(1, WIDE_BAND_VALUES // width)
    eight_bits = np.empty((height, width), dtype=np.uint8)
    for start in range(0, height, rows):
        band = np.asarray(image.crop((0, start, width, min(height, start + rows))), dtype=np.float64)
        eight_bits[start : start + rows] = np.clip(band / top * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(eight_bits, "L")


def normalize_pixels(pixels: np.ndarray, spec: InputSpec) -> npt.NDArray[np.float32]:
    """Pixels to model input: x = (pixel / pixel_max - mean) / std per channel.

    Args:
        pixels: uint8 [..., H, W, C] (``to_model_pixels``).
        spec: what the model reads.

    Returns:
        float32 [..., C, H, W], contiguous.
    """
    values = np.moveaxis(pixels.astype(np.float32), -1, -3)
    # Divide (not multiply by a reciprocal) as training does, so the numbers match to the bit.
    scaled = values / np.float32(spec.pixel_max)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((scaled - mean) / std, dtype=np.float32)


def to_model_input(image: Image.Image, spec: InputSpec) -> npt.NDArray[np.float32]:
    """A decoded image as the model's input: ``to_model_pixels``, then ``normalize_pixels``.

    Args:
        image: a decoded image of any size and mode.
        spec: what the model reads.

    Returns:
        float32 [C, H, W].
    """
    return normalize_pixels(to_model_pixels(image, spec), spec)
