"""Image decoding and preprocessing from the manifest's input spec."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from conftest import png_bytes
from service.errors import ApiError
from service.preprocessing import InputSpec, decode_base64_image, open_image, preprocess

GREY_8 = InputSpec(channels=1, height=8, width=8, pixel_max=255, mean=(0.0,), std=(1.0,))
RGB_4 = InputSpec(channels=3, height=4, width=4, pixel_max=255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))


def _encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def test_grey_png_of_the_model_size_is_pixels_over_255():
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    tensor = preprocess(png_bytes(pixels), GREY_8, 1_000)
    assert tensor.shape == (1, 8, 8) and tensor.dtype == np.float32
    assert np.array_equal(tensor[0], pixels.astype(np.float32) / np.float32(255))


def test_colour_image_becomes_grey_with_pil_luma():
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # pure red: L = 299/1000 * 200 = 59.8 -> 60
    tensor = preprocess(png_bytes(rgb, "RGB"), GREY_8, 1_000)
    assert np.allclose(tensor, 60 / 255)


def test_grey_image_becomes_rgb_and_is_normalised_per_channel():
    grey = np.full((4, 4), 255, dtype=np.uint8)
    tensor = preprocess(png_bytes(grey), RGB_4, 1_000)
    assert tensor.shape == (3, 4, 4)
    assert np.allclose(tensor[:, 0, 0], [(1 - 0.5) / 0.25, (1 - 0.5) / 0.5, (1 - 0.5) / 1.0])


@pytest.mark.parametrize("format, mode", [("JPEG", "RGB"), ("BMP", "RGB"), ("GIF", "P"), ("TIFF", "RGBA"), ("WEBP", "RGB"), ("PNG", "LA")])
def test_common_formats_modes_and_sizes_are_accepted(format, mode):
    image = Image.new(mode, (37, 23), color=None)
    tensor = preprocess(_encode(image, format), GREY_8, 10_000)
    assert tensor.shape == (1, 8, 8) and np.isfinite(tensor).all()


def test_sixteen_bit_grey_uses_its_full_range():
    wide = np.array([[0, 65535]], dtype=np.uint16).repeat(8, axis=0).repeat(4, axis=1)
    image = Image.fromarray(wide)  # Pillow picks a 16-bit mode (I;16)
    tensor = preprocess(_encode(image, "PNG"), GREY_8, 1_000)
    assert tensor.min() == 0 and tensor.max() == 1


def test_too_many_pixels_are_refused_from_the_header():
    big = _encode(Image.new("L", (100, 100)), "PNG")
    with pytest.raises(ApiError) as caught:
        open_image(big, max_pixels=9_999)
    assert caught.value.status == 413


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"


@pytest.mark.parametrize("data", [b"", b"GIF89a-not-really", png_bytes(np.zeros((8, 8), np.uint8))[:30], EPS])
def test_undecodable_bytes_are_400(data):
    with pytest.raises(ApiError) as caught:
        open_image(data, max_pixels=1_000)
    assert caught.value.status == 400


def test_base64_with_and_without_data_url_prefix():
    raw = b"\x89PNG..."
    encoded = base64.b64encode(raw).decode()
    assert decode_base64_image(encoded) == raw
    assert decode_base64_image("data:image/png;base64," + encoded) == raw
    for bad in ("", "***", None, 5):
        with pytest.raises(ApiError):
            decode_base64_image(bad)
