"""Grey image data sets held as the 8-bit pixels of their image files.

Keeping the file form (uint8 [N, H, W]) means a network sees exactly the numbers the service
computes from a PNG of the same image (both scale through ``normalize_pixels``), and that the
user-input augmentation (``image_augment.py``) works on what a user would have sent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.contract.images.model_input import InputSpec, normalize_pixels
from training.data.image_augment import UserInputAugmentation
from training.data.info import DatasetInfo
from training.data.samples import Sample


class PixelImages(Dataset[Sample]):
    """(float32 [1, H, W], label) per image.

    With ``augment``, training images go through ``UserInputAugmentation`` (settings from the
    config's ``augmentation`` mapping). Subclasses set the class attribute ``info``.

    Args:
        pixels: The image files' pixels, uint8 [N, H, W].
        labels: The class index of each image [N].
        augment: Augment every image read (training).
        seed: Seed of the augmentation's generator.
        augmentation: ``UserInputAugmentation`` settings; None or empty for its defaults.
    """

    info: DatasetInfo

    def __init__(
        self,
        pixels: np.ndarray,
        labels: np.ndarray,
        augment: bool = False,
        seed: int = 0,
        augmentation: dict[str, Any] | None = None,
    ) -> None:
        self.pixels = pixels  # uint8 [N, H, W], the image files' pixels
        self.spec = InputSpec.from_info(self.info)
        self.images = self._scale(pixels)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.augmentation = UserInputAugmentation.from_dict(augmentation or {}) if augment else None
        # A torch generator (not numpy's) so the trainer's checkpoints and loader workers reseed it.
        self.generator = torch.Generator().manual_seed(seed)

    def _scale(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 [..., H, W] -> float32 [..., 1, H, W] as the manifest's normalisation says."""
        return torch.from_numpy(normalize_pixels(pixels[..., None], self.spec))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.augmentation is None:
            return self.images[index], int(self.labels[index])
        seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        pixels = self.augmentation(self.pixels[index], np.random.default_rng(seed), self.info.resize)
        return self._scale(pixels), int(self.labels[index])
