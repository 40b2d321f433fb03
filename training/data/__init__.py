"""Data sets by name. Built-in: ``digits``. On disk under a user-given root: ``cifar10``,
``cifar100``, ``tiny-imagenet``. Nothing is ever downloaded.

Every data set yields (image float32 [C, H, W], label int) with images already normalised as
its ``DatasetInfo.normalization`` says, so the service can reproduce the preprocessing from the
manifest alone.
"""

from __future__ import annotations

from training.data.info import DatasetInfo
from training.data.registry import DATASETS, dataset_info, load_dataset

__all__ = ["DATASETS", "DatasetInfo", "dataset_info", "load_dataset"]
