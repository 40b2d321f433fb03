"""CIFAR10-DVS (Li et al. 2017) from its original AEDAT 2.0 recordings, already extracted under a
root. Nothing is ever downloaded.

Layouts (either is accepted):

    <root>/CIFAR10-DVS/<class>/*.aedat
    <root>/<class>/*.aedat

with the ten classes in the standard CIFAR-10 order (airplane .. truck), every class folder
present. The data set has no official split; the one used here: within each class the files are
sorted by name (plain string order), the first ``9 n // 10`` are ``train`` and the remaining ones
``test`` (the usual 9:1 split, 900 / 100 per class for the full set). Integer arithmetic and a
name sort keep it the same on every machine and file system.

AEDAT 2.0: header lines starting with ``#`` (the first is ``#!AER-DAT2.0``), each ending with
``\\r\\n``, then big-endian 8-byte records: uint32 address, uint32 timestamp in microseconds.
The recordings come from a DVS128, whose address packs the polarity bit in bit 0, the sensor
column in bits 1-7 and the sensor row in bits 8-14.

Orientation and polarity follow SpikingJelly's CIFAR10-DVS loader
(``spikingjelly/datasets/cifar10_dvs.py``, which reads the same bits with masks 0x1, 0xFE >> 1,
0x7F00 >> 8): that loader transposes the sensor axes and mirrors both so the objects appear
upright, and inverts the raw polarity bit, which the DVS128 sets for OFF events. So with
``column = (address >> 1) & 0x7F``, ``row = (address >> 8) & 0x7F``, ``bit = address & 1``:

    x = 127 - row,  y = 127 - column,  p = 1 - bit   (p = 1 is ON, as in ``dvs-events/1``)

Matching that loader keeps frames comparable with the published CIFAR10-DVS results that were
trained on its output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from training.contract.events.binning import bin_events
from training.contract.events.format import make_events
from training.data.cifar import CIFAR10_INFO
from training.data.info import DatasetInfo
from training.data.samples import Sample

SENSOR_SIZE = 128  # DVS128: 128 x 128 pixels
DEFAULT_BIN_US = 325_000
AEDAT2_MAGIC = b"#!AER-DAT2.0"
AEDAT2_RECORD = np.dtype([("address", ">u4"), ("timestamp", ">u4")])
FOLDER = "CIFAR10-DVS"
TRAIN_TENTHS = 9  # the first 9/10 of each class's files are train

CIFAR10_DVS_INFO = DatasetInfo(
    name="cifar10-dvs",
    input_shape=(2, SENSOR_SIZE, SENSOR_SIZE),
    labels=CIFAR10_INFO.labels,
    mean=(0.0, 0.0),
    std=(1.0, 1.0),
    kind="events",
    bin_us=DEFAULT_BIN_US,
)


def _split_header(data: bytes, path: Path) -> int:
    """Offset of the first record: just past the last ``#`` header line."""
    first_line_end = data.find(b"\n")
    first_line = data if first_line_end < 0 else data[:first_line_end]
    if first_line.rstrip(b"\r") != AEDAT2_MAGIC:
        raise ValueError(f"{path} is not an AEDAT 2.0 file: its first line is not {AEDAT2_MAGIC.decode()!r}")
    offset = 0
    # A DVS128 address is below 2**16, so a record's first byte is 0x00 and never reads as '#'.
    while offset < len(data) and data[offset : offset + 1] == b"#":
        line_end = data.find(b"\n", offset)
        if line_end < 0:
            return len(data)
        offset = line_end + 1
    return offset


def read_aedat2(path: str | Path) -> np.ndarray:
    """The events of one CIFAR10-DVS recording as ``dvs-events/1`` records, t non-decreasing.

    Timestamps become int64 microseconds. Where they decrease (the 32-bit counter wrapped, or
    the recording was stitched), the events are sorted stably by timestamp, because the binner
    needs non-decreasing time; events with equal timestamps keep their file order.

    Args:
        path: The ``.aedat`` file.

    Returns:
        The events, ``dvs-events/1`` records.

    Raises:
        ValueError: Not an AEDAT 2.0 file, or a body that is not whole records.
    """
    path = Path(path)
    data = path.read_bytes()
    start = _split_header(data, path)
    body = len(data) - start
    if body % AEDAT2_RECORD.itemsize:
        raise ValueError(
            f"{path}: the data after the header is {body} bytes, "
            f"not a whole number of {AEDAT2_RECORD.itemsize}-byte records"
        )
    records = np.frombuffer(data, dtype=AEDAT2_RECORD, offset=start)
    address = records["address"].astype(np.int64)
    t = records["timestamp"].astype(np.int64)
    column = (address >> 1) & 0x7F
    row = (address >> 8) & 0x7F
    on = 1 - (address & 1)
    events = make_events(t, SENSOR_SIZE - 1 - row, SENSOR_SIZE - 1 - column, on)
    if len(t) and np.any(np.diff(t) < 0):
        events = events[np.argsort(t, kind="stable")]
    return events


def find_cifar10_dvs_folder(root: str | Path) -> Path:
    """The folder holding the class folders: ``<root>/CIFAR10-DVS`` if it exists, else ``root``.

    Args:
        root: The data root given by the user.

    Returns:
        The folder expected to hold one folder per class.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist or is not a folder")
    return root / FOLDER if (root / FOLDER).is_dir() else root


def split_files(files: list[Path], split: str) -> list[Path]:
    """This split's share of one class's files: the name-sorted first 9/10 or the rest.

    Args:
        files: One class's recordings.
        split: ``"train"`` for the first 9/10, anything else for the rest.

    Returns:
        The split's files, sorted by name.
    """
    ordered = sorted(files, key=lambda file: file.name)
    train_count = len(ordered) * TRAIN_TENTHS // 10
    return ordered[:train_count] if split == "train" else ordered[train_count:]


class Cifar10DvsDataset(Dataset[Sample]):
    """One split of CIFAR10-DVS, read lazily: only the file list is kept in memory.

    Yields (frames, int label): frames are float32 [bins, 2, 128, 128] event counts, each bin
    ``bin_us`` microseconds long, counted from the recording's first event. With ``augment``
    the frames go through ``training.data.event_augment.nda_augment``, drawing from
    ``generator``.

    Args:
        root: The data root: the folder of the class folders or its parent.
        split: ``"train"`` or ``"test"``.
        bins: Frames per recording.
        bin_us: The duration of one frame in microseconds.
        augment: Augment every sample read (training).
        seed: Seed of the augmentation's generator.

    Raises:
        ValueError: An unknown split, or bins or bin_us not positive.
        FileNotFoundError: The root, a class folder or its recordings are missing.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        bins: int = 4,
        bin_us: int = DEFAULT_BIN_US,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"cifar10-dvs has splits 'train' and 'test', not {split!r}")
        if bins <= 0 or bin_us <= 0:
            raise ValueError(f"bins and bin_us must be positive, got {bins} and {bin_us}")
        self.info = CIFAR10_DVS_INFO
        self.bins, self.bin_us, self.augment = bins, bin_us, augment
        folder = find_cifar10_dvs_folder(root)
        self.files: list[Path] = []
        self.labels: list[int] = []
        for label, class_name in enumerate(self.info.labels):
            class_folder = folder / class_name
            if not class_folder.is_dir():
                raise FileNotFoundError(f"missing CIFAR10-DVS class folder {class_folder}")
            recordings = [file for file in class_folder.glob("*.aedat") if file.is_file()]
            if not recordings:
                raise FileNotFoundError(f"CIFAR10-DVS class folder {class_folder} holds no .aedat files")
            chosen = split_files(recordings, split)
            self.files += chosen
            self.labels += [label] * len(chosen)
        # Kept on the data set so that each loader worker can reseed it (see the trainer).
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        events = read_aedat2(self.files[index])
        frames = torch.from_numpy(bin_events(events, SENSOR_SIZE, SENSOR_SIZE, self.bin_us, self.bins))
        if self.augment:
            # Imported here so that loading without augmentation does not depend on it.
            from training.data.event_augment import nda_augment

            frames = nda_augment(frames, self.generator)
        return frames, self.labels[index]
