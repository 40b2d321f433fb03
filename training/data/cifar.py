"""CIFAR-10 and CIFAR-100 from the "python version" archives, already extracted under a root.

Layouts (as the official tarballs extract):

    <root>/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta
    <root>/cifar-100-python/train, test, meta

``root`` may also be the extracted folder itself. Each batch is a pickled dict whose ``data`` is
uint8 [N, 3072]: three 32x32 planes R, G, B, each row-major. Labels are ``labels`` (CIFAR-10) or
``fine_labels`` (CIFAR-100; the 20 coarse labels are not used). The meta file's label names must
match the standard order hard-coded below, so the class list is known without the files and a
reordered copy cannot silently relabel the classes.

The files are pickles: read only copies you trust. Nothing is ever downloaded.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data.info import DatasetInfo
from training.data.samples import Sample
from training.data.transforms import normalize, train_transform

CIFAR10_INFO = DatasetInfo(
    name="cifar10",
    input_shape=(3, 32, 32),
    labels=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)

CIFAR100_INFO = DatasetInfo(
    name="cifar100",
    input_shape=(3, 32, 32),
    labels=(
        "apple",
        "aquarium_fish",
        "baby",
        "bear",
        "beaver",
        "bed",
        "bee",
        "beetle",
        "bicycle",
        "bottle",
        "bowl",
        "boy",
        "bridge",
        "bus",
        "butterfly",
        "camel",
        "can",
        "castle",
        "caterpillar",
        "cattle",
        "chair",
        "chimpanzee",
        "clock",
        "cloud",
        "cockroach",
        "couch",
        "crab",
        "crocodile",
        "cup",
        "dinosaur",
        "dolphin",
        "elephant",
        "flatfish",
        "forest",
        "fox",
        "girl",
        "hamster",
        "house",
        "kangaroo",
        "keyboard",
        "lamp",
        "lawn_mower",
        "leopard",
        "lion",
        "lizard",
        "lobster",
        "man",
        "maple_tree",
        "motorcycle",
        "mountain",
        "mouse",
        "mushroom",
        "oak_tree",
        "orange",
        "orchid",
        "otter",
        "palm_tree",
        "pear",
        "pickup_truck",
        "pine_tree",
        "plain",
        "plate",
        "poppy",
        "porcupine",
        "possum",
        "rabbit",
        "raccoon",
        "ray",
        "road",
        "rocket",
        "rose",
        "sea",
        "seal",
        "shark",
        "shrew",
        "skunk",
        "skyscraper",
        "snail",
        "snake",
        "spider",
        "squirrel",
        "streetcar",
        "sunflower",
        "sweet_pepper",
        "table",
        "tank",
        "telephone",
        "television",
        "tiger",
        "tractor",
        "train",
        "trout",
        "tulip",
        "turtle",
        "wardrobe",
        "whale",
        "willow_tree",
        "wolf",
        "woman",
        "worm",
    ),  # fmt: skip
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
)

IMAGE_SHAPE = (3, 32, 32)
PIXELS_PER_IMAGE = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its files and under which keys.

    Attributes:
        info: The variant's description.
        folder: The folder its archive extracts to.
        train_files: The batch files of the training split.
        test_files: The batch files of the test split.
        meta_file: The file naming the classes.
        labels_key: The batches' key of the labels.
        label_names_key: The meta file's key of the class names.
    """

    info: DatasetInfo
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels_key: str
    label_names_key: str


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout(
        info=CIFAR10_INFO,
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        labels_key="labels",
        label_names_key="label_names",
    ),
    "cifar100": CifarLayout(
        info=CIFAR100_INFO,
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        labels_key="fine_labels",
        label_names_key="fine_label_names",
    ),
}


def find_cifar_folder(root: str | Path, folder: str) -> Path:
    """The extracted ``folder`` under ``root``, or ``root`` itself when it is that folder.

    Args:
        root: The data root given by the user.
        folder: The folder the archive extracts to.

    Returns:
        The folder holding the batch files.

    Raises:
        FileNotFoundError: Neither ``root`` nor ``root / folder`` is that folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist or is not a folder")
    if (root / folder).is_dir():
        return root / folder
    if root.name == folder:
        return root
    raise FileNotFoundError(
        f"expected the extracted archive at {root / folder} (or a --data-root pointing at it)"
    )


def _text(value: bytes | str) -> str:
    """``value`` as str, decoding bytes as UTF-8."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def read_cifar_pickle(path: Path) -> dict[str, object]:
    """A CIFAR pickle as a dict with str keys, whether it was written with byte or str keys.

    Args:
        path: The pickle file.

    Returns:
        Its entries, keys decoded.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: The file does not unpickle to a dict.
    """
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR file {path}")
    with path.open("rb") as file:
        try:
            # encoding="bytes" reads the archives pickled by Python 2 without guessing a codec.
            content = pickle.load(file, encoding="bytes")
        # Unpickling garbage can fail in many ways (EOFError, UnpicklingError, KeyError, ...).
        except Exception as error:
            raise ValueError(f"{path} is not a readable CIFAR pickle: {error!r}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} should hold a pickled dict, found {type(content).__name__}")
    return {_text(key): value for key, value in content.items()}


def _field(batch: dict[str, object], key: str, path: Path) -> object:
    """``batch[key]``, or a ValueError naming the file and the keys it has."""
    if key not in batch:
        raise ValueError(f"{path} has no {key!r} entry (found {sorted(batch)})")
    return batch[key]


def read_cifar_batch(path: Path, labels_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels int64 [N] from one batch file, checked.

    Args:
        path: The batch file.
        labels_key: The batch's key of the labels.
        num_classes: Labels must lie in 0 .. num_classes - 1.

    Returns:
        The images and their labels.

    Raises:
        ValueError: The batch's data or labels have the wrong type, shape or range.
    """
    batch = read_cifar_pickle(path)
    data = np.asarray(_field(batch, "data", path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS_PER_IMAGE:
        raise ValueError(
            f"{path}: 'data' must be uint8 [N, {PIXELS_PER_IMAGE}] (R, G, B planes of 32x32), "
            f"found {data.dtype} {list(data.shape)}"
        )
    labels = np.asarray(_field(batch, labels_key, path))
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: {labels_key!r} must be {len(data)} integers, one per image, "
            f"found {labels.dtype} {list(labels.shape)}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{path}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}"
        )
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def check_label_names(path: Path, layout: CifarLayout) -> None:
    """Refuse a meta file whose class names differ from the standard order in ``layout.info``.

    Args:
        path: The meta file.
        layout: The variant it belongs to.

    Raises:
        ValueError: The names differ (or the file is not a meta file).
    """
    # Unpickled data has no static type; the meta file's entry is a list of names.
    listed = cast(Iterable[bytes | str], _field(read_cifar_pickle(path), layout.label_names_key, path))
    names = tuple(_text(name) for name in listed)
    if names != layout.info.labels:
        raise ValueError(
            f"{path}: {layout.label_names_key!r} is {list(names)}, "
            f"not the standard {layout.info.name} order {list(layout.info.labels)}"
        )


class CifarDataset(Dataset[Sample]):
    """CIFAR-10 or CIFAR-100 (``name``), one split held in memory as uint8.

    Yields (float32 [3, 32, 32] normalised with ``info.mean`` / ``info.std``, int label).
    With ``augment`` the training transform (crop, flip, and AutoAugment's CIFAR-10 policy) is
    applied to the uint8 image first, drawing from a generator seeded by ``seed``.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: The data root: the extracted folder or its parent.
        split: ``"train"`` or ``"test"``.
        augment: Augment every image read (training).
        seed: Seed of the augmentation's generator.

    Raises:
        ValueError: An unknown variant or split, or malformed files.
        FileNotFoundError: The folder or a file is missing.
    """

    def __init__(self, name: str, root: str | Path, split: str, augment: bool = False, seed: int = 0) -> None:
        if name not in CIFAR_LAYOUTS:
            raise ValueError(f"unknown CIFAR variant {name!r}; choose from {sorted(CIFAR_LAYOUTS)}")
        if split not in ("train", "test"):
            raise ValueError(f"{name} has splits 'train' and 'test', not {split!r}")
        layout = CIFAR_LAYOUTS[name]
        self.info = layout.info
        folder = find_cifar_folder(root, layout.folder)
        check_label_names(folder / layout.meta_file, layout)
        file_names = layout.train_files if split == "train" else layout.test_files
        batches = [
            read_cifar_batch(folder / file_name, layout.labels_key, self.info.num_classes)
            for file_name in file_names
        ]
        self.images = torch.from_numpy(np.concatenate([images for images, _ in batches]))
        self.labels = torch.from_numpy(np.concatenate([labels for _, labels in batches]))
        # Kept on the data set so that each loader worker can reseed it (see the trainer).
        self.generator = torch.Generator().manual_seed(seed)
        self.transform = train_transform(name, self.generator) if augment else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return normalize(image, self.info.mean, self.info.std), int(self.labels[index])
