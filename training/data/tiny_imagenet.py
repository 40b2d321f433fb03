"""Tiny-ImageNet-200 from its extracted folder (``tiny-imagenet-200.zip``) under a root.

Layout:

    <root>/tiny-imagenet-200/          (or root itself)
        wnids.txt                      one WordNet id per line
        words.txt                      optional: "<wnid>\\t<names>" per line
        train/<wnid>/images/*.JPEG
        val/images/*.JPEG
        val/val_annotations.txt        "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>" per line

Class index = position of the wnid in wnids.txt's ids sorted alphabetically (the order the file
happens to list them in does not matter; it matches an ImageFolder over train/). Label names are
the words.txt entry of each wnid, or the wnid itself where words.txt lacks it or is absent.

Splits: ``train`` and ``val``. The official test images come without labels, so ``test`` is an
alias of ``val``, the usual held-out set for Tiny-ImageNet results.

Images are 64x64 RGB (the few grayscale files are converted), read lazily with PIL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from training.data.info import DatasetInfo
from training.data.samples import Sample
from training.data.transforms import normalize, train_transform

FOLDER = "tiny-imagenet-200"
NUM_CLASSES = 200
IMAGE_SIZE = 64
IMAGE_SUFFIXES = (".jpeg", ".jpg")
MEAN = (0.4802, 0.4481, 0.3975)
STD = (0.2302, 0.2265, 0.2262)

# What ``dataset_info("tiny-imagenet")`` says without a root: the real names need words.txt,
# so these placeholders only fix the shape and class count; ``tiny_imagenet_info(root)`` has them.
TINY_IMAGENET_INFO = DatasetInfo(
    name="tiny-imagenet",
    input_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
    labels=tuple(f"class_{index:03d}" for index in range(NUM_CLASSES)),
    mean=MEAN,
    std=STD,
)


def find_tiny_imagenet_folder(root: str | Path) -> Path:
    """``root/tiny-imagenet-200``, or ``root`` itself when it holds wnids.txt.

    Args:
        root: The data root given by the user.

    Returns:
        The folder holding wnids.txt, train/ and val/.

    Raises:
        FileNotFoundError: Neither is there.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist or is not a folder")
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if (root / "wnids.txt").is_file():
        return root
    raise FileNotFoundError(
        f"expected the extracted archive at {root / FOLDER} (or a --data-root pointing at it)"
    )


def read_wnids(folder: Path) -> list[str]:
    """The class wnids in class-index order: wnids.txt's ids sorted alphabetically.

    Args:
        folder: The extracted folder.

    Returns:
        The sorted wnids.

    Raises:
        FileNotFoundError: wnids.txt is missing.
        ValueError: It lists no class, or a class twice.
    """
    path = folder / "wnids.txt"
    if not path.is_file():
        raise FileNotFoundError(f"missing Tiny-ImageNet class list {path}")
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids:
        raise ValueError(f"{path} lists no classes")
    if len(set(wnids)) != len(wnids):
        raise ValueError(f"{path} lists some wnid more than once")
    return sorted(wnids)


def read_label_names(folder: Path, wnids: list[str]) -> tuple[str, ...]:
    """words.txt's names for ``wnids``, each falling back to the wnid when not listed.

    Args:
        folder: The extracted folder.
        wnids: The classes, in class-index order.

    Returns:
        One name per class.
    """
    path = folder / "words.txt"
    names: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            wnid, _, words = line.partition("\t")
            if words.strip():
                names[wnid.strip()] = words.strip()
    return tuple(names.get(wnid, wnid) for wnid in wnids)


def tiny_imagenet_info(root: str | Path) -> DatasetInfo:
    """The DatasetInfo of the copy under ``root``, with its real class names.

    Args:
        root: The data root given by the user.

    Returns:
        The description, with words.txt's names.
    """
    folder = find_tiny_imagenet_folder(root)
    return _info_with_names(folder, read_wnids(folder))


def _info_with_names(folder: Path, wnids: list[str]) -> DatasetInfo:
    """``TINY_IMAGENET_INFO`` with the class names of ``folder``."""
    return DatasetInfo(
        name=TINY_IMAGENET_INFO.name,
        input_shape=TINY_IMAGENET_INFO.input_shape,
        labels=read_label_names(folder, wnids),
        mean=MEAN,
        std=STD,
    )


def _image_files(folder: Path) -> list[Path]:
    """The JPEG files in ``folder``, sorted."""
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def train_samples(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    """(image path, class index) for every training image, class by class.

    Args:
        folder: The extracted folder.
        wnids: The classes, in class-index order.

    Returns:
        The samples, files sorted by name within a class.

    Raises:
        FileNotFoundError: A class's image folder is missing.
    """
    samples: list[tuple[Path, int]] = []
    for label, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        if not images.is_dir():
            raise FileNotFoundError(f"missing training images of class {wnid}: {images}")
        samples.extend((path, label) for path in _image_files(images))
    return samples


def val_samples(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    """(image path, class index) for every line of val/val_annotations.txt, in file order.

    Args:
        folder: The extracted folder.
        wnids: The classes, in class-index order.

    Returns:
        The samples.

    Raises:
        FileNotFoundError: The annotations or an image they name are missing.
        ValueError: A line without a known wnid.
    """
    annotations = folder / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise FileNotFoundError(f"missing Tiny-ImageNet validation labels {annotations}")
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    samples: list[tuple[Path, int]] = []
    for line_number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label_of:
            raise ValueError(
                f"{annotations}:{line_number}: expected '<file>\\t<wnid in wnids.txt>\\t...', got {line!r}"
            )
        path = folder / "val" / "images" / fields[0]
        if not path.is_file():
            raise FileNotFoundError(f"{annotations}:{line_number} names a missing image {path}")
        samples.append((path, label_of[fields[1]]))
    return samples


def read_image(path: Path) -> torch.Tensor:
    """A 64x64 image file as uint8 RGB [3, 64, 64].

    Args:
        path: The image file.

    Returns:
        uint8 [3, 64, 64].

    Raises:
        ValueError: The image is not 64x64.
    """
    with Image.open(path) as image:
        # np.array, not asarray: PIL's buffer is read-only and torch wants memory it may write.
        pixels = np.array(image.convert("RGB"), dtype=np.uint8)
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(
            f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels, Tiny-ImageNet images are 64x64"
        )
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


class TinyImageNetDataset(Dataset[Sample]):
    """One split of Tiny-ImageNet-200 (``train``, or ``val`` alias ``test``).

    Yields (float32 [3, 64, 64] normalised with ``info.mean`` / ``info.std``, int label).
    With ``augment`` the training transform (crop, flip, and RandAugment) is applied to the
    uint8 image first, drawing from a generator seeded by ``seed``.

    Args:
        root: The data root: the extracted folder or its parent.
        split: ``"train"``, ``"val"`` or ``"test"`` (the same as ``"val"``).
        augment: Augment every image read (training).
        seed: Seed of the augmentation's generator.

    Raises:
        ValueError: An unknown split, or malformed class lists or annotations.
        FileNotFoundError: The folder or a file is missing.
    """

    def __init__(self, root: str | Path, split: str, augment: bool = False, seed: int = 0) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"tiny-imagenet has splits 'train' and 'val' (alias 'test'), not {split!r}")
        folder = find_tiny_imagenet_folder(root)
        wnids = read_wnids(folder)
        self.info = _info_with_names(folder, wnids)
        self.samples = train_samples(folder, wnids) if split == "train" else val_samples(folder, wnids)
        # Kept on the data set so that each loader worker can reseed it (see the trainer).
        self.generator = torch.Generator().manual_seed(seed)
        self.transform = train_transform("tiny-imagenet", self.generator) if augment else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = read_image(path)
        if self.transform is not None:
            image = self.transform(image)
        return normalize(image, self.info.mean, self.info.std), label
