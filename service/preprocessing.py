"""Image bytes -> the model's input tensor, as the manifest describes it.

PNG, JPEG, GIF, BMP, TIFF, WebP, PPM, TGA or ICO, any size and colour mode:
converted to the model's channels, resized to its height and width, scaled by
``normalization.pixel_max`` and normalised per channel. The pixel count is checked from the header,
before any pixel data is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import ApiError, bad_request


# Formats decoded in-process by Pillow alone. Others (EPS through Ghostscript, for one) are not
# worth the attack surface for a classifier's input.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "ICO")


@dataclass(frozen=True)
class InputSpec:
    channels: int
    height: int
    width: int
    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_manifest(cls, manifest: dict) -> "InputSpec":
        spec = manifest["input"]
        normalization = spec["normalization"]
        if spec["channels"] not in (1, 3):
            raise ValueError(f"image models need 1 or 3 input channels, the manifest says {spec['channels']}")
        return cls(spec["channels"], spec["height"], spec["width"], float(normalization["pixel_max"]),
                   tuple(normalization["mean"]), tuple(normalization["std"]))


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


def to_model_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """float32 [C, H, W] for the model."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Wide grey images: map their full range onto 8 bits rather than clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        top = values.max() or 1.0
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8), "L")
    image = image.convert("L" if spec.channels == 1 else "RGB")
    if image.size != (spec.width, spec.height):
        image = image.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8).astype(np.float32)
    pixels = pixels.reshape(spec.height, spec.width, spec.channels).transpose(2, 0, 1)
    # Divide (not multiply by a reciprocal) as training does, so the numbers match to the bit.
    scaled = pixels / np.float32(spec.pixel_max)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((scaled - mean) / std, dtype=np.float32)


def preprocess(data: bytes, spec: InputSpec, max_pixels: int) -> np.ndarray:
    return to_model_input(open_image(data, max_pixels), spec)
