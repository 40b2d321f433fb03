"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28x28 grey product images in 10 classes,
60,000 for training and 10,000 for testing, as the four IDX files Zalando published.

Read from ``--data-root``, by default where Debian's package ``dataset-fashion-mnist`` puts them
(``apt-get install dataset-fashion-mnist``). Nothing is ever downloaded. Pixels stay as in the
files (light product on black) and are scaled to [0, 1] without a mean shift, as the paper's
encoders take intensities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.contract.images.resize import ResizePolicy
from training.data.idx import read_idx
from training.data.info import DatasetInfo
from training.data.pixel_images import PixelImages

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

FASHION_MNIST_INFO = DatasetInfo(
    name="fashion-mnist",
    input_shape=(1, 28, 28),
    labels=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mean=(0.0,),
    std=(1.0,),
    # The data set's images are products cropped to their extent, scaled to fill 28 px and put on
    # black; a user's photo (a product on white) is framed the same way.
    resize=ResizePolicy(fit="content", polarity="auto"),
)


def _find(root: Path, name: str) -> Path:
    """``name`` under ``root``, or the same without ``.gz`` (an unpacked copy)."""
    for candidate in (root / name, root / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"fashion-mnist: {root / name} not found; install Debian's package "
        f"dataset-fashion-mnist or give --data-root a folder holding the four IDX files"
    )


def fashion_mnist_split(split: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels uint8 [N, 28, 28] and labels int64 [N] of ``train`` or ``test``, checked.

    Args:
        split: ``"train"`` or ``"test"``.
        root: The folder holding the four IDX files; None for Debian's package folder.

    Returns:
        The split's pixels and labels, in file order.

    Raises:
        ValueError: An unknown split, or files of the wrong shape, type or labels.
        FileNotFoundError: A file is missing.
    """
    if split not in FILES:
        raise ValueError(f"fashion-mnist has splits 'train' and 'test', not {split!r}")
    root = Path(root) if root is not None else DEFAULT_ROOT
    images_path, labels_path = (_find(root, name) for name in FILES[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images [N, 28, 28], found {images.dtype} {list(images.shape)}"
        )
    if labels.dtype != np.uint8 or labels.shape != (len(images),):
        raise ValueError(
            f"{labels_path}: expected {len(images)} uint8 labels, found {labels.dtype} {list(labels.shape)}"
        )
    if len(labels) and labels.max() >= len(FASHION_MNIST_INFO.labels):
        raise ValueError(f"{labels_path}: labels must lie in 0..9, found up to {labels.max()}")
    return images, labels.astype(np.int64)


class FashionMnistDataset(PixelImages):
    """Fashion-MNIST as float32 [1, 28, 28] in [0, 1], optionally with user-input augmentation.

    Args:
        split: ``"train"`` or ``"test"``.
        root: The folder holding the four IDX files; None for Debian's package folder.
        augment: Augment every image read (training).
        seed: Seed of the augmentation's generator.
        augmentation: ``UserInputAugmentation`` settings; None or empty for its defaults.
    """

    info = FASHION_MNIST_INFO

    def __init__(
        self,
        split: str,
        root: str | Path | None = None,
        augment: bool = False,
        seed: int = 0,
        augmentation: dict[str, Any] | None = None,
    ) -> None:
        pixels, labels = fashion_mnist_split(split, root)
        super().__init__(pixels, labels, augment=augment, seed=seed, augmentation=augmentation)
