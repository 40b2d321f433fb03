"""CIFAR-10-C and CIFAR-100-C (Hendrycks & Dietterich, 2019) from their released ``.npy`` files.

Layout, as the archives extract:

    <root>/CIFAR-10-C/<corruption>.npy   uint8 [5 * N, 32, 32, 3]  (N = 10000)
    <root>/CIFAR-10-C/labels.npy         [5 * N]                   (the test labels, 5 times)

and the same under CIFAR-100-C/. Rows (s - 1) * N .. s * N - 1 hold severity s. ``root`` may be
the folder holding the files or its parent. N is taken from the file length (len // 5), so small
files in the same layout work too. Files are memory-mapped and read without pickle, and only the
requested severity is copied into memory. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.robustness.corruptions import CORRUPTIONS, check_severity

CIFAR_C_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + ("speckle_noise", "gaussian_blur", "spatter", "saturate")
"""File stems in the released archives: the 15 benchmark corruptions and the 4 held-out extras."""

_SUBFOLDERS = ("CIFAR-10-C", "CIFAR-100-C")


def _find_folder(root: Path, corruption: str) -> Path:
    """The folder holding ``<corruption>.npy``: root itself, or exactly one of its CIFAR-*-C."""
    if (root / f"{corruption}.npy").is_file():
        return root
    found = [root / sub for sub in _SUBFOLDERS if (root / sub / f"{corruption}.npy").is_file()]
    if len(found) > 1:
        raise ValueError(
            f"{root} holds both {found[0].name} and {found[1].name}; pass the folder you mean as root"
        )
    if not found:
        tried = [root / f"{corruption}.npy"] + [root / sub / f"{corruption}.npy" for sub in _SUBFOLDERS]
        raise FileNotFoundError(f"no {corruption}.npy for CIFAR-C; looked for: {', '.join(map(str, tried))}")
    return found[0]


def load_cifar_c(root: str | Path, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 32, 32, 3] and labels int64 [N] of one corruption at one severity (1..5).

    Args:
        root: The folder holding the ``.npy`` files, or its parent.
        corruption: One of ``CIFAR_C_CORRUPTIONS``.
        severity: 1..5.

    Returns:
        The severity's images and labels, copied into memory.

    Raises:
        FileNotFoundError: A file is missing (the message names the paths tried).
        ValueError: An unknown corruption, a severity outside 1..5, or files that do not fit the
            layout (not uint8 [M, H, W, 3], M not a multiple of 5, labels not of length M).
    """
    if corruption not in CIFAR_C_CORRUPTIONS:
        raise ValueError(
            f"unknown CIFAR-C corruption {corruption!r}; expected one of: {', '.join(CIFAR_C_CORRUPTIONS)}"
        )
    severity = check_severity(severity)
    folder = _find_folder(Path(root), corruption)
    images_path, labels_path = folder / f"{corruption}.npy", folder / "labels.npy"
    if not labels_path.is_file():
        raise FileNotFoundError(f"CIFAR-C labels file not found: {labels_path}")

    images = np.load(images_path, mmap_mode="r", allow_pickle=False)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(
            f"{images_path}: expected uint8 [M, H, W, 3], got {images.dtype} {list(images.shape)}"
        )
    total = images.shape[0]
    if total == 0 or total % 5 != 0:
        raise ValueError(f"{images_path}: {total} images do not split into 5 equal severities")
    labels = np.load(labels_path, mmap_mode="r", allow_pickle=False)
    if labels.ndim != 1 or labels.shape[0] != total:
        raise ValueError(
            f"{labels_path}: expected {total} labels to match {images_path.name}, "
            f"got shape {list(labels.shape)}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{labels_path}: labels must be integers, got {labels.dtype}")

    per_severity = total // 5
    rows = slice((severity - 1) * per_severity, severity * per_severity)
    return np.array(images[rows]), np.array(labels[rows], dtype=np.int64)
