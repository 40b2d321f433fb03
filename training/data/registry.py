"""Data sets by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch.utils.data import Dataset

from training.data.cifar import CIFAR10_INFO, CIFAR100_INFO, CifarDataset
from training.data.cifar10_dvs import CIFAR10_DVS_INFO, Cifar10DvsDataset
from training.data.digits import DIGITS_INFO, DigitsDataset
from training.data.digits_dvs import DIGITS_DVS_INFO, DigitsDvsDataset
from training.data.fashion_mnist import FASHION_MNIST_INFO, FashionMnistDataset
from training.data.image_folder import DATASET_NAME as IMAGE_FOLDER
from training.data.image_folder import folder_data
from training.data.info import DatasetInfo
from training.data.samples import Sample
from training.data.tiny_imagenet import TINY_IMAGENET_INFO, TinyImageNetDataset


@dataclass(frozen=True)
class Frames:
    """How an event data set cuts its recordings: ``count`` frames of ``bin_us`` each.

    Attributes:
        count: Frames per recording.
        bin_us: The duration of one frame in microseconds.
    """

    count: int
    bin_us: int


def _digits(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    return DigitsDataset(split, augment=augment, augmentation=options)


def _digits_dvs(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    # The data set refuses an unknown split itself, naming the three, before generating anything.
    # options (the train split's camera variants) only shape the training streams.
    assert frames is not None  # load_dataset gives every event data set its frames
    return DigitsDvsDataset(
        split,
        augment=augment,
        augmentation=options if split == "train" else None,
        bins=frames.count,
        bin_us=frames.bin_us,
    )


def _fashion_mnist(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    # root None: the folder of Debian's dataset-fashion-mnist package.
    return FashionMnistDataset(split, root, augment=augment, augmentation=options)


def _required_root(name: str, root: str | None, expected: str) -> str:
    # Nothing is ever downloaded, so a missing root is a usage error, reported before any I/O.
    if root is None:
        raise ValueError(f"dataset {name} needs --data-root: a folder holding {expected}")
    return root


def _cifar10(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    root = _required_root("cifar10", root, "cifar-10-batches-py/ (the extracted python version)")
    return CifarDataset("cifar10", root, split, augment=augment)


def _cifar100(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    root = _required_root("cifar100", root, "cifar-100-python/ (the extracted python version)")
    return CifarDataset("cifar100", root, split, augment=augment)


def _tiny_imagenet(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    root = _required_root("tiny-imagenet", root, "tiny-imagenet-200/ (the extracted zip)")
    return TinyImageNetDataset(root, split, augment=augment)


def _cifar10_dvs(
    split: str, root: str | None, augment: bool, options: dict[str, Any], frames: Frames | None
) -> Dataset[Sample]:
    root = _required_root("cifar10-dvs", root, "CIFAR10-DVS/<class>/*.aedat (the extracted AEDAT 2.0 files)")
    assert frames is not None  # load_dataset gives every event data set its frames
    return Cifar10DvsDataset(root, split, bins=frames.count, bin_us=frames.bin_us, augment=augment)


# loader(split, root, augment, options, frames): options is the config's ``augmentation``
# mapping, read by the data sets that have settings (digits, digits-dvs, fashion-mnist).
Loader = Callable[[str, str | None, bool, dict[str, Any], Frames | None], Dataset[Sample]]

# name -> (info, loader). tiny-imagenet's info has placeholder class names (its real ones come from
# words.txt); the loaded data set's ``info`` carries the real ones.
DATASETS: dict[str, tuple[DatasetInfo, Loader]] = {
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


def _event_bin_us(info: DatasetInfo) -> int:
    """An event data set's frame length (every event data set's info has one)."""
    assert info.bin_us is not None, f"event data set {info.name} has no bin_us"
    return info.bin_us


def dataset_info(name: str, timesteps: int | None = None) -> DatasetInfo:
    """What a model of data set ``name`` needs to know.

    For event data sets, ``timesteps`` frames cover what ``EVENT_BINS`` frames of ``bin_us``
    cover, so one frame lasts ``bin_us * 4 / T``: a network with more timesteps sees the same
    span of the recording in finer steps.

    Args:
        name: A registry name (``DATASETS``).
        timesteps: The network's T (event data sets); None for the default ``EVENT_BINS``.

    Returns:
        The data set's description.

    Raises:
        ValueError: An unknown data set.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    info = DATASETS[name][0]
    if info.kind == "events" and timesteps is not None and timesteps != EVENT_BINS:
        info = replace(info, bin_us=round(_event_bin_us(info) * EVENT_BINS / timesteps))
    return info


def load_dataset(
    name: str,
    split: str,
    root: str | None = None,
    augment: bool = False,
    augmentation: dict[str, Any] | None = None,
    timesteps: int | None = None,
) -> Dataset[Sample]:
    """One split of a data set by name, yielding (input, label) samples.

    Args:
        name: A registry name (``DATASETS``).
        split: The split, e.g. ``"train"`` or ``"test"``; each data set names its own.
        root: The folder of an on-disk data set (required by cifar10, cifar100, tiny-imagenet and
            cifar10-dvs; fashion-mnist defaults to Debian's package folder).
        augment: Augment the samples (training).
        augmentation: The data set's augmentation settings (the config's mapping of the same
            name); data sets without settings ignore it.
        timesteps: Event data sets make one frame per timestep of the network that reads them:
            ``timesteps`` bins (their default, 4, when None); image data sets ignore it.

    Returns:
        The data set.

    Raises:
        ValueError: An unknown data set or split, bad settings, a missing root, or
            ``timesteps`` below 1.
        FileNotFoundError: Files of an on-disk data set are missing.
    """
    if timesteps is not None and timesteps < 1:
        raise ValueError(f"timesteps must be at least 1, got {timesteps}")
    info = dataset_info(name, timesteps)
    frames = Frames(timesteps or EVENT_BINS, _event_bin_us(info)) if info.kind == "events" else None
    return DATASETS[name][1](split, root, augment, dict(augmentation or {}), frames)


def load_split_for(
    name: str,
    split: str | None,
    root: str | None,
    input_shape: tuple[int, ...],
    timesteps: int,
    seed: int = 0,
) -> tuple[Dataset[Sample], DatasetInfo, str]:
    """One unaugmented split as a trained network reads it: a registered data set by name, or a
    user's image folder (``root``) at the network's input.

    Args:
        name: A registry name, or ``"image-folder"``.
        split: The split; None for the one a model is reported on (``test``; an image folder
            without a test/ folder: ``val``, the one its checkpoint was chosen on).
        root: The data set's folder (an image folder's is required).
        input_shape: The network's [C, H, W] (image folders are resized to it).
        timesteps: The network's T (event data sets' frames).
        seed: An image folder's automatic validation split's seed (its run's ``seed``).

    Returns:
        The samples, the data set's description and the split's name.

    Raises:
        ValueError: An unknown data set or split, or an image folder without its folder.
    """
    if name != IMAGE_FOLDER:
        split = split or "test"
        return load_dataset(name, split, root, timesteps=timesteps), dataset_info(name, timesteps), split
    if root is None:
        raise ValueError(f"dataset {IMAGE_FOLDER} needs its folder of class folders (--data-root)")
    folder = folder_data(root, input_shape, seed=seed)
    splits = {"train": folder.train, "val": folder.val, "test": folder.test}
    split = split or ("test" if folder.test is not None else "val")
    chosen = splits.get(split)
    if chosen is None:
        raise ValueError(
            f"{root} has no {split!r} split: image folders have "
            + ", ".join(name for name, data in splits.items() if data is not None)
        )
    return chosen, folder.info, split
