"""CIFAR10-DVS: AEDAT 2.0 decoding, the folder layout and 9:1 split, frames, and the errors,
all on tiny files written byte for byte in the recordings' format."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import dataset_info, load_dataset
from training.data.cifar10_dvs import CIFAR10_DVS_INFO, Cifar10DvsDataset, read_aedat2

HEADER = (
    b"#!AER-DAT2.0\r\n"
    b"# This is a raw AE data file created by saveAerDat.m\r\n"
    b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
    b"# Timestamps tick is 1 us\r\n"
)


def dvs128_address(column: int, row: int, bit: int) -> int:
    """A DVS128 address as the sensor writes it: bit 0 polarity, bits 1-7 column, 8-14 row."""
    return (row << 8) | (column << 1) | bit


def aedat2_bytes(records: list[tuple[int, int]], header: bytes = HEADER) -> bytes:
    """An AEDAT 2.0 file: the header, then big-endian (uint32 address, uint32 timestamp) pairs."""
    return header + b"".join(struct.pack(">II", address, timestamp) for address, timestamp in records)


def write_aedat2(path: Path, records: list[tuple[int, int]], header: bytes = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(aedat2_bytes(records, header))
    return path


def make_root(
    root: Path,
    classes: tuple[str, ...] = CIFAR10_DVS_INFO.labels,
    files_per_class: int = 10,
    nested: bool = True,
) -> Path:
    """A CIFAR10-DVS tree; file i of a class has one event whose raw column is i and raw row is
    the class index, so every sample says where it came from."""
    folder = root / "CIFAR10-DVS" if nested else root
    for label, name in enumerate(classes):
        for i in range(files_per_class):
            records = [(dvs128_address(i, label, 0), 1000 + i)]
            write_aedat2(folder / name / f"cifar10_{name}_{i}.aedat", records)
    return root


def test_decodes_hand_built_records(tmp_path):
    raw = [  # (column, row, bit, timestamp)
        (0, 0, 0, 5),
        (127, 0, 1, 6),
        (3, 100, 1, 6),
        (64, 127, 0, 4_000_000_000),  # above 2**31: the timestamp is unsigned
    ]
    path = write_aedat2(tmp_path / "a.aedat", [(dvs128_address(c, r, b), t) for c, r, b, t in raw])
    events = read_aedat2(path)
    assert events["t"].dtype == np.int64
    assert events["t"].tolist() == [5, 6, 6, 4_000_000_000]
    # SpikingJelly's CIFAR10-DVS orientation: x = 127 - row, y = 127 - column, ON = 1 - bit.
    assert events["x"].tolist() == [127, 127, 27, 0]
    assert events["y"].tolist() == [127, 0, 124, 63]
    assert events["p"].tolist() == [1, 0, 0, 1]


def test_ignores_address_bits_outside_the_dvs128_fields(tmp_path):
    path = write_aedat2(tmp_path / "a.aedat", [(0x8000 | dvs128_address(5, 7, 1), 10)])
    events = read_aedat2(path)
    assert (events["x"][0], events["y"][0], events["p"][0]) == (120, 122, 0)


def test_header_only_file_has_no_events(tmp_path):
    assert len(read_aedat2(write_aedat2(tmp_path / "a.aedat", []))) == 0


def test_decreasing_timestamps_are_sorted_stably(tmp_path):
    records = [
        (dvs128_address(1, 0, 0), 300),
        (dvs128_address(2, 0, 0), 100),
        (dvs128_address(3, 0, 0), 300),
        (dvs128_address(4, 0, 0), 100),
    ]
    events = read_aedat2(write_aedat2(tmp_path / "a.aedat", records))
    assert events["t"].tolist() == [100, 100, 300, 300]
    assert events["y"].tolist() == [125, 123, 126, 124]  # equal times keep their file order


def test_rejects_a_missing_magic_line(tmp_path):
    path = write_aedat2(tmp_path / "bad.aedat", [(0, 1)], header=b"#!AER-DAT3.1\r\n# other\r\n")
    with pytest.raises(ValueError, match=r"bad\.aedat.*AER-DAT2\.0"):
        read_aedat2(path)
    empty = tmp_path / "empty.aedat"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.aedat"):
        read_aedat2(empty)


def test_rejects_truncated_record_data(tmp_path):
    path = tmp_path / "cut.aedat"
    path.write_bytes(aedat2_bytes([(dvs128_address(1, 2, 0), 10), (dvs128_address(3, 4, 1), 20)])[:-3])
    with pytest.raises(ValueError, match=r"cut\.aedat.*13 bytes.*8-byte records"):
        read_aedat2(path)


@pytest.mark.parametrize("nested", [True, False])
def test_split_is_nine_to_one_per_class_by_name(tmp_path, nested):
    make_root(tmp_path, files_per_class=10, nested=nested)
    train = Cifar10DvsDataset(tmp_path, "train")
    test = Cifar10DvsDataset(tmp_path, "test")
    assert len(train) == 90 and len(test) == 10
    assert train.labels == [label for label in range(10) for _ in range(9)]
    assert test.labels == list(range(10))
    # Name order is string order: cifar10_x_9 sorts last, so it is each class's test file.
    assert [file.name for file in test.files[:2]] == [
        "cifar10_airplane_9.aedat",
        "cifar10_automobile_9.aedat",
    ]
    assert not set(train.files) & set(test.files)


def test_split_rounds_train_down(tmp_path):
    make_root(tmp_path, files_per_class=15)
    assert len(Cifar10DvsDataset(tmp_path, "train")) == 10 * 13  # 15 * 9 // 10
    assert len(Cifar10DvsDataset(tmp_path, "test")) == 10 * 2


def test_frames_put_each_event_in_its_bin_polarity_row_and_column(tmp_path):
    make_root(tmp_path)
    records = [
        (dvs128_address(10, 20, 0), 1_000),  # t0; ON at x = 107, y = 117
        (dvs128_address(10, 20, 0), 1_500),  # the same pixel again, same bin
        (dvs128_address(30, 40, 1), 1_000 + 325_000),  # OFF, bin 1, x = 87, y = 97
        (dvs128_address(0, 0, 0), 1_000 + 3 * 325_000 + 7),  # ON, last bin, x = y = 127
        (dvs128_address(5, 5, 0), 1_000 + 4 * 325_000),  # past the last bin: dropped
    ]
    write_aedat2(tmp_path / "CIFAR10-DVS" / "cat" / "cifar10_cat_0.aedat", records)
    dataset = Cifar10DvsDataset(tmp_path, "train")
    index = dataset.files.index(tmp_path / "CIFAR10-DVS" / "cat" / "cifar10_cat_0.aedat")
    frames, label = dataset[index]
    assert label == 3
    assert frames.dtype == torch.float32 and frames.shape == (4, 2, 128, 128)
    assert frames[0, 1, 117, 107] == 2
    assert frames[1, 0, 97, 87] == 1
    assert frames[3, 1, 127, 127] == 1
    assert frames.sum() == 4


def test_bins_and_bin_us_are_honoured(tmp_path):
    make_root(tmp_path)
    frames, label = Cifar10DvsDataset(tmp_path, "test", bins=7, bin_us=1_000)[2]
    assert label == 2 and frames.shape == (7, 2, 128, 128)
    # The bird test file (i = 9) has one ON event at raw column 9, row 2: x = 125, y = 118.
    assert frames[0, 1, 118, 125] == 1 and frames.sum() == 1


def test_generator_is_seeded(tmp_path):
    make_root(tmp_path)
    first = Cifar10DvsDataset(tmp_path, "train", seed=5).generator
    second = Cifar10DvsDataset(tmp_path, "train", seed=5).generator
    assert torch.equal(torch.rand(3, generator=first), torch.rand(3, generator=second))


def test_missing_root_and_class_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Cifar10DvsDataset(tmp_path / "nowhere", "train")
    make_root(tmp_path, classes=CIFAR10_DVS_INFO.labels[:3])
    with pytest.raises(FileNotFoundError, match=r"class folder .*cat"):
        Cifar10DvsDataset(tmp_path, "train")
    (tmp_path / "CIFAR10-DVS" / "cat").mkdir()
    with pytest.raises(FileNotFoundError, match=r"cat holds no \.aedat"):
        Cifar10DvsDataset(tmp_path, "train")


def test_rejects_unknown_split(tmp_path):
    make_root(tmp_path)
    with pytest.raises(ValueError, match="'val'"):
        Cifar10DvsDataset(tmp_path, "val")


def test_registered_by_name(tmp_path):
    info = dataset_info("cifar10-dvs")
    assert info is CIFAR10_DVS_INFO
    assert info.input_shape == (2, 128, 128) and info.num_classes == 10
    assert info.labels[0] == "airplane" and info.labels[-1] == "truck"
    assert info.kind == "events" and info.bin_us == 325_000
    with pytest.raises(ValueError, match="--data-root"):
        load_dataset("cifar10-dvs", "train")
    make_root(tmp_path)
    test = load_dataset("cifar10-dvs", "test", root=str(tmp_path))
    assert len(test) == 10 and test[0][0].shape == (4, 2, 128, 128)
