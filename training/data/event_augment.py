"""Augmentation of event frames in the spirit of NDA (Li et al., 2022, "Neuromorphic Data
Augmentation"): the same geometric change to every timestep's frame of a sample, so that the
event stream stays consistent in time. Roll (translation), rotation and cutout, each drawn from
an explicit generator; and event drop (thinning of the counts)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def roll(frames: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Shift every frame by the same random offset, wrapping around the edges.

    Args:
        frames: [..., H, W].
        generator: Where the offset is drawn from.
        max_shift: Largest shift either way, each axis, in pixels.

    Returns:
        The rolled frames.
    """
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return torch.roll(frames, shifts=(dy, dx), dims=(-2, -1))


def rotate(frames: torch.Tensor, generator: torch.Generator, max_degrees: float) -> torch.Tensor:
    """Nearest-neighbour rotation about the centre, so event counts stay whole numbers.

    Args:
        frames: [..., H, W].
        generator: Where the angle is drawn from.
        max_degrees: Largest rotation either way.

    Returns:
        The rotated frames, uncovered pixels zero.
    """
    angle = math.radians((torch.rand((), generator=generator).item() * 2 - 1) * max_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=frames.dtype).unsqueeze(0)
    flat = frames.reshape(1, -1, *frames.shape[-2:])
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    return F.grid_sample(flat, grid, mode="nearest", align_corners=False).reshape(frames.shape)


def cutout(frames: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """Zero one random square in every frame.

    Args:
        frames: [..., H, W].
        generator: Where the square's position is drawn from.
        size: The square's side in pixels.

    Returns:
        A changed copy.
    """
    height, width = frames.shape[-2:]
    top = int(torch.randint(0, max(1, height - size + 1), (), generator=generator))
    left = int(torch.randint(0, max(1, width - size + 1), (), generator=generator))
    frames = frames.clone()
    frames[..., top : top + size, left : left + size] = 0
    return frames


def drop_events(frames: torch.Tensor, generator: torch.Generator, keep: tuple[float, float]) -> torch.Tensor:
    """Each event kept with one probability drawn from ``keep`` for the whole sample (binomial
    thinning of the counts, as EventDrop does to the events): sparser streams, as from a less
    sensitive sensor or a slower motion.

    Args:
        frames: Event counts, any shape.
        generator: Where the probability and the thinning are drawn from.
        keep: The range of the keep probability, (low, high).

    Returns:
        The thinned counts.
    """
    low, high = keep
    probability = low + (high - low) * torch.rand((), generator=generator).item()
    return torch.binomial(frames, torch.full_like(frames, probability), generator=generator)


def nda_augment(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of roll, rotate or cutout (chosen at random) on frames [T, C, H, W].

    Args:
        frames: [T, C, H, W].
        generator: Where every random choice is drawn from.

    Returns:
        The augmented frames.
    """
    size = frames.shape[-1]
    choice = int(torch.randint(0, 3, (), generator=generator))
    if choice == 0:
        return roll(frames, generator, max(1, size // 10))
    if choice == 1:
        return rotate(frames, generator, 15.0)
    return cutout(frames, generator, max(1, size // 4))
