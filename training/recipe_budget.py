"""Fit a recipe's epochs to a wall-clock budget on this machine.

A user's first run should end in minutes, on whatever they have: the recipe's step count is an
upper bound, and the epochs that fit the budget are counted from the time a few real training
steps of its network take here (random inputs of the recipe's batch and size: a step costs the
same whatever the pixels are).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch

from training.config import TrainConfig
from training.network.network import SpikingNetwork
from training.trainer import build_loss

# A shared machine's pace wanders from step to step: the median of eight steadies the epochs chosen
# for a few seconds more.
PROBE_STEPS = 8
WARM_UP_STEPS = 2  # the first steps pick and build their kernels, several times slower
# Loading, augmentation (in a worker sharing the cores) and the evaluations add to the optimiser
# steps (docs/own-images.md has how far the estimate was off).
OVERHEAD = 1.3
MIN_EPOCHS = 3


@dataclass(frozen=True)
class BudgetFit:
    """How a recipe's epochs were fitted to a budget.

    Attributes:
        epochs: The epochs chosen: the recipe's, or fewer where they would not fit.
        seconds_per_step: One optimiser step of the recipe's batch, measured here.
        steps_per_epoch: Optimiser steps in one epoch.
        expected_seconds: The run's expected training time at that pace.
    """

    epochs: int
    seconds_per_step: float
    steps_per_epoch: int
    expected_seconds: float


def seconds_per_step(config: TrainConfig, steps: int = PROBE_STEPS) -> float:
    """The wall time of one training step of ``config``'s network and batch, here.

    Args:
        config: The run's config (its network, loss, batch size and layout).
        steps: Steps timed after ``WARM_UP_STEPS`` untimed ones.

    Returns:
        Seconds per step, the median of ``steps``.
    """
    spec = config.network_spec()
    network = SpikingNetwork(spec)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    network = network.to(memory_format=layout)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr)
    loss_fn = build_loss(config)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((config.batch_size, *spec.input_shape), generator=generator)
    images = images.contiguous(memory_format=layout)
    labels = torch.randint(0, spec.num_classes, (config.batch_size,), generator=generator)
    network.train()
    timings = []
    for _ in range(WARM_UP_STEPS + steps):
        started = time.perf_counter()
        loss = loss_fn(network(images).current.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        optimizer.step()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings[WARM_UP_STEPS:])


def fit_epochs(config: TrainConfig, train_images: int, budget_seconds: float) -> BudgetFit:
    """The most epochs of ``config`` (at most its own) that train within ``budget_seconds``.

    Args:
        config: The recipe's config.
        train_images: Images in the training split.
        budget_seconds: The training time allowed.

    Returns:
        The epochs and the figures they were counted from (at least ``MIN_EPOCHS``, even where
        those take longer than the budget).
    """
    per_step = seconds_per_step(config)
    # the trainer drops the last partial batch when there is more than one
    steps = max(1, train_images // config.batch_size)
    epoch_seconds = steps * per_step * OVERHEAD
    fitting = math.floor(budget_seconds / epoch_seconds)
    epochs = min(config.epochs, max(MIN_EPOCHS, fitting))
    return BudgetFit(epochs, per_step, steps, epochs * epoch_seconds)
