"""Data sets by name."""

from __future__ import annotations

from typing import Callable

from torch.utils.data import Dataset

from training.data.digits import DIGITS_INFO, DigitsDataset
from training.data.info import DatasetInfo


def _digits(split: str, root: str | None, augment: bool) -> Dataset:
    return DigitsDataset(split, augment=augment)


# name -> (info, loader(split, root, augment))
DATASETS: dict[str, tuple[DatasetInfo, Callable[[str, str | None, bool], Dataset]]] = {
    "digits": (DIGITS_INFO, _digits),
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[name][0]


def load_dataset(name: str, split: str, root: str | None = None, augment: bool = False) -> Dataset:
    dataset_info(name)
    return DATASETS[name][1](split, root, augment)
