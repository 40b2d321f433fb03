"""Training augmentation that mirrors what users send an image model: photos and scans of any
size, resampled, slightly blurred, noisy, unevenly lit and compressed.

Each sample passes, each with its own probability, through: an optional left-right mirror, a
geometric change (rotation, scale, shift and a gentle elastic warp, computed at a higher working
resolution so an 8x8 digit is not torn apart), blur (Gaussian or along a line), tone
(brightness, contrast, uneven lighting), noise (Gaussian and salt-and-pepper), and a size round
trip (up or down to a random size with a random filter, optionally saved as JPEG there, then back
through the service's own resize function) or a JPEG at the model's size.

These are our own implementations and parameter ranges, deliberately not the 15 corruptions of
``training.robustness``: those stay a held-out measure. Randomness comes only from the
``np.random.Generator`` passed in, so a sample's augmentation is a pure function of (image, seed).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image

from training.contract.images.resize import DEFAULT_RESIZE, FILTERS, ResizePolicy, area_resize, resize_image
from training.contract.known_fields import refuse_unknown

Range = tuple[float, float]


@dataclass(frozen=True)
class UserInputAugmentation:
    """Probabilities (``*_p``) and ranges; strengths are relative to the model's image side.

    Attributes:
        flip_p: Left-right mirror, drawn apart from ``apply_p`` (products, not digits, have
            mirror images).
        apply_p: Share of samples augmented at all; the rest stay clean, so clean accuracy is
            still trained for.
        geometry_p: Rotation, scale, shift and elastic warp.
        rotation_degrees: Largest rotation either way.
        scale: Range of the scale factor.
        shift: Largest shift, fraction of the side, each axis.
        elastic: Displacement at the coarse grid points, fraction of the side.
        blur_p: Blur.
        blur_sigma: Range of the Gaussian blur's sigma, model pixels.
        line_blur_p: Share of blurs along a line instead of Gaussian.
        line_blur_length: Range of the line's length, model pixels.
        tone_p: Contrast, brightness and uneven lighting.
        contrast: Range of the contrast factor.
        brightness: Range of the brightness offset, fraction of full scale.
        lighting: Peak of a smooth uneven-lighting field, fraction of full scale.
        noise_p: Gaussian noise.
        noise_sigma: Range of its standard deviation, fraction of full scale.
        salt_pepper_p: Salt-and-pepper noise.
        salt_pepper_amount: Range of the share of pixels it hits.
        round_trip_p: A size round trip (``round_trip``).
        round_trip_scale: Range of the intermediate side over the model's side.
        jpeg_p: JPEG compression (at the model's size, or at the round trip's larger size).
        jpeg_quality: Range of the JPEG quality, both ends included.
    """

    flip_p: float = 0.0
    apply_p: float = 0.85
    geometry_p: float = 0.6
    rotation_degrees: float = 12.0
    scale: Range = (0.85, 1.15)
    shift: float = 0.1
    elastic: float = 0.04
    blur_p: float = 0.3
    blur_sigma: Range = (0.3, 1.0)
    line_blur_p: float = 0.3
    line_blur_length: Range = (1.5, 4.0)
    tone_p: float = 0.35
    contrast: Range = (0.25, 1.3)
    brightness: Range = (-0.3, 0.3)
    lighting: float = 0.35
    noise_p: float = 0.3
    noise_sigma: Range = (0.02, 0.2)
    salt_pepper_p: float = 0.15
    salt_pepper_amount: Range = (0.01, 0.06)
    round_trip_p: float = 0.4
    round_trip_scale: Range = (0.5, 8.0)
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (20, 95)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UserInputAugmentation:
        """Settings from a config mapping (ranges as lists), checked.

        Args:
            values: Fields to change from their defaults.

        Returns:
            The settings.

        Raises:
            ValueError: An unknown field, a probability outside [0, 1], or a range that is not
                [low, high].
        """
        refuse_unknown(values, cls, "augmentation settings", show_known=True)
        converted: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
        }
        augmentation = cls(**converted)
        for field in fields(cls):
            value = getattr(augmentation, field.name)
            if field.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ValueError(f"augmentation {field.name} must be a probability in [0, 1], not {value}")
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"augmentation {field.name} must be a range [low, high], not {list(value)}")
        return augmentation

    def to_dict(self) -> dict[str, Any]:
        """The settings as a config mapping (ranges as lists).

        Returns:
            Every field, by name.
        """
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()
        }

    def __call__(
        self, pixels: np.ndarray, rng: np.random.Generator, resize: ResizePolicy = DEFAULT_RESIZE
    ) -> np.ndarray:
        """uint8 [H, W] or [H, W, C] -> an augmented uint8 image of the same shape.

        Args:
            pixels: uint8 [H, W] or [H, W, C].
            rng: Where every random choice is drawn from.
            resize: The model's resize policy, which brings the larger files of a size round
                trip back.

        Returns:
            The augmented uint8 image, shaped as ``pixels``.
        """
        # Drawn only when enabled, so configs without it keep their random streams.
        if self.flip_p and rng.random() < self.flip_p:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
        if rng.random() >= self.apply_p:
            return pixels
        image = pixels.astype(np.float64).reshape(pixels.shape[0], pixels.shape[1], -1)
        if rng.random() < self.geometry_p:
            image = warp(image, rng, self)
        if rng.random() < self.blur_p:
            if rng.random() < self.line_blur_p:
                image = convolve(
                    image, line_kernel(rng.uniform(*self.line_blur_length), rng.uniform(0, math.pi))
                )
            else:
                image = convolve(image, gaussian_kernel(rng.uniform(*self.blur_sigma)))
        if rng.random() < self.tone_p:
            image = tone(image, rng, self)
        if rng.random() < self.noise_p:
            image = (
                image + rng.normal(0.0, rng.uniform(*self.noise_sigma) * 255.0, image.shape[:2])[..., None]
            )
        if rng.random() < self.salt_pepper_p:
            image = salt_and_pepper(image, rng, rng.uniform(*self.salt_pepper_amount))
        result = to_uint8(image)
        if rng.random() < self.round_trip_p:
            result = round_trip(result, rng, self, resize)
        elif rng.random() < self.jpeg_p:
            result = jpeg(result, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return result.reshape(pixels.shape)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255.

    Args:
        image: Pixel values on the 0..255 scale, any shape.

    Returns:
        uint8 of the same shape.
    """
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _pil(pixels: np.ndarray) -> Image.Image:
    """uint8 [H, W, 1 or 3] as a Pillow image ("L" or "RGB")."""
    return Image.fromarray(
        pixels[..., 0] if pixels.shape[-1] == 1 else pixels, "L" if pixels.shape[-1] == 1 else "RGB"
    )


def _array(image: Image.Image) -> np.ndarray:
    """A Pillow image as uint8 [H, W, C]."""
    return np.asarray(image, dtype=np.uint8).reshape(image.size[1], image.size[0], -1)


def bilinear_sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """image [H, W, C] read at fractional (rows, cols); points outside the image read ``fill``.

    Args:
        image: float [H, W, C].
        rows: Row coordinates, any shape S.
        cols: Column coordinates, shape S.
        fill: The value outside the image.

    Returns:
        float [*S, C], bilinearly interpolated.
    """
    height, width = image.shape[:2]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), constant_values=fill)
    rows = np.clip(rows + 1, 0, height + 1 - 1e-9)
    cols = np.clip(cols + 1, 0, width + 1 - 1e-9)
    top, left = np.floor(rows).astype(int), np.floor(cols).astype(int)
    bottom, right = np.minimum(top + 1, height + 1), np.minimum(left + 1, width + 1)
    fy, fx = (rows - top)[..., None], (cols - left)[..., None]
    sampled: np.ndarray = (1 - fy) * ((1 - fx) * padded[top, left] + fx * padded[top, right]) + fy * (
        (1 - fx) * padded[bottom, left] + fx * padded[bottom, right]
    )
    return sampled


def warp(image: np.ndarray, rng: np.random.Generator, settings: UserInputAugmentation) -> np.ndarray:
    """Rotation, scale, shift and a smooth elastic displacement, at a working resolution of at
    least 32 pixels a side, brought back to the image's size by area averaging.

    Args:
        image: float [H, W, C] on the 0..255 scale.
        rng: Where every random choice is drawn from.
        settings: The ranges of the warp.

    Returns:
        The warped float [H, W, C].
    """
    height, width, _ = image.shape
    factor = max(1, math.ceil(32 / min(height, width)))
    big = _array(_pil(to_uint8(image)).resize((width * factor, height * factor), Image.Resampling.BICUBIC))
    big = big.astype(np.float64)
    big_h, big_w = big.shape[:2]
    angle = math.radians(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees))
    scale = rng.uniform(*settings.scale)
    shift_y, shift_x = rng.uniform(-settings.shift, settings.shift, 2) * np.array([big_h, big_w])
    rows, cols = np.mgrid[0:big_h, 0:big_w].astype(np.float64)
    centre_y, centre_x = (big_h - 1) / 2, (big_w - 1) / 2
    dy, dx = rows - centre_y - shift_y, cols - centre_x - shift_x
    # Inverse mapping: where each output pixel comes from in the input.
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    source_y = centre_y + cos * dy - sin * dx
    source_x = centre_x + sin * dy + cos * dx
    if settings.elastic > 0:
        grid = rng.normal(0.0, settings.elastic, (2, 3, 3)) * np.array([big_h, big_w]).reshape(2, 1, 1)
        for axis, source in enumerate((source_y, source_x)):
            field = Image.fromarray(grid[axis].astype(np.float32), "F").resize(
                (big_w, big_h), Image.Resampling.BICUBIC
            )
            source += np.asarray(field, dtype=np.float64)
    warped = bilinear_sample(big, source_y, source_x, fill=0.0)
    return _array(area_resize(_pil(to_uint8(warped)), width, height)).astype(np.float64)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian out to 2.5 sigma (at least 3x3).

    Args:
        sigma: The standard deviation in pixels.

    Returns:
        The kernel, summing to 1.
    """
    radius = max(1, int(math.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = np.outer(taps, taps)
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A centred line segment of ``length`` pixels at ``angle``, drawn with bilinear weights.

    Args:
        length: The segment's length in pixels.
        angle: Its direction in radians.

    Returns:
        The kernel, summing to 1.
    """
    radius = int(math.ceil(length / 2))
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1))
    for t in np.linspace(-length / 2, length / 2, max(2, int(length * 4))):
        y, x = radius + t * math.sin(angle), radius + t * math.cos(angle)
        top, left = int(math.floor(y)), int(math.floor(x))
        fy, fx = y - top, x - left
        for row, col, weight in (
            (top, left, (1 - fy) * (1 - fx)),
            (top, left + 1, (1 - fy) * fx),
            (top + 1, left, fy * (1 - fx)),
            (top + 1, left + 1, fy * fx),
        ):
            if 0 <= row < kernel.shape[0] and 0 <= col < kernel.shape[1]:
                kernel[row, col] += weight
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel with a small odd-sized kernel, edges extended.

    Args:
        image: float [H, W, C].
        kernel: [h, w], both odd.

    Returns:
        float [H, W, C].
    """
    radius_y, radius_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    height, width = image.shape[:2]
    padded = np.pad(image, ((radius_y, radius_y), (radius_x, radius_x), (0, 0)), mode="edge")
    out = np.zeros_like(image)
    for (i, j), weight in np.ndenumerate(kernel):
        if weight:
            out += weight * padded[i : i + height, j : j + width]
    return out


def tone(image: np.ndarray, rng: np.random.Generator, settings: UserInputAugmentation) -> np.ndarray:
    """Contrast about the image's mean, a brightness offset and a smooth lighting gradient.

    Args:
        image: float [H, W, C] on the 0..255 scale.
        rng: Where every random choice is drawn from.
        settings: The ranges of the changes.

    Returns:
        The changed float [H, W, C].
    """
    height, width = image.shape[:2]
    mean = image.mean()
    image = (
        (image - mean) * rng.uniform(*settings.contrast) + mean + rng.uniform(*settings.brightness) * 255.0
    )
    if settings.lighting > 0:
        coarse = rng.uniform(-1.0, 1.0, (2, 2)).astype(np.float32)
        field = np.asarray(Image.fromarray(coarse, "F").resize((width, height), Image.Resampling.BILINEAR))
        image = image + (field * rng.uniform(0, settings.lighting) * 255.0)[..., None]
    return image


def salt_and_pepper(image: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Set a random share of the pixels, all channels, to black or white with even odds.

    Args:
        image: float [H, W, C] on the 0..255 scale.
        rng: Where every random choice is drawn from.
        amount: The expected share of pixels hit.

    Returns:
        A changed copy.
    """
    hit = rng.random(image.shape[:2]) < amount
    salt = rng.random(image.shape[:2]) < 0.5
    image = image.copy()
    image[hit & salt] = 255.0
    image[hit & ~salt] = 0.0
    return image


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Save as JPEG and decode again.

    Args:
        pixels: uint8 [H, W, 1 or 3].
        quality: The JPEG quality, 1..95.

    Returns:
        The decoded uint8 [H, W, C].
    """
    buffer = io.BytesIO()
    _pil(pixels).save(buffer, "JPEG", quality=quality)
    return _array(Image.open(io.BytesIO(buffer.getvalue())).convert(_pil(pixels).mode))


def round_trip(
    pixels: np.ndarray,
    rng: np.random.Generator,
    settings: UserInputAugmentation,
    resize: ResizePolicy = DEFAULT_RESIZE,
) -> np.ndarray:
    """To a random size and back, as a file made at another resolution.

    Larger: upscaled with a random filter (optionally saved as JPEG there), then brought back by
    the model's own resize policy, as the service would. Smaller: a thumbnail (area downscale)
    enlarged back to the model's size with a random filter by the user's own tool.

    Args:
        pixels: uint8 [H, W, 1 or 3].
        rng: Where every random choice is drawn from.
        settings: The ranges of the intermediate size and the JPEG settings.
        resize: The model's resize policy.

    Returns:
        uint8 [H, W, C].
    """
    height, width = pixels.shape[:2]
    ratio = math.exp(
        rng.uniform(math.log(settings.round_trip_scale[0]), math.log(settings.round_trip_scale[1]))
    )
    size = (max(2, round(width * ratio)), max(2, round(height * ratio)))
    method = ("nearest", "bilinear", "bicubic")[int(rng.integers(0, 3))]
    image = _pil(pixels)
    if size[0] >= width:
        image = image.resize(size, FILTERS[method])
        if rng.random() < settings.jpeg_p:
            image = _pil(
                jpeg(_array(image), int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1)))
            )
        image = resize_image(image, width, height, resize)
    else:
        image = area_resize(image, *size).resize((width, height), FILTERS[method])
    return _array(image)
