"""scikit-learn's 8x8 handwritten digits with the project's fixed split (DESIGN.md).

test = samples whose index in ``load_digits()`` order satisfies i % 5 == 0 (360),
train = the rest (1,437). Values 0..16 are scaled to [0, 1] through the digit's 8-bit image
form, min(255, 16 v) / 255: a network then sees exactly the same numbers whether a digit comes
from this data set or as a PNG file over HTTP.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data.info import DatasetInfo

DIGITS_INFO = DatasetInfo(
    name="digits",
    input_shape=(1, 8, 8),
    labels=tuple(str(d) for d in range(10)),
    mean=(0.0,),  # pixels / 255 as they are: no per-channel shift
    std=(1.0,),
)


def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 8, 8] as raw 0..16 values and labels [N] for ``train`` or ``test``."""
    from sklearn.datasets import load_digits

    if split not in ("train", "test"):
        raise ValueError(f"digits has splits 'train' and 'test', not {split!r}")
    digits = load_digits()
    index = np.arange(len(digits.target))
    keep = index % 5 == 0 if split == "test" else index % 5 != 0
    return digits.images[keep], digits.target[keep]


def digit_to_png_pixels(raw: np.ndarray) -> np.ndarray:
    """A digit as the 8-bit grayscale image file DESIGN.md fixes: min(255, 16 * v)."""
    return np.minimum(255, np.round(raw * 16)).astype(np.uint8)


def shift_augment(image: torch.Tensor, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Light augmentation: a random translation of up to ``max_shift`` pixels, zero filled."""
    dy, dx = (torch.randint(-max_shift, max_shift + 1, (2,), generator=generator)).tolist()
    shifted = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    if dy > 0:
        shifted[..., :dy, :] = 0
    elif dy < 0:
        shifted[..., dy:, :] = 0
    if dx > 0:
        shifted[..., :, :dx] = 0
    elif dx < 0:
        shifted[..., :, dx:] = 0
    return shifted


class DigitsDataset(Dataset):
    info = DIGITS_INFO

    def __init__(self, split: str, augment: bool = False, seed: int = 0) -> None:
        images, labels = digits_split(split)
        self.images = torch.from_numpy(digit_to_png_pixels(images).astype(np.float32) / 255.0).unsqueeze(1)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.augment:
            image = shift_augment(image, self.generator)
        return image, int(self.labels[index])
