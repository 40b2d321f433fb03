"""Image bytes -> the model's input tensor, as the manifest describes it.

PNG, JPEG, GIF, BMP, TIFF, WebP, PPM or TGA, any size and colour mode within the service's
``ImageLimits``: decoded by ``training.contract.images.decode`` (the header checked before any pixel is
decoded), converted to the model's channels, resized to its height and width by the manifest's
resize policy, scaled by ``normalization.pixel_max`` and normalised per channel, by the very
functions that training, ``firstspike eval`` and the report use (``training.contract.images``).
Refused images raise ``ImageRejected`` (``service.http.errors`` answers 400, or 413 when too large).
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from service.http.errors import bad_request
from service.inference.work import Deadline
from training.contract.images.decode import IMAGE_FORMATS, ImageLimits, decode_image
from training.contract.images.model_input import InputSpec, normalize_pixels, to_model_input

__all__ = ["IMAGE_FORMATS", "ImageLimits", "InputSpec", "decode_base64_image", "decode_image", "preprocess",
           "preprocess_pixels", "to_model_input"]


def decode_base64_image(text: object) -> bytes:
    """The bytes of a base64 string, with or without a ``data:image/...;base64,`` prefix."""
    if not isinstance(text, str) or not text:
        raise bad_request("image_base64 must be a non-empty base64 string", "invalid_base64")
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("image_base64 is not valid base64", "invalid_base64") from None


def preprocess(data: bytes, spec: InputSpec, limits: ImageLimits, deadline: Deadline | None = None) -> np.ndarray:
    """float32 [C, H, W]; the deadline is checked between decoding and resizing, the two steps
    whose cost grows with the image."""
    image = decode_image(data, limits)
    if deadline is not None:
        deadline.check()
    return to_model_input(image, spec)


def preprocess_pixels(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 [B, C, H, W] already at the model's size -> float32 [B, C, H, W], normalised as an
    image file of those pixels would be."""
    return normalize_pixels(np.moveaxis(pixels, 1, -1), spec)
