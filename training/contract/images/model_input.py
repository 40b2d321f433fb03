"""A decoded image -> the float32 [C, H, W] tensor an image model reads, as its manifest says.

Colour mode first (to the model's grey or RGB), then the manifest's resize policy
(``training.contract.images.resize``), then x = (pixel / pixel_max - mean) / std per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from training.contract.images.resize import DEFAULT_RESIZE, ResizePolicy, resize_image
from training.contract.manifest import ImageInput, Manifest

if TYPE_CHECKING:
    from training.data.info import DatasetInfo

WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
WIDE_BAND_VALUES = 1 << 20  # pixels of a wide image converted as floats at a time


@dataclass(frozen=True)
class InputSpec:
    channels: int
    height: int
    width: int
    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: ResizePolicy = DEFAULT_RESIZE

    @classmethod
    def from_info(cls, info: DatasetInfo) -> InputSpec:
        """The spec an image data set's manifest will record (8-bit pixels)."""
        channels, height, width = info.input_shape
        return cls(channels, height, width, 255.0, tuple(info.mean), tuple(info.std), info.resize)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> InputSpec:
        """The spec of an image model's manifest (``ValueError`` for an event model)."""
        return cls.from_image_input(manifest.image_input)

    @classmethod
    def from_image_input(cls, spec: ImageInput) -> InputSpec:
        """The spec of a manifest's ``input`` section (``ValueError`` if no image model reads it)."""
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


def to_model_pixels(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """uint8 [H, W, C] at the model's size and channels, before normalisation."""
    if image.mode in WIDE_MODES:
        image = wide_to_eight_bits(image)
    mode = "L" if spec.channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    image = resize_image(image, spec.width, spec.height, spec.resize)
    return np.asarray(image, dtype=np.uint8).reshape(spec.height, spec.width, spec.channels)


def wide_to_eight_bits(image: Image.Image) -> Image.Image:
    """A wide grey image (16-bit, 32-bit or float) in mode L, its full range mapped onto 8 bits
    rather than clipped at 255. A band of rows at a time: never the whole image as floats."""
    top = float(image.getextrema()[1]) or 1.0
    width, height = image.size
    rows = max(1, WIDE_BAND_VALUES // width)
    eight_bits = np.empty((height, width), dtype=np.uint8)
    for start in range(0, height, rows):
        band = np.asarray(image.crop((0, start, width, min(height, start + rows))), dtype=np.float64)
        eight_bits[start : start + rows] = np.clip(band / top * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(eight_bits, "L")


def normalize_pixels(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 [..., H, W, C] -> float32 [..., C, H, W], normalised as the manifest says."""
    values = np.moveaxis(pixels.astype(np.float32), -1, -3)
    # Divide (not multiply by a reciprocal) as training does, so the numbers match to the bit.
    scaled = values / np.float32(spec.pixel_max)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((scaled - mean) / std, dtype=np.float32)


def to_model_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """float32 [C, H, W] for the model."""
    return normalize_pixels(to_model_pixels(image, spec), spec)
