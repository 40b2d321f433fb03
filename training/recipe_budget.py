"""Fit a recipe's epochs to a wall-clock budget on this machine.

A user's first run should end in minutes, on whatever they have: the recipe's step count is an
upper bound, and the epochs that fit the budget are counted from the time a few real training
steps of its network take here (random inputs of the recipe's batch and size: a step costs the
same whatever the pixels are), plus the time the loader takes to get a batch of real training
images ready (read, augmented, normalised). The two add up: on a few cores the loader's worker
takes its time from the same cores as the step. A run that starts from its ANN twin
(``ann_pretraining``) pays for the twin's epochs too, timed the same way.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sized
from dataclasses import dataclass, replace
from typing import cast

import torch
from torch.utils.data import Dataset

from training.config import TrainConfig
from training.data.samples import Sample
from training.network.network import SpikingNetwork
from training.trainer import build_loss

# A shared machine's pace wanders from step to step: the median of eight steadies the epochs chosen
# for a few seconds more.
PROBE_STEPS = 8
WARM_UP_STEPS = 2  # the first steps pick and build their kernels, several times slower
PROBE_IMAGES = 64  # images loaded to time the loader: a few batches' worth
# The evaluations and the loop's own work add a little to the steps and the loading
# (docs/own-images.md has how far the estimate was off).
OVERHEAD = 1.05
MIN_EPOCHS = 3


@dataclass(frozen=True)
class BudgetFit:
    """How a recipe's epochs were fitted to a budget.

    Attributes:
        epochs: The epochs chosen: the recipe's, or fewer where they would not fit.
        seconds_per_step: One optimiser step of the recipe's batch, measured here.
        seconds_per_image: Getting one training image ready for the step, measured here.
        steps_per_epoch: Optimiser steps in one epoch.
        expected_seconds: The run's expected training time at that pace, pretraining included.
        pretraining_epochs: The ANN twin's epochs, in the config's ratio to ``epochs`` (equal
            when it gives none); None without ``ann_pretraining``.
        seconds_per_pretraining_step: One optimiser step of the ANN twin, measured here (0
            without pretraining).
    """

    epochs: int
    seconds_per_step: float
    seconds_per_image: float
    steps_per_epoch: int
    expected_seconds: float
    pretraining_epochs: int | None = None
    seconds_per_pretraining_step: float = 0.0

    def applied(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the epochs chosen (its pretraining's too).

        Args:
            config: The config the epochs were fitted for.

        Returns:
            The config to train.
        """
        if config.ann_pretraining is None or "epochs" not in config.ann_pretraining:
            return replace(config, epochs=self.epochs)  # the twin's epochs follow the run's
        pretraining = {**config.ann_pretraining, "epochs": self.pretraining_epochs}
        return replace(config, epochs=self.epochs, ann_pretraining=pretraining)


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


def seconds_per_image(dataset: Dataset[Sample], images: int = PROBE_IMAGES) -> float:
    """The wall time of getting one training image ready, as the loader does, here.

    Args:
        dataset: The training split, augmented as in training (a copy: this draws from its
            augmentation generator).
        images: How many images to time, drawn with a fixed seed; at most the split's.

    Returns:
        Seconds per image.
    """
    # torch types Dataset without __len__ (iterable data sets have none); the splits have one.
    size = len(cast(Sized, dataset))
    if size == 0:
        return 0.0
    chosen = torch.randperm(size, generator=torch.Generator().manual_seed(0))[:images].tolist()
    for index in chosen:  # a file met for the first time is decoded once, not every epoch
        dataset[index]
    started = time.perf_counter()
    for index in chosen:
        dataset[index]
    return (time.perf_counter() - started) / len(chosen)


def fit_epochs(config: TrainConfig, train_set: Dataset[Sample], budget_seconds: float) -> BudgetFit:
    """The most epochs of ``config`` (at most its own) that train within ``budget_seconds``.

    Args:
        config: The recipe's config.
        train_set: The training split, augmented as in training (a copy, see ``seconds_per_image``).
        budget_seconds: The training time allowed.

    Returns:
        The epochs and the figures they were counted from (at least ``MIN_EPOCHS``, even where
        those take longer than the budget).
    """
    per_step = seconds_per_step(config)
    per_image = seconds_per_image(train_set)
    train_images = len(cast(Sized, train_set))
    # the trainer drops the last partial batch when there is more than one
    steps = max(1, train_images // config.batch_size)
    loading = config.batch_size * per_image
    epoch_seconds = steps * (per_step + loading) * OVERHEAD
    twin_per_step, ratio = 0.0, 0.0
    if config.ann_pretraining is not None:
        twin = config.ann_twin()
        twin_per_step = seconds_per_step(twin)
        ratio = twin.epochs / config.epochs  # the twin's epochs per epoch of the spiking net
        epoch_seconds += ratio * steps * (twin_per_step + loading) * OVERHEAD
    fitting = math.floor(budget_seconds / epoch_seconds)
    epochs = min(config.epochs, max(MIN_EPOCHS, fitting))
    pretraining = max(1, round(ratio * epochs)) if config.ann_pretraining is not None else None
    return BudgetFit(epochs, per_step, per_image, steps, epochs * epoch_seconds, pretraining, twin_per_step)
