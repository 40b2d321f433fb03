"""Image files -> decoded Pillow images, each cost bounded before it is paid.

A file's size on the wire says nothing about what decoding it costs: a 16 KB PNG can hold
16 million pixels. So the header is read first (Pillow's ``open`` decodes no pixel data for the
formats accepted here) and the image is refused unless its pixel count, each side and its aspect
ratio are within ``ImageLimits``. Then it is decoded at full size: JPEG's reduced-scale decoding
(``draft``) would change the content crop, and so the answer, of many large photos
(docs/operations.md), for a cost that the bounded decoding threads already cap.

ICO is not accepted: Pillow decodes an ICO's largest entry inside ``open``, before any size can
be checked, and an entry may wrap a PNG of any size.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

# Decoded in-process by Pillow alone. Others (EPS through Ghostscript, for one) are not worth
# the attack surface for a classifier's input.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA")
# PNG text chunks are never read here; Pillow's defaults let one file inflate 64 MiB of them.
PNG_TEXT_CHUNK_BYTES = 1 << 20
PNG_TEXT_TOTAL_BYTES = 4 << 20

# EXIF orientations other than 1 (as stored): each needs a turn or a mirror.
UPRIGHT_TURNS = frozenset(range(2, 9))


class ImageRejected(ValueError):
    """An image file that is refused: empty, not an image, a format not accepted, damaged, or of
    an unreasonable shape.

    Args:
        message: what is wrong, for the client.
        code: a stable slug for clients (``undecodable_image`` unless more is known).
    """

    def __init__(self, message: str, code: str = "undecodable_image") -> None:
        super().__init__(message)
        self.code = code

    def prefixed(self, prefix: str) -> ImageRejected:
        """The same refusal, its message led by ``prefix``.

        Args:
            prefix: which image of several (``"image[2]: "``).

        Returns:
            A copy with the longer message and the same code.
        """
        error = copy.copy(self)
        error.args = (f"{prefix}{self}",)
        return error


class ImageTooLarge(ImageRejected):
    """More pixels, or a longer side, than the limits allow.

    Args:
        message: what is wrong, for the client.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, "image_too_large")


@dataclass(frozen=True)
class ImageLimits:
    """The largest image that is decoded.

    Attributes:
        max_pixels: width times height.
        max_side: the longer side, in pixels.
        max_aspect_ratio: the longer side over the shorter.
    """

    max_pixels: int = 4096 * 4096
    max_side: int = 8192
    max_aspect_ratio: float = 32.0

    def check(self, width: int, height: int) -> None:
        """Refuse an image of this size unless it is within the limits.

        Args:
            width: the image's width in pixels.
            height: the image's height in pixels.

        Raises:
            ImageTooLarge: too many pixels, or a side too long.
            ImageRejected: sides too unequal (code ``image_aspect_ratio``).
        """
        if width * height > self.max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} pixels; at most {self.max_pixels} pixels are accepted"
            )
        if max(width, height) > self.max_side:
            raise ImageTooLarge(f"image is {width}x{height} pixels; each side may be at most {self.max_side}")
        if max(width, height) > self.max_aspect_ratio * min(width, height):
            raise ImageRejected(
                f"image is {width}x{height} pixels; its sides may differ by a factor of at most "
                f"{self.max_aspect_ratio:g}",
                "image_aspect_ratio",
            )


def configure_pillow(max_pixels: int) -> None:
    """Pillow's own limits, which are process-wide: set once when a service starts, not per
    request (changing them, or warning filters, from request threads would race).

    Its decompression-bomb check becomes the service's pixel cap, a backstop behind
    ``ImageLimits.check``; the warning it gives between one and two times the cap is silenced,
    since that check refuses those images right after ``open`` anyway.

    Args:
        max_pixels: the most pixels an image may have.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    PngImagePlugin.MAX_TEXT_CHUNK = PNG_TEXT_CHUNK_BYTES
    PngImagePlugin.MAX_TEXT_MEMORY = PNG_TEXT_TOTAL_BYTES
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def read_header(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open ``data`` without decoding its pixels, and refuse it unless within ``limits``.

    Args:
        data: the image file's bytes.
        limits: the largest image accepted.

    Returns:
        The opened, not yet decoded, image.

    Raises:
        ImageRejected: empty, not an image in an accepted format, damaged, or outside
            ``limits`` (``ImageTooLarge`` where it is too large).
    """
    if not data:
        raise ImageRejected("the image is empty", "empty_image")
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image has more than {limits.max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise ImageRejected(
            f"the data is not an image in an accepted format ({', '.join(IMAGE_FORMATS)})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageRejected(f"the image could not be decoded ({error})") from None
    limits.check(*image.size)
    return image


def decode_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Decode the first frame of ``data``, once its header is within ``limits``, upright by its
    EXIF orientation.

    Args:
        data: the image file's bytes.
        limits: the largest image accepted.

    Returns:
        The decoded image, in the file's own mode, turned or mirrored as its EXIF says.

    Raises:
        ImageRejected: as ``read_header``, or the pixel data is damaged.
    """
    image = read_header(data, limits)
    try:
        image.seek(0)
        image.load()
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image has more than {limits.max_pixels} pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageRejected(f"the image could not be decoded ({error})") from None
    return _upright(image)


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says, so that a phone photo stored on its side is
    classified (and learnt) the way people see it. Training and serving both decode here."""
    try:
        if image.getexif().get(ExifTags.Base.Orientation, 1) in UPRIGHT_TURNS:
            ImageOps.exif_transpose(image, in_place=True)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        pass  # a damaged EXIF block: the pixels are fine, read as stored
    return image
