"""Data sets by name. Built-in: ``digits`` and ``digits-dvs`` (event frames generated from the
digits). On disk: ``fashion-mnist`` (by default from Debian's dataset-fashion-mnist package) and,
under a user-given root, ``cifar10``, ``cifar100``, ``tiny-imagenet`` and ``cifar10-dvs``.
Nothing is ever downloaded.

Image data sets yield (image float32 [C, H, W], label int), normalised as their ``DatasetInfo``
says, so the service can reproduce the preprocessing from the manifest alone; event data sets
yield (frames float32 [T, 2, H, W], label int).
"""

from __future__ import annotations

from training.data.info import DatasetInfo
from training.data.registry import DATASETS, dataset_info, load_dataset, load_split_for

__all__ = ["DATASETS", "DatasetInfo", "dataset_info", "load_dataset", "load_split_for"]
