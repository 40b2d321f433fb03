"""Image preprocessing shared by the on-disk data sets: normalisation and training augmentation.

Augmentations work on uint8 images [C, H, W] before normalisation, as torchvision's do, so the
zero padding of a random crop is a black pixel whatever the data set's mean.

The crop and flip are pure torch and draw from an explicit ``torch.Generator``. The paper's
policies (AutoAugment with the CIFAR-10 policy for CIFAR-10/100, RandAugment for Tiny-ImageNet)
need torchvision and are added only where it imports; without it training falls back to crop and
flip alone. torchvision draws from the global torch RNG, so each policy call runs inside a forked
RNG seeded from the caller's generator: the result is reproducible from that generator and the
global RNG state is left exactly as it was.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Callable

import torch
import torch.nn.functional as F

ImageTransform = Callable[[torch.Tensor], torch.Tensor]

AUTOAUGMENT_DATASETS = ("cifar10", "cifar100")
RANDAUGMENT_DATASETS = ("tiny-imagenet",)


def normalize(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 [C, H, W] -> float32 (pixel / 255 - mean) / std per channel."""
    scaled = image.to(torch.float32) / 255.0
    mean_column = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_column = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (scaled - mean_column) / std_column


def random_crop(image: torch.Tensor, generator: torch.Generator, padding: int) -> torch.Tensor:
    """Pad every side with ``padding`` zeros, then cut a window of the original size at random."""
    height, width = image.shape[-2:]
    padded = F.pad(image, (padding, padding, padding, padding))
    top, left = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
    return padded[..., top : top + height, left : left + width]


def random_horizontal_flip(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror left-right with probability 1/2."""
    if torch.rand((), generator=generator).item() < 0.5:
        return image.flip(-1)
    return image


@functools.lru_cache(maxsize=1)
def _torchvision_transforms() -> ModuleType | None:
    """torchvision.transforms, or None where torchvision is absent or fails to import."""
    try:
        from torchvision import transforms
    # Not only ImportError: a torchvision built for another torch raises RuntimeError (and
    # sometimes other errors) while importing, and must degrade the same way as a missing one.
    except Exception:
        return None
    return transforms


def paper_policy(dataset_name: str) -> ImageTransform | None:
    """The paper's augmentation policy for ``dataset_name``, or None without torchvision."""
    if dataset_name not in AUTOAUGMENT_DATASETS + RANDAUGMENT_DATASETS:
        raise ValueError(f"no augmentation policy for dataset {dataset_name!r}")
    transforms = _torchvision_transforms()
    if transforms is None:
        return None
    if dataset_name in AUTOAUGMENT_DATASETS:
        return transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10)
    return transforms.RandAugment()


def _seeded(policy: ImageTransform, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Run a policy that draws from the global RNG on a private stream seeded from ``generator``."""
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return policy(image)


def train_transform(dataset_name: str, generator: torch.Generator) -> ImageTransform:
    """Training augmentation for a uint8 image [C, H, W]: random crop, flip, then the paper's policy.

    The crop pads by an eighth of the side: 4 pixels at 32x32 as in the usual CIFAR recipe,
    8 at 64x64 for Tiny-ImageNet. The returned callable advances ``generator`` on every call.
    """
    policy = paper_policy(dataset_name)

    def augment(image: torch.Tensor) -> torch.Tensor:
        image = random_crop(image, generator, padding=image.shape[-1] // 8)
        image = random_horizontal_flip(image, generator)
        if policy is not None:
            image = _seeded(policy, image, generator)
        return image

    return augment
