"""The IDX reader and the fashion-mnist data set: tiny IDX files written here in the real format,
and (where Debian's dataset-fashion-mnist package is installed, as `make test` ensures) the real
files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import dataset_info, load_dataset
from training.data.fashion_mnist import DEFAULT_ROOT, FILES
from training.data.idx import parse_idx, read_idx, write_idx

NAMES = (
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
)


def write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    images_name, labels_name = FILES[split]
    write_idx(root / images_name, images)
    write_idx(root / labels_name, labels)


def tiny_set(root: Path, train: int = 6, test: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(test, 28, 28), dtype=np.uint8)
    labels = np.arange(test, dtype=np.uint8) % 10
    write_split(root, "test", images, labels)
    write_split(
        root,
        "train",
        rng.integers(0, 256, size=(train, 28, 28), dtype=np.uint8),
        np.arange(train, dtype=np.uint8) % 10,
    )
    return images, labels


def test_idx_header_by_hand():
    # uint8, 2 dimensions 2 x 3, then six bytes row-major
    data = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    assert parse_idx(data).tolist() == [[1, 2, 3], [4, 5, 6]]
    # int32 is big-endian: 0x00000102 = 258
    assert parse_idx(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 1, 2])).tolist() == [258]


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-1.5, 2.25], dtype=np.float32),
        np.array([70000, -3], dtype=np.int32),
    ],
)
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trips_plain_and_gzip(tmp_path, array, name):
    write_idx(tmp_path / name, array)
    read = read_idx(tmp_path / name)
    assert read.dtype == array.dtype.newbyteorder("=") and np.array_equal(read, array)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not an IDX file"),
        (bytes([1, 0, 0x08, 1, 0, 0, 0, 1, 7]), "bad magic"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 7]), "bad magic"),
        (bytes([0, 0, 0x08, 3, 0, 0, 0, 1]), "truncated header"),
        (bytes([0, 0, 0x08, 1, 0, 0, 0, 4, 1, 2, 3]), "truncated: 11 bytes"),
        (bytes([0, 0, 0x08, 1, 0, 0, 0, 1, 1, 2]), "longer than its header says"),
    ],
)
def test_bad_idx_data_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(data)


def test_a_cut_off_gzip_file_is_refused(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    whole = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="broken gzip stream"):
        read_idx(tmp_path / "cut.gz")


def test_tiny_files_load_as_the_data_set(tmp_path):
    images, labels = tiny_set(tmp_path)
    test = load_dataset("fashion-mnist", "test", str(tmp_path))
    assert len(test) == 4 and len(load_dataset("fashion-mnist", "train", str(tmp_path))) == 6
    image, label = test[2]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label == 2
    # pixels / 255, nothing else: the same numbers the service makes from a PNG of the image
    assert torch.equal(image[0], torch.from_numpy(images[2].astype(np.float32) / np.float32(255)))
    assert dataset_info("fashion-mnist").labels == NAMES
    assert test.info.labels[label] == "Pullover"


def test_unpacked_files_are_found_too(tmp_path):
    images, labels = tiny_set(tmp_path)
    for name in FILES["test"]:
        (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress((tmp_path / name).read_bytes()))
        (tmp_path / name).unlink()
    assert len(load_dataset("fashion-mnist", "test", str(tmp_path))) == 4


def test_augmented_training_images_follow_the_seed(tmp_path):
    tiny_set(tmp_path)
    options = {"flip_p": 0.5}
    first = [
        load_dataset("fashion-mnist", "train", str(tmp_path), augment=True, augmentation=options)[i][0]
        for i in range(6)
    ]
    again = [
        load_dataset("fashion-mnist", "train", str(tmp_path), augment=True, augmentation=options)[i][0]
        for i in range(6)
    ]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(a.shape == (1, 28, 28) and a.dtype == torch.float32 for a in first)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda root: (root / FILES["test"][1]).unlink(), "install Debian's package dataset-fashion-mnist"),
        (lambda root: write_idx(root / FILES["test"][1], np.zeros(3, np.uint8)), "expected 4 uint8 labels"),
        (
            lambda root: write_idx(root / FILES["test"][1], np.array([0, 1, 2, 10], np.uint8)),
            "labels must lie in 0..9",
        ),
        (
            lambda root: write_idx(root / FILES["test"][0], np.zeros((4, 32, 32), np.uint8)),
            r"images \[N, 28, 28\]",
        ),
        (lambda root: (root / FILES["test"][0]).write_bytes(b"<html>not found</html>"), "not an IDX file"),
    ],
)
def test_missing_or_wrong_files_are_named(tmp_path, mutate, message):
    tiny_set(tmp_path)
    mutate(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_dataset("fashion-mnist", "test", str(tmp_path))


def test_unknown_split_is_refused(tmp_path):
    tiny_set(tmp_path)
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        load_dataset("fashion-mnist", "validation", str(tmp_path))


@pytest.mark.skipif(
    not (DEFAULT_ROOT / FILES["test"][0]).exists() and not os.environ.get("CI"),
    reason="Debian's dataset-fashion-mnist is not installed (make test installs it; CI requires it)",
)
def test_the_real_files_from_the_debian_package():
    test = load_dataset("fashion-mnist", "test")
    assert len(test) == 10_000
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    # The first test image of the published set is an ankle boot, the second a pullover.
    assert [test.info.labels[int(test.labels[i])] for i in range(2)] == ["Ankle boot", "Pullover"]
    assert 0.28 < float(test.images.mean()) < 0.29


@pytest.mark.slow
def test_the_experiment_runs_on_fashion_mnist(tmp_path):
    from training.experiment import VARIANTS, run_experiment

    (tmp_path / "data").mkdir()
    tiny_set(tmp_path / "data", train=64, test=8)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results.md").write_text("# Results on digits\n")  # another data set's page
    page = run_experiment(
        tmp_path / "docs",
        tmp_path / "work",
        epochs=1,
        robustness=False,
        config="fashion_mnist",
        overrides=[
            f"data_root={tmp_path / 'data'}",
            "train_images=32",
            "batch_size=16",
            "workers=0",
            "network.arch_args.channels=[4, 8]",
            "augmentation={}",
        ],
        page="results-fashion-mnist.md",
        skip=("latency-t6",),
    )
    text = page.read_text()
    assert page.name == "results-fashion-mnist.md" and text.startswith("# Results on fashion-mnist")
    assert "fashion-mnist test split, 8 samples" in text and "digits" not in text
    assert "Right vs wrong (latency model): right answers:" in text
    assert "Other data sets: [results.md](results.md)." in text
    for image in ("time_scan.png", "decision_histogram.png", "difficulty.png", "temporal_similarity.png"):
        assert (tmp_path / "docs" / "results" / "fashion-mnist" / image).exists()
        assert f"results/fashion-mnist/{image}" in text
    assert sorted(p.name for p in (tmp_path / "work" / "store").iterdir()) == sorted(
        set(VARIANTS) - {"latency-t6"}
    )
    scan = text.split("## Time scalability")[1].split("![")[0]
    assert [
        line.split(" | ")[0] for line in scan.splitlines() if line[:3] in ("| 2", "| 4", "| 6", "| 8")
    ] == ["| 2", "| 4", "| 8"]
