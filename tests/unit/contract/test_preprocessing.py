"""Image decoding and preprocessing from the manifest's input spec."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest
from PIL import Image

from service.http.errors import ApiError
from service.http.image_input import decode_base64_image
from service.inference.preprocessing import ImageLimits, InputSpec, decode_image, preprocess
from tests.helpers import png_bytes
from training.contract.images.decode import ImageRejected, ImageTooLarge

GREY_8 = InputSpec(channels=1, height=8, width=8, pixel_max=255, mean=(0.0,), std=(1.0,))
RGB_4 = InputSpec(channels=3, height=4, width=4, pixel_max=255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))


def _encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def test_grey_png_of_the_model_size_is_pixels_over_255():
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    tensor = preprocess(png_bytes(pixels), GREY_8, ImageLimits(max_pixels=1_000))
    assert tensor.shape == (1, 8, 8) and tensor.dtype == np.float32
    assert np.array_equal(tensor[0], pixels.astype(np.float32) / np.float32(255))


def test_colour_image_becomes_grey_with_pil_luma():
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # pure red: L = 299/1000 * 200 = 59.8 -> 60
    tensor = preprocess(png_bytes(rgb, "RGB"), GREY_8, ImageLimits(max_pixels=1_000))
    assert np.allclose(tensor, 60 / 255)


def test_grey_image_becomes_rgb_and_is_normalised_per_channel():
    grey = np.full((4, 4), 255, dtype=np.uint8)
    tensor = preprocess(png_bytes(grey), RGB_4, ImageLimits(max_pixels=1_000))
    assert tensor.shape == (3, 4, 4)
    assert np.allclose(tensor[:, 0, 0], [(1 - 0.5) / 0.25, (1 - 0.5) / 0.5, (1 - 0.5) / 1.0])


@pytest.mark.parametrize(
    "format, mode",
    [("JPEG", "RGB"), ("BMP", "RGB"), ("GIF", "P"), ("TIFF", "RGBA"), ("WEBP", "RGB"), ("PNG", "LA")],
)
def test_common_formats_modes_and_sizes_are_accepted(format, mode):
    image = Image.new(mode, (37, 23), color=None)
    tensor = preprocess(_encode(image, format), GREY_8, ImageLimits(max_pixels=10_000))
    assert tensor.shape == (1, 8, 8) and np.isfinite(tensor).all()


def test_sixteen_bit_grey_uses_its_full_range():
    wide = np.array([[0, 65535]], dtype=np.uint16).repeat(8, axis=0).repeat(4, axis=1)
    image = Image.fromarray(wide)  # Pillow picks a 16-bit mode (I;16)
    tensor = preprocess(_encode(image, "PNG"), GREY_8, ImageLimits(max_pixels=1_000))
    assert tensor.min() == 0 and tensor.max() == 1


def test_too_many_pixels_are_refused_from_the_header():
    big = _encode(Image.new("L", (100, 100)), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(big, ImageLimits(max_pixels=9_999))


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"


@pytest.mark.parametrize("data", [b"", b"GIF89a-not-really", png_bytes(np.zeros((8, 8), np.uint8))[:30], EPS])
def test_undecodable_bytes_are_400(data):
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, ImageLimits(max_pixels=1_000))
    assert not isinstance(caught.value, ImageTooLarge)


def test_base64_with_and_without_data_url_prefix():
    raw = b"\x89PNG..."
    encoded = base64.b64encode(raw).decode()
    assert decode_base64_image(encoded) == raw
    assert decode_base64_image("data:image/png;base64," + encoded) == raw
    for bad in ("", "***", None, 5):
        with pytest.raises(ApiError):
            decode_base64_image(bad)


@pytest.mark.parametrize(
    "size, limits, code",
    [
        ((8193, 10), ImageLimits(), "image_too_large"),  # a side over 8192
        ((10, 8193), ImageLimits(), "image_too_large"),
        ((200, 100), ImageLimits(max_pixels=19_999), "image_too_large"),
        ((330, 10), ImageLimits(), "image_aspect_ratio"),  # 33:1
        ((10, 330), ImageLimits(), "image_aspect_ratio"),
    ],
)
def test_sides_pixels_and_aspect_ratio_are_checked_from_the_header(size, limits, code):
    with pytest.raises(ImageRejected) as caught:
        decode_image(_encode(Image.new("L", size), "PNG"), limits)
    assert caught.value.code == code
    assert isinstance(caught.value, ImageTooLarge) == (code == "image_too_large")


def test_limits_at_their_edge_are_accepted():
    assert decode_image(_encode(Image.new("L", (320, 10)), "PNG"), ImageLimits()).size == (320, 10)  # 32:1
    assert decode_image(
        _encode(Image.new("L", (8192, 2)), "PNG"), ImageLimits(max_aspect_ratio=4096)
    ).size == (8192, 2)


def test_ico_files_are_not_accepted():
    """Pillow decodes an ICO's largest entry while opening it, before any size can be checked."""
    with pytest.raises(ImageRejected, match="accepted format") as caught:
        decode_image(_encode(Image.new("RGB", (32, 32)), "ICO"), ImageLimits())
    assert caught.value.code == "undecodable_image"


def test_an_empty_body_says_so():
    with pytest.raises(ImageRejected) as caught:
        decode_image(b"", ImageLimits())
    assert caught.value.code == "empty_image"


def test_png_text_chunks_cannot_inflate_into_memory(monkeypatch):
    """A 66 KiB PNG whose zTXt chunks inflate to 64 MiB: refused once the service set Pillow's
    limits (configure_pillow, which runs when an app is made)."""
    from PIL import PngImagePlugin

    from benchmarks.hostile import png_with_text_chunks
    from training.contract.images.decode import configure_pillow

    for name in ("MAX_TEXT_CHUNK", "MAX_TEXT_MEMORY"):
        monkeypatch.setattr(PngImagePlugin, name, getattr(PngImagePlugin, name))  # restored afterwards
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    with warnings.catch_warnings():
        configure_pillow(4096 * 4096)
    with pytest.raises(ImageRejected, match="text chunks"):
        decode_image(png_with_text_chunks(), ImageLimits())


def test_wide_images_are_mapped_to_eight_bits_a_band_at_a_time(monkeypatch):
    import training.contract.images.model_input as model_input

    rng = np.random.default_rng(8)
    for values in (
        rng.integers(0, 65536, (37, 50)).astype(np.uint16),
        rng.integers(-5, 10**6, (37, 50)).astype(np.int32),
        (rng.random((37, 50)) * 300).astype(np.float32),
    ):
        image = Image.fromarray(values)
        whole = np.clip(values.astype(np.float64) / values.max() * 255.0, 0, 255).astype(np.uint8)
        monkeypatch.setattr(model_input, "WIDE_BAND_VALUES", 120)  # bands of 2 rows
        assert np.array_equal(np.asarray(model_input.wide_to_eight_bits(image)), whole), image.mode
