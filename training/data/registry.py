"""Data sets by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from torch.utils.data import Dataset

from training.data.cifar import CIFAR10_INFO, CIFAR100_INFO, CifarDataset
from training.data.cifar10_dvs import CIFAR10_DVS_INFO, Cifar10DvsDataset
from training.data.digits import DIGITS_INFO, DigitsDataset
from training.data.digits_dvs import DIGITS_DVS_INFO, DigitsDvsDataset
from training.data.fashion_mnist import FASHION_MNIST_INFO, FashionMnistDataset
from training.data.info import DatasetInfo
from training.data.tiny_imagenet import TINY_IMAGENET_INFO, TinyImageNetDataset


class Frames(NamedTuple):
    """How an event data set cuts its recordings: ``count`` frames of ``bin_us`` each."""

    count: int
    bin_us: int


def _digits(split: str, root: str | None, augment: bool, options: dict, frames: Frames | None) -> Dataset:
    return DigitsDataset(split, augment=augment, augmentation=options)


def _digits_dvs(split: str, root: str | None, augment: bool, options: dict, frames: Frames | None) -> Dataset:
    # The data set refuses an unknown split itself, naming the three, before generating anything.
    # options (the train split's camera variants) only shape the training streams.
    return DigitsDvsDataset(
        split,
        augment=augment,
        augmentation=options if split == "train" else None,
        bins=frames.count,
        bin_us=frames.bin_us,
    )


def _fashion_mnist(
    split: str, root: str | None, augment: bool, options: dict, frames: Frames | None
) -> Dataset:
    # root None: the folder of Debian's dataset-fashion-mnist package.
    return FashionMnistDataset(split, root, augment=augment, augmentation=options)


def _required_root(name: str, root: str | None, expected: str) -> str:
    # Nothing is ever downloaded, so a missing root is a usage error, reported before any I/O.
    if root is None:
        raise ValueError(f"dataset {name} needs --data-root: a folder holding {expected}")
    return root


def _cifar10(split: str, root: str | None, augment: bool, options: dict, frames: Frames | None) -> Dataset:
    root = _required_root("cifar10", root, "cifar-10-batches-py/ (the extracted python version)")
    return CifarDataset("cifar10", root, split, augment=augment)


def _cifar100(split: str, root: str | None, augment: bool, options: dict, frames: Frames | None) -> Dataset:
    root = _required_root("cifar100", root, "cifar-100-python/ (the extracted python version)")
    return CifarDataset("cifar100", root, split, augment=augment)


def _tiny_imagenet(
    split: str, root: str | None, augment: bool, options: dict, frames: Frames | None
) -> Dataset:
    root = _required_root("tiny-imagenet", root, "tiny-imagenet-200/ (the extracted zip)")
    return TinyImageNetDataset(root, split, augment=augment)


def _cifar10_dvs(
    split: str, root: str | None, augment: bool, options: dict, frames: Frames | None
) -> Dataset:
    root = _required_root("cifar10-dvs", root, "CIFAR10-DVS/<class>/*.aedat (the extracted AEDAT 2.0 files)")
    return Cifar10DvsDataset(root, split, bins=frames.count, bin_us=frames.bin_us, augment=augment)


# name -> (info, loader(split, root, augment, options, frames)); options is the config's ``augmentation``
# mapping, read by the data sets that have settings (digits, digits-dvs, fashion-mnist). tiny-imagenet's info has placeholder class names
# (its real ones come from words.txt); the loaded data set's ``info`` carries the real ones.
DATASETS: dict[str, tuple[DatasetInfo, Callable[[str, str | None, bool, dict, Frames | None], Dataset]]] = {
    "digits": (DIGITS_INFO, _digits),
    "digits-dvs": (DIGITS_DVS_INFO, _digits_dvs),
    "fashion-mnist": (FASHION_MNIST_INFO, _fashion_mnist),
    "cifar10": (CIFAR10_INFO, _cifar10),
    "cifar100": (CIFAR100_INFO, _cifar100),
    "tiny-imagenet": (TINY_IMAGENET_INFO, _tiny_imagenet),
    "cifar10-dvs": (CIFAR10_DVS_INFO, _cifar10_dvs),
}


# An event data set's recordings are cut into this many frames when no network's T says otherwise;
# its info's bin_us is the length of one of them.
EVENT_BINS = 4


def dataset_info(name: str, timesteps: int | None = None) -> DatasetInfo:
    """What a model of data set ``name`` needs to know. For event data sets, ``timesteps`` frames
    cover what ``EVENT_BINS`` frames of ``bin_us`` cover, so one frame lasts ``bin_us * 4 / T``:
    a network with more timesteps sees the same span of the recording in finer steps."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    info = DATASETS[name][0]
    if info.kind == "events" and timesteps is not None and timesteps != EVENT_BINS:
        info = replace(info, bin_us=round(info.bin_us * EVENT_BINS / timesteps))
    return info


def load_dataset(
    name: str,
    split: str,
    root: str | None = None,
    augment: bool = False,
    augmentation: dict | None = None,
    timesteps: int | None = None,
) -> Dataset:
    """``augmentation`` holds the data set's augmentation settings (the config's mapping of the
    same name); data sets without settings ignore it. Event data sets make one frame per
    timestep of the network that reads them: ``timesteps`` bins (their default, 4, when None);
    image data sets ignore it."""
    if timesteps is not None and timesteps < 1:
        raise ValueError(f"timesteps must be at least 1, got {timesteps}")
    info = dataset_info(name, timesteps)
    frames = Frames(timesteps or EVENT_BINS, info.bin_us) if info.kind == "events" else None
    return DATASETS[name][1](split, root, augment, dict(augmentation or {}), frames)
