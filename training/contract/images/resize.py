"""Resizing an image of any size to the model's input size, by a policy the manifest records.

Downscaling averages areas: each output pixel is the mean of the input area it covers, input
pixels cut by its border counted by the share inside (what OpenCV calls INTER_AREA; Pillow's
box filter only matches it at whole factors). That is how scikit-learn's digits were made
(32x32 bitmaps counted in 4x4 blocks) and what image libraries do for thumbnails, so a digit
drawn large and sent as a photo lands on the numbers the network was trained on.
Upscaling interpolates smoothly (bicubic). ``letterbox`` keeps the aspect ratio: the image is
scaled to fit and centred on the background value, as a classifier's users expect; ``stretch``
scales each axis on its own.

Two optional steps repeat how a data set framed its images, for files that come at another
size (an image already at the model's size is taken as framed like the training data):
``polarity="auto"`` inverts an image whose border lies on the far side of mid-grey from the
background (black ink on white paper for a model trained on white on black), and
``fit="content"`` crops to the bounding box of the pixels that stand out from the background
(by at least a fifth of the strongest, and a tenth of full scale) before letterboxing, as the
digits (and Fashion-MNIST's products) were cropped to their content and scaled to fill the box.

A manifest without a ``resize`` field is served with ``LEGACY_RESIZE``, a bilinear stretch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from training.contract.known_fields import refuse_unknown

FILTERS = {
    "area": Image.Resampling.BOX,  # Pillow's stand-in where a library filter is asked for; see area_resize
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}
ASPECTS = ("letterbox", "stretch")
FITS = ("frame", "content")
POLARITIES = ("as-is", "auto")
CONTENT_SHARE_OF_PEAK = (
    0.2  # a content pixel differs from the background by this share of the largest difference
)
CONTENT_MIN_DIFFERENCE = (
    25.5  # and by at least a tenth of full scale: a blank image is not cropped to its noise
)
BAND_ROWS = 256  # area averaging reads the input this many rows at a time


@dataclass(frozen=True)
class ResizePolicy:
    """How an image of any size becomes the model's input size.

    Attributes:
        downscale: the filter for an axis that shrinks (a key of ``FILTERS``).
        upscale: the filter for an axis that grows (a key of ``FILTERS``).
        aspect: ``letterbox`` (keep the aspect ratio, pad) or ``stretch``.
        background: the 8-bit value of the letterbox bands, in every channel.
        fit: ``frame`` (the whole image) or ``content`` (crop to what stands out first).
        polarity: ``as-is`` or ``auto`` (invert images whose border is far from the background).

    Raises:
        ValueError: a value outside those listed.
    """

    downscale: str = "area"  # filter for an axis that shrinks
    upscale: str = "bicubic"  # filter for an axis that grows
    aspect: str = "letterbox"  # or "stretch"
    background: int = 0  # 8-bit value of the letterbox bands (every channel)
    fit: str = "frame"  # or "content": crop to what stands out from the background first
    polarity: str = "as-is"  # or "auto": invert images whose border is far from the background

    def __post_init__(self) -> None:
        for role in ("downscale", "upscale"):
            if getattr(self, role) not in FILTERS:
                raise ValueError(
                    f"resize {role} filter must be one of {sorted(FILTERS)}, not {getattr(self, role)!r}"
                )
        if self.aspect not in ASPECTS:
            raise ValueError(f"resize aspect must be one of {list(ASPECTS)}, not {self.aspect!r}")
        if self.fit not in FITS:
            raise ValueError(f"resize fit must be one of {list(FITS)}, not {self.fit!r}")
        if self.polarity not in POLARITIES:
            raise ValueError(f"resize polarity must be one of {list(POLARITIES)}, not {self.polarity!r}")
        if not 0 <= self.background <= 255:
            raise ValueError(f"resize background must be an 8-bit value, not {self.background}")

    def to_dict(self) -> dict[str, Any]:
        """The policy as the manifest records it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ResizePolicy:
        """The policy of a manifest's input spec.

        Args:
            values: the ``resize`` field; None where the manifest has none.

        Returns:
            The policy; ``LEGACY_RESIZE`` for None.

        Raises:
            ValueError: not a mapping, an unknown key or an invalid value.
        """
        if values is None:
            return LEGACY_RESIZE
        if not isinstance(values, dict):
            raise ValueError(f"resize policy must be a mapping, not {type(values).__name__}")
        refuse_unknown(values, cls, "resize policy keys")
        return cls(**values)


DEFAULT_RESIZE = ResizePolicy()
LEGACY_RESIZE = ResizePolicy(downscale="bilinear", upscale="bilinear", aspect="stretch")


def area_weights(old: int, new: int) -> npt.NDArray[np.float64]:
    """The weights of area averaging along one axis.

    Args:
        old: the input's length in pixels.
        new: the output's length in pixels.

    Returns:
        [new, old]: the share of output pixel o's span, [o, o + 1) * old / new, that input
        pixel i covers.
    """
    edges = np.arange(new + 1) * (old / new)
    starts, ends = edges[:-1, None], edges[1:, None]
    pixels = np.arange(old)[None, :]
    overlap = np.clip(np.minimum(ends, pixels + 1) - np.maximum(starts, pixels), 0.0, None)
    weights: npt.NDArray[np.float64] = overlap / (old / new)
    return weights


def area_resize(image: Image.Image, width: int, height: int) -> Image.Image:
    """Exact area averaging to ``width`` x ``height``.

    Rows first, a band of ``BAND_ROWS`` input rows at a time, each band read from the image as
    it is needed: the image is never held as floats, nor copied whole. Memory grows with the
    input's width (the service caps each side) and the output, not with the input's area. The
    band height is part of the result: in floats, an exact tie between two grey levels is
    rounded by the order of summation, so other bands would move a few pixels by one level, and
    some answers with them.

    Args:
        image: an image of mode L or RGB.
        width: the output's width, at most the input's.
        height: the output's height, at most the input's.

    Returns:
        The averaged image, in the input's mode.
    """
    old_width, old_height = image.size
    channels = len(image.getbands())
    rows = area_weights(old_height, height)
    reduced = np.zeros((height, old_width * channels))
    for start in range(0, old_height, BAND_ROWS):
        stop = min(old_height, start + BAND_ROWS)
        band = np.asarray(image.crop((0, start, old_width, stop)), dtype=np.uint8)
        reduced += rows[:, start:stop] @ band.reshape(stop - start, old_width * channels).astype(np.float64)
    averaged = np.einsum(
        "hwc,pw->hpc", reduced.reshape(height, old_width, channels), area_weights(old_width, width)
    )
    result = np.clip(np.round(averaged), 0, 255).astype(np.uint8)
    return Image.fromarray(result[..., 0] if channels == 1 else result, image.mode)


def _resize(image: Image.Image, width: int, height: int, method: str) -> Image.Image:
    if method == "area":
        return area_resize(image, width, height)
    return image.resize((width, height), FILTERS[method])


def _scale_axes(image: Image.Image, width: int, height: int, policy: ResizePolicy) -> Image.Image:
    """Scale to exactly width x height, each axis with the filter of its own direction."""
    old_width, old_height = image.size
    if (width, height) == (old_width, old_height):
        return image
    shrink_x, shrink_y = width <= old_width, height <= old_height
    if shrink_x == shrink_y:
        return _resize(image, width, height, policy.downscale if shrink_x else policy.upscale)
    # One axis grows and the other shrinks (a stretch of a very oblong image): one axis at a time.
    image = _resize(image, width, old_height, policy.downscale if shrink_x else policy.upscale)
    return _resize(image, width, height, policy.downscale if shrink_y else policy.upscale)


def match_polarity(image: Image.Image, background: int) -> Image.Image:
    """Invert ``image`` where its border lies on the far side of mid-grey from the background.

    Args:
        image: an image of mode L or RGB.
        background: the 8-bit background value the model was trained on.

    Returns:
        The negative of ``image`` if the median of its outermost pixels is nearer the opposite
        extreme than the background, else ``image``.
    """
    width, height = image.size
    edges = [
        image.crop(box)
        for box in (
            (0, 0, width, 1),
            (0, height - 1, width, height),
            (0, 0, 1, height),
            (width - 1, 0, width, height),
        )
    ]
    channels = len(image.getbands())
    border = np.concatenate([np.asarray(edge, dtype=np.uint8).reshape(-1, channels) for edge in edges]).mean(
        axis=-1
    )
    if abs(float(np.median(border)) - background) <= 127.5:
        return image
    return ImageOps.invert(image)


def crop_to_content(image: Image.Image, background: int) -> Image.Image:
    """The bounding box of the pixels that stand out from the background; the whole image when
    nothing does. In Pillow's C code, with one image-sized mask: the largest difference from the
    background comes from each band's extremes, and a pixel stands out when any of its bands
    does, which is what ``getbbox`` finds of the thresholded bands.

    Args:
        image: an image of mode L or RGB.
        background: the 8-bit background value the model was trained on.

    Returns:
        The cropped image, or ``image`` itself.
    """
    extremes = image.getextrema()
    # One band gives one (min, max) pair, several bands one pair each; Pillow's annotation
    # cannot tie the result to the mode.
    bands = cast(list[tuple[int, int]], [extremes] if isinstance(extremes[0], int) else list(extremes))
    peak = max(abs(value - background) for band in bands for value in band)
    threshold = max(CONTENT_MIN_DIFFERENCE, CONTENT_SHARE_OF_PEAK * peak)
    stands_out = [255 if abs(value - background) > threshold else 0 for value in range(256)]
    box = image.point(stands_out * len(bands)).getbbox(alpha_only=False)
    return image if box is None else image.crop(box)


def resize_image(
    image: Image.Image, width: int, height: int, policy: ResizePolicy = DEFAULT_RESIZE
) -> Image.Image:
    """``image`` at the model's input size, by a resize policy.

    Args:
        image: an image of mode L or RGB, of any size.
        width: the model's input width.
        height: the model's input height.
        policy: how to scale, frame and pad.

    Returns:
        The image at ``width`` x ``height``; ``image`` itself when it already is.
    """
    if image.size == (width, height):
        return image
    if policy.polarity == "auto":
        image = match_polarity(image, policy.background)
    if policy.fit == "content":
        image = crop_to_content(image, policy.background)
    if policy.aspect == "stretch":
        return _scale_axes(image, width, height, policy)
    old_width, old_height = image.size
    scale = min(width / old_width, height / old_height)
    fitted_width = min(width, max(1, round(old_width * scale)))
    fitted_height = min(height, max(1, round(old_height * scale)))
    fitted = _scale_axes(image, fitted_width, fitted_height, policy)
    if fitted.size == (width, height):
        return fitted
    fill = policy.background if image.mode == "L" else (policy.background,) * len(image.getbands())
    canvas = Image.new(image.mode, (width, height), fill)
    canvas.paste(fitted, ((width - fitted_width) // 2, (height - fitted_height) // 2))
    return canvas
