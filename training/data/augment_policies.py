"""The paper's augmentation policies without torchvision: AutoAugment with its CIFAR-10 policy
(Cubuk et al., 2019; CIFAR-10/100 runs) and RandAugment (Cubuk et al., 2020; Tiny-ImageNet).

A policy first draws its plan, the operations to apply with their signed magnitudes, from an
explicit ``torch.Generator`` (so a data set's augmentation is seeded and resumable like the
others), then applies it to a uint8 image [C, H, W] through PIL (``training/data/image_ops.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from training.data.image_ops import OPERATIONS, magnitude

Plan = list[tuple[str, float]]
# One operation of a sub-policy: (operation, probability, level of 10); a level of None marks an
# operation without magnitude.
Step = tuple[str, float, int | None]
SubPolicy = tuple[Step, Step]

# The CIFAR-10 policy: 25 sub-policies of two steps each.
CIFAR10_POLICY: tuple[SubPolicy, ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)
AUTOAUGMENT_LEVELS = 10

RANDAUGMENT_OPERATIONS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
)


def _uniform(generator: torch.Generator) -> float:
    """One uniform draw from [0, 1)."""
    return float(torch.rand((), generator=generator))


def _signed(name: str, value: float, generator: torch.Generator) -> float:
    """Signed operations go either way with even odds."""
    return -value if OPERATIONS[name][2] and _uniform(generator) < 0.5 else value


def apply_plan(image: torch.Tensor, plan: Plan) -> torch.Tensor:
    """uint8 [C, H, W] (C = 1 or 3) -> uint8 [C, H, W] after each planned operation in turn.

    Args:
        image: uint8 [C, H, W] with C = 1 or 3.
        plan: (operation name, signed magnitude) pairs, applied in order.

    Returns:
        uint8 [C, H, W]; ``image`` itself when the plan is empty.
    """
    if not plan:
        return image
    array = image.permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    for name, value in plan:
        picture = OPERATIONS[name][0](picture, value)
    result = torch.from_numpy(np.array(picture, dtype=np.uint8))
    return (result[None] if result.dim() == 2 else result.permute(2, 0, 1)).contiguous()


@dataclass(frozen=True)
class AutoAugment:
    """One of the policy's sub-policies, chosen uniformly; each of its two operations is applied
    with its own probability.

    Attributes:
        policy: The sub-policies to choose from (by default the CIFAR-10 policy).
    """

    policy: tuple[SubPolicy, ...] = CIFAR10_POLICY

    def plan(self, generator: torch.Generator, side: int) -> Plan:
        """Draw the operations for one image.

        Args:
            generator: Where every choice is drawn from.
            side: The image's width in pixels (translations scale with it).

        Returns:
            The operations to apply, with their signed magnitudes.
        """
        index = int(torch.randint(len(self.policy), (), generator=generator))
        plan: Plan = []
        for name, probability, level in self.policy[index]:
            if _uniform(generator) < probability:
                value = 0.0 if level is None else magnitude(name, level, AUTOAUGMENT_LEVELS, side)
                plan.append((name, _signed(name, value, generator)))
        return plan

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment one image.

        Args:
            image: uint8 [C, H, W] with C = 1 or 3.
            generator: Where every choice is drawn from.

        Returns:
            The augmented uint8 [C, H, W].
        """
        return apply_plan(image, self.plan(generator, image.shape[-1]))


@dataclass(frozen=True)
class RandAugment:
    """``operations`` operations drawn uniformly (with repetition) from the fourteen, all at
    ``level`` of ``levels`` bins: the paper's N = 2, M = 9 of 31.

    Attributes:
        operations: How many operations each image gets (N).
        level: The magnitude bin of every operation (M).
        levels: The number of magnitude bins.
    """

    operations: int = 2
    level: int = 9
    levels: int = 31

    def plan(self, generator: torch.Generator, side: int) -> Plan:
        """Draw the operations for one image.

        Args:
            generator: Where every choice is drawn from.
            side: The image's width in pixels (translations scale with it).

        Returns:
            The operations to apply, with their signed magnitudes.
        """
        plan: Plan = []
        for _ in range(self.operations):
            name = RANDAUGMENT_OPERATIONS[
                int(torch.randint(len(RANDAUGMENT_OPERATIONS), (), generator=generator))
            ]
            plan.append((name, _signed(name, magnitude(name, self.level, self.levels, side), generator)))
        return plan

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment one image.

        Args:
            image: uint8 [C, H, W] with C = 1 or 3.
            generator: Where every choice is drawn from.

        Returns:
            The augmented uint8 [C, H, W].
        """
        return apply_plan(image, self.plan(generator, image.shape[-1]))
