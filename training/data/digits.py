"""scikit-learn's 8x8 handwritten digits with the project's fixed split (DESIGN.md).

test = samples whose index in ``load_digits()`` order satisfies i % 5 == 0 (360),
train = the rest (1,437). Values 0..16 are scaled to [0, 1] through the digit's 8-bit image
form, min(255, 16 v) / 255: a network then sees exactly the same numbers whether a digit comes
from this data set or as a PNG file over HTTP.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.contract.images.resize import ResizePolicy
from training.data.info import DatasetInfo
from training.data.pixel_images import PixelImages

DIGITS_INFO = DatasetInfo(
    name="digits",
    input_shape=(1, 8, 8),
    labels=tuple(str(d) for d in range(10)),
    mean=(0.0,),  # pixels / 255 as they are: no per-channel shift
    std=(1.0,),
    # Files of other sizes are framed as the digits were: white ink on black, cropped to the ink
    # and scaled to fill the 8 rows (every one of the 1,797 digits spans all 8).
    resize=ResizePolicy(fit="content", polarity="auto"),
)


def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 8, 8] as raw 0..16 values and labels [N] for ``train`` or ``test``.

    Args:
        split: ``"train"`` or ``"test"``.

    Returns:
        The split's images and labels, in ``load_digits()`` order.

    Raises:
        ValueError: An unknown split.
    """
    from sklearn.datasets import load_digits

    if split not in ("train", "test"):
        raise ValueError(f"digits has splits 'train' and 'test', not {split!r}")
    digits = load_digits()
    index = np.arange(len(digits.target))
    keep = index % 5 == 0 if split == "test" else index % 5 != 0
    return digits.images[keep], digits.target[keep]


def digit_to_png_pixels(raw: np.ndarray) -> np.ndarray:
    """A digit as the 8-bit grayscale image file DESIGN.md fixes: min(255, 16 * v).

    Args:
        raw: Digit values 0..16, any shape.

    Returns:
        uint8 pixels of the same shape.
    """
    return np.minimum(255, np.round(raw * 16)).astype(np.uint8)


class DigitsDataset(PixelImages):
    """Digits as float32 [1, 8, 8] in [0, 1], optionally with user-input augmentation.

    Args:
        split: ``"train"`` or ``"test"``.
        augment: Augment every image read (training).
        seed: Seed of the augmentation's generator.
        augmentation: ``UserInputAugmentation`` settings; None or empty for its defaults.
    """

    info = DIGITS_INFO

    def __init__(
        self, split: str, augment: bool = False, seed: int = 0, augmentation: dict[str, Any] | None = None
    ) -> None:
        images, labels = digits_split(split)
        super().__init__(
            digit_to_png_pixels(images), labels, augment=augment, seed=seed, augmentation=augmentation
        )
