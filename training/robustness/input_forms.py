"""Image files as users send them: a test image at another size, in colour or grey, as PNG or as
JPEG at a given quality, made by smooth or nearest-neighbour upscaling, on the data set's dark
background or inverted onto white (ink on paper, a product shot in a shop).

    form = InputForm(size=64, colour="rgb", format="jpeg", quality=90)
    data = form.encode(pixels)            # uint8 [H, W] -> the file's bytes

numpy and Pillow only: the robustness benchmark sends these files to the service over HTTP, and
``decode_to_model_input`` reads them offline through the service's own preprocessing functions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.contract.images.decode import ImageLimits, decode_image
from training.contract.images.model_input import InputSpec, to_model_input

UPSCALE_FILTERS = {"smooth": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class InputForm:
    """One way a user's image file can look.

    Attributes:
        size: Side in pixels of the square file.
        colour: ``"grey"`` or ``"rgb"``.
        format: ``"png"`` or ``"jpeg"``.
        quality: JPEG quality.
        upscale: How the file was made from the small image: ``"smooth"`` or ``"nearest"``.
        background: ``"dark"`` as in the data set, or ``"white"``: the image inverted.
    """

    size: int
    colour: str = "grey"
    format: str = "png"
    quality: int | None = None
    upscale: str = "smooth"
    background: str = "dark"

    @property
    def name(self) -> str:
        """A short readable label, e.g. ``64 px rgb jpeg q90``."""
        encoding = f"jpeg q{self.quality}" if self.format == "jpeg" else "png"
        method = "" if self.upscale == "smooth" else f", {self.upscale}"
        background = "" if self.background == "dark" else f", {self.background} background"
        return f"{self.size} px {self.colour} {encoding}{method}{background}"

    def encode(self, pixels: np.ndarray) -> bytes:
        """uint8 [H, W] (grey, light on dark) -> the bytes of this form's file.

        Args:
            pixels: uint8 [H, W], light on dark.

        Returns:
            The file's bytes.
        """
        image = Image.fromarray(255 - pixels if self.background == "white" else pixels, "L")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), UPSCALE_FILTERS[self.upscale])
        if self.colour == "rgb":
            image = image.convert("RGB")
        buffer = io.BytesIO()
        if self.format == "jpeg":
            image.save(buffer, "JPEG", quality=self.quality)
        else:
            image.save(buffer, "PNG")
        return buffer.getvalue()


def standard_forms(native: int = 8) -> list[InputForm]:
    """Sizes 8, 16, 28, 64, 200 (and the model's own); grey and RGB; PNG and JPEG q50 / q90.

    Args:
        native: The model's own input side.

    Returns:
        Every combination, by size.
    """
    forms = []
    for size in sorted({native, 8, 16, 28, 64, 200}):
        for colour in ("grey", "rgb"):
            forms.append(InputForm(size, colour, "png"))
            for quality in (50, 90):
                forms.append(InputForm(size, colour, "jpeg", quality))
    return forms


# The forms the digits model is held to (tests/e2e/test_shipped_robustness.py); smooth upscaling
# unless said.
ACCEPTANCE_FORMS = (
    InputForm(28, "grey", "png"),
    InputForm(64, "rgb", "png"),
    InputForm(32, "grey", "jpeg", 75),
    InputForm(200, "grey", "jpeg", 75, upscale="nearest"),
)


# Shop thumbnails of garments: what the fashion-mnist model is asked in practice.
PRODUCT_PHOTO_FORMS = (
    InputForm(112, "rgb", "jpeg", 90),
    InputForm(112, "rgb", "jpeg", 90, background="white"),
)


def decode_to_model_input(data: bytes, spec: InputSpec) -> np.ndarray:
    """An image file -> float32 [C, H, W], as the service preprocesses it (at its default limits).

    Args:
        data: The file's bytes.
        spec: The model's input, from its manifest.

    Returns:
        float32 [C, H, W].
    """
    return to_model_input(decode_image(data, ImageLimits()), spec)


def typed_digits(
    size: int = 200, quality: int = 75, black_on_white: bool = False
) -> tuple[list[bytes], list[int]]:
    """Digits 0-9 typed in Pillow's built-in font, white on black (or black on white), 2 glyph
    sizes x 3 stroke widths each, with margins, as ``size`` px JPEGs: digits from outside the
    handwriting the model learned.

    Args:
        size: Side of the square files in pixels.
        quality: JPEG quality.
        black_on_white: Black digits on white instead of white on black.

    Returns:
        The files' bytes and their labels, six per digit.
    """
    from PIL import ImageDraw, ImageFont

    files, labels = [], []
    for digit in range(10):
        for glyph in (0.75, 0.95):
            font = ImageFont.load_default(size=round(glyph * size))
            for stroke in (0.02, 0.05, 0.08):
                image = Image.new("L", (size, size), 0)
                ImageDraw.Draw(image).text(
                    (size / 2, size / 2),
                    str(digit),
                    fill=255,
                    font=font,
                    anchor="mm",
                    stroke_width=round(stroke * size),
                    stroke_fill=255,
                )
                if black_on_white:
                    image = Image.eval(image, lambda value: 255 - value)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=quality)
                files.append(buffer.getvalue())
                labels.append(digit)
    return files, labels
