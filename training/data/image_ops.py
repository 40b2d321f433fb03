"""The image operations of AutoAugment and RandAugment, on PIL images, with their magnitude scales.

Each operation takes a PIL image (grey or RGB, 8 bits) and a signed magnitude in the operation's
own unit (a shear factor, pixels, degrees, an enhancement offset, bits, a threshold) and returns
a new image. Geometric ones fill uncovered pixels with black, as the policies' reference
implementations do, and sample nearest neighbours, so pixel values stay those of the image.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageEnhance, ImageOps

ImageOp = Callable[[Image.Image, float], Image.Image]


def _affine(image: Image.Image, coefficients: tuple[float, ...]) -> Image.Image:
    """Output pixel (x, y) takes the input at (a x + b y + c, d x + e y + f)."""
    return image.transform(
        image.size,
        Image.Transform.AFFINE,
        coefficients,
        resample=Image.Resampling.NEAREST,
        fillcolor=0 if image.mode == "L" else (0,) * len(image.getbands()),
    )


def shear_x(image: Image.Image, factor: float) -> Image.Image:
    """Row y moves ``factor * y`` pixels left; row 0 stays (PIL maps pixel centres, hence -factor/2).

    Args:
        image: A grey or RGB 8-bit image.
        factor: The shear factor, signed.

    Returns:
        The sheared image, uncovered pixels black.
    """
    return _affine(image, (1.0, factor, -0.5 * factor, 0.0, 1.0, 0.0))


def shear_y(image: Image.Image, factor: float) -> Image.Image:
    """Column x moves ``factor * x`` pixels up; column 0 stays.

    Args:
        image: A grey or RGB 8-bit image.
        factor: The shear factor, signed.

    Returns:
        The sheared image, uncovered pixels black.
    """
    return _affine(image, (1.0, 0.0, 0.0, factor, 1.0, -0.5 * factor))


def translate_x(image: Image.Image, pixels: float) -> Image.Image:
    """Content moves ``pixels`` to the right (left when negative).

    Args:
        image: A grey or RGB 8-bit image.
        pixels: The shift, signed.

    Returns:
        The shifted image, uncovered pixels black.
    """
    return _affine(image, (1.0, 0.0, -pixels, 0.0, 1.0, 0.0))


def translate_y(image: Image.Image, pixels: float) -> Image.Image:
    """Content moves ``pixels`` down (up when negative).

    Args:
        image: A grey or RGB 8-bit image.
        pixels: The shift, signed.

    Returns:
        The shifted image, uncovered pixels black.
    """
    return _affine(image, (1.0, 0.0, 0.0, 0.0, 1.0, -pixels))


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """Counter-clockwise about the centre.

    Args:
        image: A grey or RGB 8-bit image.
        degrees: The angle, signed.

    Returns:
        The rotated image, uncovered pixels black.
    """
    return image.rotate(
        degrees,
        resample=Image.Resampling.NEAREST,
        fillcolor=0 if image.mode == "L" else (0,) * len(image.getbands()),
    )


def brightness(image: Image.Image, offset: float) -> Image.Image:
    """Blend with black by the factor 1 + offset (offset 0: unchanged).

    Args:
        image: A grey or RGB 8-bit image.
        offset: The enhancement offset, signed.

    Returns:
        The brightened (or darkened) image.
    """
    return ImageEnhance.Brightness(image).enhance(1.0 + offset)


def color(image: Image.Image, offset: float) -> Image.Image:
    """Blend with the grey image by 1 + offset: saturation.

    Args:
        image: A grey or RGB 8-bit image.
        offset: The enhancement offset, signed.

    Returns:
        The re-saturated image.
    """
    return ImageEnhance.Color(image).enhance(1.0 + offset)


def contrast(image: Image.Image, offset: float) -> Image.Image:
    """Blend with the image's mean grey by 1 + offset.

    Args:
        image: A grey or RGB 8-bit image.
        offset: The enhancement offset, signed.

    Returns:
        The image with more (or less) contrast.
    """
    return ImageEnhance.Contrast(image).enhance(1.0 + offset)


def sharpness(image: Image.Image, offset: float) -> Image.Image:
    """Blend with a smoothed copy by 1 + offset.

    Args:
        image: A grey or RGB 8-bit image.
        offset: The enhancement offset, signed.

    Returns:
        The sharpened (or softened) image.
    """
    return ImageEnhance.Sharpness(image).enhance(1.0 + offset)


def posterize(image: Image.Image, bits: float) -> Image.Image:
    """Keep the ``bits`` highest bits of every channel.

    Args:
        image: A grey or RGB 8-bit image.
        bits: Bits kept, 1..8 (truncated to a whole number).

    Returns:
        The posterized image.
    """
    return ImageOps.posterize(image, int(bits))


def solarize(image: Image.Image, threshold: float) -> Image.Image:
    """Invert every pixel value at or above ``threshold``.

    Args:
        image: A grey or RGB 8-bit image.
        threshold: The lowest value inverted (truncated to a whole number; 256 inverts none).

    Returns:
        The solarized image.
    """
    return ImageOps.solarize(image, int(threshold))


def auto_contrast(image: Image.Image, _: float = 0.0) -> Image.Image:
    """Stretch each channel so its darkest value becomes 0 and its brightest 255.

    Args:
        image: A grey or RGB 8-bit image.
        _: Unused: the operation has no magnitude.

    Returns:
        The stretched image.
    """
    return ImageOps.autocontrast(image)


def equalize(image: Image.Image, _: float = 0.0) -> Image.Image:
    """Flatten each channel's histogram.

    Args:
        image: A grey or RGB 8-bit image.
        _: Unused: the operation has no magnitude.

    Returns:
        The equalized image.
    """
    return ImageOps.equalize(image)


def invert(image: Image.Image, _: float = 0.0) -> Image.Image:
    """Replace every value v by 255 - v.

    Args:
        image: A grey or RGB 8-bit image.
        _: Unused: the operation has no magnitude.

    Returns:
        The negative image.
    """
    return ImageOps.invert(image)


def identity(image: Image.Image, _: float = 0.0) -> Image.Image:
    """Leave the image as it is (RandAugment's no-op).

    Args:
        image: A grey or RGB 8-bit image.
        _: Unused: the operation has no magnitude.

    Returns:
        A copy of the image.
    """
    return image.copy()


# name -> (operation, magnitude at the top of the scale for an image of side `side`, signed)
# The scales are the AutoAugment paper's: shear up to 0.3, translation up to 150/331 of the side,
# rotation up to 30 degrees, enhancements up to +-0.9, posterize down to 4 bits, solarize from 256.
OPERATIONS: dict[str, tuple[ImageOp, Callable[[int], float], bool]] = {
    "Identity": (identity, lambda side: 0.0, False),
    "ShearX": (shear_x, lambda side: 0.3, True),
    "ShearY": (shear_y, lambda side: 0.3, True),
    "TranslateX": (translate_x, lambda side: 150.0 / 331.0 * side, True),
    "TranslateY": (translate_y, lambda side: 150.0 / 331.0 * side, True),
    "Rotate": (rotate, lambda side: 30.0, True),
    "Brightness": (brightness, lambda side: 0.9, True),
    "Color": (color, lambda side: 0.9, True),
    "Contrast": (contrast, lambda side: 0.9, True),
    "Sharpness": (sharpness, lambda side: 0.9, True),
    "Posterize": (posterize, lambda side: 4.0, False),
    "Solarize": (solarize, lambda side: 256.0, False),
    "AutoContrast": (auto_contrast, lambda side: 0.0, False),
    "Equalize": (equalize, lambda side: 0.0, False),
    "Invert": (invert, lambda side: 0.0, False),
}


def magnitude(name: str, level: int, levels: int, side: int) -> float:
    """The operation's magnitude at ``level`` of ``levels`` bins (0 .. levels - 1), unsigned.

    Linear from 0 to the top of the scale, except Posterize (8 bits down to 4, rounded) and
    Solarize (threshold 256, nothing inverted, down to 0, everything inverted).

    Args:
        name: An operation of ``OPERATIONS``.
        level: The magnitude bin, 0 .. levels - 1.
        levels: The number of bins.
        side: The image's side in pixels (translations scale with it).

    Returns:
        The magnitude in the operation's own unit, before any sign.
    """
    top = OPERATIONS[name][1](side)
    fraction = level / (levels - 1) if levels > 1 else 0.0
    if name == "Posterize":
        return float(8 - round(fraction * top))
    if name == "Solarize":
        return top * (1.0 - fraction)
    return top * fraction
