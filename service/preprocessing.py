"""Image bytes -> the model's input tensor, as the manifest describes it.

PNG, JPEG, GIF, BMP, TIFF, WebP, PPM, TGA or ICO, any size and colour mode: converted to the
model's channels, resized to its height and width by the manifest's resize policy, scaled by
``normalization.pixel_max`` and normalised per channel, by the very functions that training,
``firstspike eval`` and the report use (``training.images``). The pixel count is checked from the
header, before any pixel data is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import ApiError, bad_request
from training.images.model_input import InputSpec, normalize_pixels, to_model_input

__all__ = ["IMAGE_FORMATS", "InputSpec", "decode_base64_image", "open_image", "preprocess", "preprocess_pixels",
           "to_model_input"]


# Formats decoded in-process by Pillow alone. Others (EPS through Ghostscript, for one) are not
# worth the attack surface for a classifier's input.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "ICO")


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


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` fully, refusing oversized images before their pixels are decoded."""
    if not data:
        raise bad_request("the image is empty", "empty_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ApiError(413, "image_too_large",
                               f"image is {width}x{height} pixels; at most {max_pixels} pixels are accepted")
            image.seek(0)
            image.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, "image_too_large", "image has too many pixels") from None
    except UnidentifiedImageError:
        raise bad_request("the data is not an image in a supported format", "undecodable_image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise bad_request(f"the image could not be decoded ({error})", "undecodable_image") from None
    return image


def preprocess(data: bytes, spec: InputSpec, max_pixels: int) -> np.ndarray:
    return to_model_input(open_image(data, max_pixels), spec)


def preprocess_pixels(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 [B, C, H, W] already at the model's size -> float32 [B, C, H, W], normalised as an
    image file of those pixels would be."""
    return normalize_pixels(np.moveaxis(pixels, 1, -1), spec)
