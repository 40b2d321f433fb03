"""Image bytes -> the model's input tensor, as the manifest describes it.

PNG, JPEG, GIF, BMP, TIFF, WebP, PPM or TGA, any size and colour mode within the service's
``ImageLimits``: decoded by ``training.contract.images.decode`` (the header checked before any pixel is
decoded), converted to the model's channels, resized to its height and width by the manifest's
resize policy, scaled by ``normalization.pixel_max`` and normalised per channel, by the very
functions that training, ``firstspike eval`` and the report use (``training.contract.images``).
Refused images raise ``ImageRejected`` (``service.http.errors`` answers 400, or 413 when too large).
"""

from __future__ import annotations

import numpy as np

from service.inference.work import Deadline
from training.contract.images.decode import IMAGE_FORMATS, ImageLimits, decode_image
from training.contract.images.model_input import InputSpec, normalize_pixels, to_model_input

__all__ = [
    "IMAGE_FORMATS",
    "ImageLimits",
    "InputSpec",
    "decode_image",
    "preprocess",
    "preprocess_pixels",
    "to_model_input",
]


def preprocess(
    data: bytes, spec: InputSpec, limits: ImageLimits, deadline: Deadline | None = None
) -> np.ndarray:
    """An image file as the model's input.

    Args:
        data: the image file's bytes.
        spec: what the model takes (channels, size, resize policy, normalisation).
        limits: the service's image limits, checked on the header before decoding.
        deadline: checked between decoding and resizing, the two steps whose cost grows with
            the image.

    Returns:
        float32 [C, H, W].

    Raises:
        ImageRejected: the image cannot be decoded, or breaks the limits.
        DeadlineExceeded: the request's time is up.
    """
    image = decode_image(data, limits)
    if deadline is not None:
        deadline.check()
    return to_model_input(image, spec)


def preprocess_pixels(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Raw pixels as the model's input, normalised as an image file of those pixels would be.

    Args:
        pixels: uint8 [B, C, H, W], already at the model's size.
        spec: what the model takes.

    Returns:
        float32 [B, C, H, W].
    """
    return normalize_pixels(np.moveaxis(pixels, 1, -1), spec)
