"""The one resize function: area downscaling, smooth upscaling, letterboxing, the manifest's policy."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from service.inference.preprocessing import ImageLimits, decode_image, preprocess
from tests.helpers import png_bytes
from training.contract.images.decode import ImageTooLarge
from training.contract.images.model_input import InputSpec, to_model_input
from training.contract.images.resize import (
    DEFAULT_RESIZE,
    LEGACY_RESIZE,
    ResizePolicy,
    area_resize,
    resize_image,
)
from training.contract.manifest import ImageInput

GREY_8 = InputSpec(channels=1, height=8, width=8, pixel_max=255, mean=(0.0,), std=(1.0,))


def test_downscaling_averages_areas_as_the_digits_were_made():
    """scikit-learn's digits count 32x32 bitmaps in 4x4 blocks: area averaging gives those counts back."""
    bitmap = (np.random.default_rng(0).random((32, 32)) < 0.4).astype(np.uint8) * 255
    small = np.asarray(resize_image(Image.fromarray(bitmap, "L"), 8, 8))
    block_means = bitmap.reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.array_equal(small, np.round(block_means))  # exact, up to 8-bit rounding


def test_fractional_downscale_weights_partial_pixels():
    # 3 px -> 2 px: each output pixel covers 1.5 input pixels.
    row = np.array([[0, 90, 180]], dtype=np.uint8).repeat(3, axis=0)
    small = np.asarray(resize_image(Image.fromarray(row, "L"), 2, 2, ResizePolicy(aspect="stretch")))
    assert small[0].tolist() == [30, 150]  # (0 + 90/2) / 1.5, (90/2 + 180) / 1.5


def test_upscaling_is_smooth_not_blocky():
    digit = np.zeros((8, 8), np.uint8)
    digit[2:6, 3:5] = 255
    large = np.asarray(resize_image(Image.fromarray(digit, "L"), 28, 28))
    assert large.shape == (28, 28)
    assert len(np.unique(large)) > 10  # interpolated edges, not two grey levels
    expected = np.asarray(Image.fromarray(digit, "L").resize((28, 28), Image.Resampling.BICUBIC))
    assert np.array_equal(large, expected)


def test_a_wide_image_is_letterboxed_on_the_background():
    wide = np.full((8, 16), 200, dtype=np.uint8)  # 16 wide, 8 high
    out = np.asarray(resize_image(Image.fromarray(wide, "L"), 8, 8, ResizePolicy(background=10)))
    assert (out[2:6] == 200).all()  # scaled to 8 x 4, centred
    assert (out[:2] == 10).all() and (out[6:] == 10).all()


def test_a_tall_rgb_image_is_letterboxed_left_and_right():
    tall = np.zeros((40, 10, 3), dtype=np.uint8)
    tall[..., 1] = 255
    out = np.asarray(resize_image(Image.fromarray(tall, "RGB"), 8, 8))
    assert out.shape == (8, 8, 3)
    assert (out[:, 3:5, 1] == 255).all() and (out[:, :3] == 0).all() and (out[:, 5:] == 0).all()


def test_stretch_scales_each_axis_with_its_own_filter():
    image = Image.fromarray(np.arange(64 * 4, dtype=np.uint8).reshape(4, 64), "L")  # 64 wide, 4 high
    out = resize_image(image, 8, 8, ResizePolicy(aspect="stretch"))
    assert out.size == (8, 8)
    by_hand = image.resize((8, 4), Image.Resampling.BOX).resize((8, 8), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(out), np.asarray(by_hand))


@pytest.mark.parametrize("size", [(1, 1), (1, 50), (50, 1), (3, 2)])
def test_tiny_and_degenerate_images_still_give_the_model_size(size):
    image = Image.new("L", size, 255)
    out = np.asarray(resize_image(image, 8, 8))
    assert out.shape == (8, 8) and out.max() == 255


def test_a_large_photo_is_reduced_to_the_model_size():
    photo = np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo, "RGB").save(buffer, "JPEG", quality=85)
    tensor = preprocess(buffer.getvalue(), GREY_8, ImageLimits(max_pixels=4_000_000))
    assert tensor.shape == (1, 8, 8)
    assert (tensor[0, 0] == 0).all() and (
        tensor[0, -1] == 0
    ).all()  # 4:3 letterboxed: black top and bottom rows
    assert 0.3 < tensor[0, 3].mean() < 0.7  # noise averaged to mid grey


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height``, then a cut-off data chunk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 1 << 20) + b"IDAT" + b"\x00" * 64


def test_huge_images_are_refused_from_the_header_before_decoding():
    # 60,000 x 60,000 would be 3.6 GB of pixels; the file holds none, so only the header is read.
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(_png_header_only(60_000, 60_000), ImageLimits(max_pixels=16_000_000, max_side=100_000))
    assert caught.value.code == "image_too_large"


def test_the_policy_round_trips_through_the_manifest_form():
    policy = ResizePolicy(downscale="area", upscale="bilinear", aspect="stretch", background=7)
    assert ResizePolicy.from_dict(policy.to_dict()) == policy
    section = ImageInput.model_validate(
        {
            "channels": 1,
            "height": 8,
            "width": 8,
            "resize": policy.to_dict(),
            "normalization": {"pixel_max": 255, "mean": [0.0], "std": [1.0]},
        }
    )
    assert InputSpec.from_image_input(section).resize == policy


def test_a_manifest_without_a_policy_keeps_the_old_bilinear_stretch():
    section = ImageInput.model_validate(
        {
            "channels": 1,
            "height": 8,
            "width": 8,
            "normalization": {"pixel_max": 255, "mean": [0.0], "std": [1.0]},
        }
    )
    spec = InputSpec.from_image_input(section)
    assert spec.resize == LEGACY_RESIZE
    wide = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 30), dtype=np.uint8), "L")
    old = np.asarray(wide.resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32) / np.float32(255)
    assert np.array_equal(to_model_input(wide, spec)[0], old)


@pytest.mark.parametrize(
    "values",
    [
        {"downscale": "lanczos9"},
        {"aspect": "crop"},
        {"background": 300},
        {"colour": 1},
        [1],
        {"fit": "cover"},
        {"polarity": "invert"},
    ],
)
def test_invalid_policies_are_refused(values):
    with pytest.raises(ValueError):
        ResizePolicy.from_dict(values)


def test_data_sets_carry_the_policy_their_manifests_record():
    from training.data import dataset_info

    assert DEFAULT_RESIZE.to_dict() == {
        "downscale": "area",
        "upscale": "bicubic",
        "aspect": "letterbox",
        "background": 0,
        "fit": "frame",
        "polarity": "as-is",
    }
    assert dataset_info("digits").resize == ResizePolicy(fit="content", polarity="auto")
    assert dataset_info("cifar10").resize == DEFAULT_RESIZE


CONTENT = ResizePolicy(fit="content", polarity="auto")


def _small_digit_on_a_large_canvas(ink: int = 255, paper: int = 0) -> Image.Image:
    canvas = np.full((200, 200), paper, dtype=np.uint8)
    canvas[60:140, 90:130] = ink  # 80 rows x 40 columns of ink, off centre, with wide margins
    return Image.fromarray(canvas, "L")


def test_content_fit_crops_to_the_ink_and_fills_the_frame_like_the_digits():
    out = np.asarray(resize_image(_small_digit_on_a_large_canvas(), 8, 8, CONTENT))
    # 80 x 40 of ink becomes 8 x 4, centred: every row is used, as in every training digit
    assert (out[:, 2:6] == 255).all() and (out[:, :2] == 0).all() and (out[:, 6:] == 0).all()
    framed = np.asarray(resize_image(_small_digit_on_a_large_canvas(), 8, 8))
    assert (framed[0] == 0).all()  # without the content fit the margins stay


def test_black_ink_on_white_paper_is_inverted_to_the_training_polarity():
    drawn = _small_digit_on_a_large_canvas(ink=20, paper=245)
    out = np.asarray(resize_image(drawn, 8, 8, CONTENT))
    assert (out[:, 2:6] == 235).all() and (out[:, :2] == 0).all()
    assert np.asarray(resize_image(drawn, 8, 8, ResizePolicy(fit="content")))[0, 0] == 245  # as-is keeps it


def test_blank_and_faint_images_are_not_cropped_to_their_noise():
    faint = np.random.default_rng(4).integers(0, 20, (50, 50), dtype=np.uint8)  # under a tenth of full scale
    out = resize_image(Image.fromarray(faint, "L"), 8, 8, CONTENT)
    assert np.array_equal(np.asarray(out), np.asarray(resize_image(Image.fromarray(faint, "L"), 8, 8)))
    assert np.asarray(resize_image(Image.new("L", (30, 30), 0), 8, 8, CONTENT)).max() == 0


def test_an_image_at_the_model_size_is_taken_as_it_is():
    digit = np.zeros((8, 8), np.uint8)
    digit[2:5, 0:2] = 255
    assert np.array_equal(np.asarray(resize_image(Image.fromarray(digit, "L"), 8, 8, CONTENT)), digit)


def test_a_digit_sent_large_reaches_the_model_as_its_own_pixels():
    """Nearest-neighbour upscaling by a whole factor, then area averaging, is the identity."""
    digit = np.random.default_rng(3).integers(0, 256, (8, 8), dtype=np.uint8)
    large = np.asarray(Image.fromarray(digit, "L").resize((200, 200), Image.Resampling.NEAREST))
    tensor = preprocess(png_bytes(large), GREY_8, ImageLimits(max_pixels=1_000_000))
    assert np.array_equal(tensor[0], digit.astype(np.float32) / np.float32(255))


def _area_average_by_fractions(pixels: np.ndarray, width: int, height: int) -> list[list[Fraction]]:
    """Area averaging worked out in exact rationals, one output pixel at a time: each input pixel
    weighted by the share of it the output pixel's span covers."""
    old_height, old_width = pixels.shape
    out = []
    for row in range(height):
        top, bottom = Fraction(row * old_height, height), Fraction((row + 1) * old_height, height)
        out.append([])
        for column in range(width):
            left, right = Fraction(column * old_width, width), Fraction((column + 1) * old_width, width)
            total = Fraction(0)
            for i in range(old_height):
                rows = min(bottom, i + 1) - max(top, i)
                for j in range(old_width):
                    columns = min(right, j + 1) - max(left, j)
                    if rows > 0 and columns > 0:
                        total += int(pixels[i, j]) * rows * columns
            out[-1].append(total / ((bottom - top) * (right - left)))
    return out


def test_area_averaging_is_the_exact_average_rounded():
    """Every output pixel is its exact area average rounded to the nearest grey level; at an exact
    tie (x.5) the float sums' last bit picks the neighbour, which is left as it was measured."""
    rng = np.random.default_rng(5)
    ties = 0
    for _ in range(30):
        old_height, old_width = rng.integers(2, 14, 2)
        height, width = rng.integers(1, old_height + 1), rng.integers(1, old_width + 1)
        pixels = rng.integers(0, 256, (old_height, old_width), dtype=np.uint8)
        got = np.asarray(area_resize(Image.fromarray(pixels, "L"), width, height))
        for row, values in enumerate(_area_average_by_fractions(pixels, width, height)):
            for column, exact in enumerate(values):
                if exact - int(exact) == Fraction(1, 2):
                    ties += 1
                    assert got[row, column] in (int(exact), int(exact) + 1)
                else:
                    assert got[row, column] == round(exact), (pixels.shape, width, height, row, column)
    assert ties > 0  # the check above met ties too


def test_resizing_a_large_image_takes_memory_for_a_band_not_the_image():
    """A 4096 x 4096 image (16 MiB as bytes, 128 MiB as floats) to 28 x 28, content fit and
    polarity included: the arrays numpy allocates along the way stay within a few bands."""
    large = Image.fromarray(np.random.default_rng(7).integers(0, 256, (4096, 4096), dtype=np.uint8), "L")
    tracemalloc.start()
    try:
        resize_image(large, 28, 28, ResizePolicy(fit="content", polarity="auto"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak / 2**20
