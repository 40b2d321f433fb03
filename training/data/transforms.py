"""Image preprocessing shared by the on-disk data sets: normalisation and training augmentation.

Augmentations work on uint8 images [C, H, W] before normalisation, as torchvision's do, so the
zero padding of a random crop is a black pixel whatever the data set's mean.

The crop and flip are pure torch; the paper's policies (AutoAugment with the CIFAR-10 policy for
CIFAR-10/100, RandAugment for Tiny-ImageNet) are the project's own (``augment_policies.py``,
Pillow), so they run wherever training runs. All draw from one explicit ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from training.data.augment_policies import AutoAugment, RandAugment

ImageTransform = Callable[[torch.Tensor], torch.Tensor]

AUTOAUGMENT_DATASETS = ("cifar10", "cifar100")
RANDAUGMENT_DATASETS = ("tiny-imagenet",)


def normalize(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 [C, H, W] -> float32 (pixel / 255 - mean) / std per channel.

    Args:
        image: uint8 [C, H, W].
        mean: One mean per channel, on the [0, 1] scale.
        std: One standard deviation per channel, on the [0, 1] scale.

    Returns:
        float32 [C, H, W].
    """
    scaled = image.to(torch.float32) / 255.0
    mean_column = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_column = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (scaled - mean_column) / std_column


def random_crop(image: torch.Tensor, generator: torch.Generator, padding: int) -> torch.Tensor:
    """Pad every side with ``padding`` zeros, then cut a window of the original size at random.

    Args:
        image: [..., H, W].
        generator: Where the window's position is drawn from.
        padding: Zeros added on each side.

    Returns:
        [..., H, W], shifted by up to ``padding`` pixels each way.
    """
    height, width = image.shape[-2:]
    padded = F.pad(image, (padding, padding, padding, padding))
    top, left = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
    return padded[..., top : top + height, left : left + width]


def random_horizontal_flip(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror left-right with probability 1/2.

    Args:
        image: [..., H, W].
        generator: Where the coin is drawn from.

    Returns:
        The image, mirrored or as it was.
    """
    if torch.rand((), generator=generator).item() < 0.5:
        return image.flip(-1)
    return image


def paper_policy(dataset_name: str) -> AutoAugment | RandAugment:
    """The paper's augmentation policy for ``dataset_name``.

    Args:
        dataset_name: A registry name: AutoAugment for CIFAR-10/100, RandAugment for Tiny-ImageNet.

    Returns:
        The policy, callable as ``policy(image, generator)``.

    Raises:
        ValueError: The data set has no policy.
    """
    if dataset_name in AUTOAUGMENT_DATASETS:
        return AutoAugment()
    if dataset_name in RANDAUGMENT_DATASETS:
        return RandAugment()
    raise ValueError(f"no augmentation policy for dataset {dataset_name!r}")


def train_transform(dataset_name: str, generator: torch.Generator) -> ImageTransform:
    """Training augmentation for a uint8 image [C, H, W]: random crop, flip, then the paper's policy.

    The crop pads by an eighth of the side: 4 pixels at 32x32 as in the usual CIFAR recipe,
    8 at 64x64 for Tiny-ImageNet. The returned callable advances ``generator`` on every call.

    Args:
        dataset_name: A data set with a policy (``paper_policy``).
        generator: Where every random choice is drawn from.

    Returns:
        The augmentation, uint8 [C, H, W] -> uint8 [C, H, W].
    """
    policy = paper_policy(dataset_name)

    def augment(image: torch.Tensor) -> torch.Tensor:
        image = random_crop(image, generator, padding=image.shape[-1] // 8)
        image = random_horizontal_flip(image, generator)
        return policy(image, generator)

    return augment
