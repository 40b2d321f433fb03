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
    size: int  # side in pixels of the square file
    colour: str = "grey"  # "grey" or "rgb"
    format: str = "png"  # "png" or "jpeg"
    quality: int | None = None  # JPEG quality
    upscale: str = "smooth"  # how the file was made from the small image: "smooth" or "nearest"
    background: str = "dark"  # "dark" as in the data set, or "white": the image inverted

    @property
    def name(self) -> str:
        encoding = f"jpeg q{self.quality}" if self.format == "jpeg" else "png"
        method = "" if self.upscale == "smooth" else f", {self.upscale}"
        background = "" if self.background == "dark" else f", {self.background} background"
        return f"{self.size} px {self.colour} {encoding}{method}{background}"

    def encode(self, pixels: np.ndarray) -> bytes:
        """uint8 [H, W] (grey, light on dark) -> the bytes of this form's file."""
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
    """Sizes 8, 16, 28, 64, 200 (and the model's own); grey and RGB; PNG and JPEG q50 / q90."""
    forms = []
    for size in sorted({native, 8, 16, 28, 64, 200}):
        for colour in ("grey", "rgb"):
            forms.append(InputForm(size, colour, "png"))
            for quality in (50, 90):
                forms.append(InputForm(size, colour, "jpeg", quality))
    return forms


# The acceptance forms for the digits model (smooth upscaling unless said).
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
    """An image file -> float32 [C, H, W], as the service preprocesses it (at its default limits)."""
    return to_model_input(decode_image(data, ImageLimits()), spec)


def typed_digits(
    size: int = 200, quality: int = 75, black_on_white: bool = False
) -> tuple[list[bytes], list[int]]:
    """Digits 0-9 typed in Pillow's built-in font, white on black (or black on white), 2 glyph
    sizes x 3 stroke widths each, with margins, as ``size`` px JPEGs: digits from outside the
    handwriting the model learned."""
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
