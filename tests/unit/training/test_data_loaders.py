"""On-disk loaders (CIFAR-10/100, Tiny-ImageNet), their augmentations, and the digits split.

Every data set here is written into tmp_path in its real on-disk format, a few images large.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.data import dataset_info, load_dataset, transforms
from training.data.cifar import CIFAR10_INFO, CIFAR100_INFO
from training.data.tiny_imagenet import tiny_imagenet_info

PLANE = 32 * 32  # one colour plane of a CIFAR row


def pixel_offset(channel: int, row: int, column: int) -> int:
    """Where pixel [c, h, w] sits in a CIFAR row of 3072 values (R, G, B planes, row-major)."""
    return channel * PLANE + row * 32 + column


def write_pickle(path: Path, content: dict, str_keys: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The official files were pickled by Python 2 with byte-string keys and names.
    if not str_keys:
        content = {key.encode(): value for key, value in content.items()}
    with path.open("wb") as file:
        pickle.dump(content, file)


def cifar_rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 3 * PLANE), dtype=np.uint8)


def write_cifar10(root: Path, str_keys: bool = False) -> Path:
    """Five training batches of 2 images (labels 0..9 in turn) and a test batch of 3."""
    folder = root / "cifar-10-batches-py"
    for batch in range(1, 6):
        labels = [2 * (batch - 1), 2 * (batch - 1) + 1]
        content = {"data": cifar_rows(2, batch), "labels": labels}
        write_pickle(folder / f"data_batch_{batch}", content, str_keys)
    test_rows = cifar_rows(3, 99)
    test_rows[1, pixel_offset(1, 5, 7)] = 200  # G at row 5, column 7 of the second test image
    test_rows[1, pixel_offset(2, 31, 0)] = 0  # B at the bottom-left corner
    test_rows[2, pixel_offset(0, 0, 31)] = 255  # R at the top-right corner of the third
    write_pickle(folder / "test_batch", {"data": test_rows, "labels": [3, 1, 4]}, str_keys)
    names = [name if str_keys else name.encode() for name in CIFAR10_INFO.labels]
    write_pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 2}, str_keys)
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    train_rows = cifar_rows(4, 1)
    train_rows[3, pixel_offset(0, 10, 20)] = 17
    write_pickle(
        folder / "train", {"data": train_rows, "fine_labels": [0, 42, 99, 7], "coarse_labels": [4, 1, 2, 3]}
    )
    write_pickle(folder / "test", {"data": cifar_rows(2, 2), "fine_labels": [5, 6], "coarse_labels": [0, 0]})
    names = [name.encode() for name in CIFAR100_INFO.labels]
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": [b"x"] * 20})
    return folder


# Listed out of alphabetical order on purpose: class indices follow the sorted wnids.
TINY_WNIDS = ("n03000003", "n01000001", "n02000002")
TINY_COLOURS = {"n01000001": (250, 20, 20), "n02000002": (10, 200, 60), "n03000003": (30, 30, 220)}


def write_jpeg(path: Path, colour: tuple[int, int, int] | int, mode: str = "RGB", size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), colour).save(path, format="JPEG", quality=95)


def write_tiny_imagenet(root: Path) -> Path:
    """Three classes with two training images each and four validation images."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    # n03000003 is left out of words.txt so its label name falls back to the wnid.
    (folder / "words.txt").write_text(
        "n00000000\tentity\nn01000001\tgoldfish, Carassius auratus\nn02000002\tEgyptian cat\n"
    )
    for wnid in TINY_WNIDS:
        for index in range(2):
            write_jpeg(folder / "train" / wnid / "images" / f"{wnid}_{index}.JPEG", TINY_COLOURS[wnid])
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")  # present in the real archive
    validation = [("val_0.JPEG", "n02000002"), ("val_1.JPEG", "n03000003"), ("val_2.JPEG", "n01000001")]
    for file_name, wnid in validation:
        write_jpeg(folder / "val" / "images" / file_name, TINY_COLOURS[wnid])
    write_jpeg(folder / "val" / "images" / "val_3.JPEG", 128, mode="L")  # a few real images are grayscale
    validation.append(("val_3.JPEG", "n01000001"))
    (folder / "val" / "val_annotations.txt").write_text(
        "".join(f"{file_name}\t{wnid}\t0\t0\t63\t63\n" for file_name, wnid in validation)
    )
    return folder


# CIFAR-10 ------------------------------------------------------------------------------------


def test_cifar10_lengths_labels_and_names(tmp_path):
    write_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", root=str(tmp_path))
    test = load_dataset("cifar10", "test", root=str(tmp_path))

    assert len(train) == 10 and len(test) == 3
    assert [train[i][1] for i in range(10)] == list(range(10))
    assert [test[i][1] for i in range(3)] == [3, 1, 4]
    assert train.info == dataset_info("cifar10") == CIFAR10_INFO
    assert CIFAR10_INFO.labels[:3] == ("airplane", "automobile", "bird") and CIFAR10_INFO.num_classes == 10


def test_cifar10_pixel_lands_at_channel_row_column_after_normalisation(tmp_path):
    write_cifar10(tmp_path)
    test = load_dataset("cifar10", "test", root=str(tmp_path))

    image, _ = test[1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    # (200 / 255 - 0.4822) / 0.2435 and (0 / 255 - 0.4465) / 0.2616, worked out by hand.
    assert image[1, 5, 7].item() == pytest.approx(1.240713, abs=1e-5)
    assert image[2, 31, 0].item() == pytest.approx(-1.706804, abs=1e-5)
    # (255 / 255 - 0.4914) / 0.2470
    assert test[2][0][0, 0, 31].item() == pytest.approx(2.059109, abs=1e-5)


def test_cifar10_root_may_be_the_extracted_folder_and_keys_may_be_str(tmp_path):
    folder = write_cifar10(tmp_path, str_keys=True)
    test = load_dataset("cifar10", "test", root=str(folder))
    assert len(test) == 3
    assert test[1][0][1, 5, 7].item() == pytest.approx(1.240713, abs=1e-5)


def test_cifar10_augmented_items_keep_shape_and_dtype_and_follow_the_seed(tmp_path):
    write_cifar10(tmp_path)
    first = load_dataset("cifar10", "train", root=str(tmp_path), augment=True)
    second = load_dataset("cifar10", "train", root=str(tmp_path), augment=True)

    images = [first[i % 10][0] for i in range(20)]
    assert all(image.shape == (3, 32, 32) and image.dtype == torch.float32 for image in images)
    assert all(torch.equal(image, second[i % 10][0]) for i, image in enumerate(images))
    plain = load_dataset("cifar10", "train", root=str(tmp_path))
    assert any(not torch.equal(image, plain[i % 10][0]) for i, image in enumerate(images))


# CIFAR-100 -----------------------------------------------------------------------------------


def test_cifar100_lengths_fine_labels_names_and_pixel(tmp_path):
    write_cifar100(tmp_path)
    train = load_dataset("cifar100", "train", root=str(tmp_path))
    test = load_dataset("cifar100", "test", root=str(tmp_path / "cifar-100-python"))

    assert len(train) == 4 and len(test) == 2
    assert [train[i][1] for i in range(4)] == [0, 42, 99, 7]
    assert [test[i][1] for i in range(2)] == [5, 6]
    # (17 / 255 - 0.5071) / 0.2673
    assert train[3][0][0, 10, 20].item() == pytest.approx(-1.647712, abs=1e-5)
    assert dataset_info("cifar100").num_classes == 100
    assert CIFAR100_INFO.labels[0] == "apple" and CIFAR100_INFO.labels[99] == "worm"
    assert list(CIFAR100_INFO.labels) == sorted(CIFAR100_INFO.labels)  # the standard order is alphabetical


# CIFAR errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tiny-imagenet"])
def test_missing_root_asks_for_data_root(name):
    with pytest.raises(ValueError, match=f"dataset {name} needs --data-root"):
        load_dataset(name, "train")


def test_cifar_root_that_does_not_exist_or_lacks_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("cifar10", "train", root=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        load_dataset("cifar100", "train", root=str(tmp_path))


def test_cifar_missing_batch_file_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset("cifar10", "train", root=str(tmp_path))
    assert len(load_dataset("cifar10", "test", root=str(tmp_path))) == 3  # the test split does not need it


def test_cifar_wrong_shapes_and_contents_are_refused(tmp_path):
    folder = write_cifar10(tmp_path)
    write_pickle(folder / "test_batch", {"data": np.zeros((2, 3000), np.uint8), "labels": [0, 1]})
    with pytest.raises(ValueError, match=r"test_batch.*uint8 \[N, 3072\].*\[2, 3000\]"):
        load_dataset("cifar10", "test", root=str(tmp_path))

    write_pickle(folder / "test_batch", {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1, 2]})
    with pytest.raises(ValueError, match="one per image"):
        load_dataset("cifar10", "test", root=str(tmp_path))

    write_pickle(folder / "test_batch", {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]})
    with pytest.raises(ValueError, match=r"0\.\.9"):
        load_dataset("cifar10", "test", root=str(tmp_path))

    write_pickle(folder / "test_batch", {"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(ValueError, match="no 'labels' entry"):
        load_dataset("cifar10", "test", root=str(tmp_path))

    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable CIFAR pickle"):
        load_dataset("cifar10", "test", root=str(tmp_path))


def test_cifar_meta_with_other_class_order_is_refused(tmp_path):
    folder = write_cifar10(tmp_path)
    reversed_names = [name.encode() for name in reversed(CIFAR10_INFO.labels)]
    write_pickle(folder / "batches.meta", {"label_names": reversed_names})
    with pytest.raises(ValueError, match="standard cifar10 order"):
        load_dataset("cifar10", "test", root=str(tmp_path))


def test_cifar_unknown_split(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match="'train' and 'test'"):
        load_dataset("cifar10", "val", root=str(tmp_path))


# Tiny-ImageNet -------------------------------------------------------------------------------


def test_tiny_imagenet_splits_labels_and_names(tmp_path):
    write_tiny_imagenet(tmp_path)
    train = load_dataset("tiny-imagenet", "train", root=str(tmp_path))
    val = load_dataset("tiny-imagenet", "val", root=str(tmp_path))

    assert len(train) == 6 and len(val) == 4
    assert [train[i][1] for i in range(6)] == [0, 0, 1, 1, 2, 2]
    assert [val[i][1] for i in range(4)] == [1, 2, 0, 0]
    expected_names = ("goldfish, Carassius auratus", "Egyptian cat", "n03000003")
    assert train.info.labels == expected_names
    assert tiny_imagenet_info(tmp_path).labels == expected_names
    assert tiny_imagenet_info(tmp_path / "tiny-imagenet-200").input_shape == (3, 64, 64)


def test_tiny_imagenet_pixels_are_normalised_rgb(tmp_path):
    write_tiny_imagenet(tmp_path)
    val = load_dataset("tiny-imagenet", "val", root=str(tmp_path))

    image, label = val[0]  # a flat (10, 200, 60) image of class n02000002
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64) and label == 1
    jpeg_tolerance = 0.04  # about 2 grey levels after dividing by std
    # (200 / 255 - 0.4481) / 0.2265
    assert image[1, 32, 32].item() == pytest.approx(1.484387, abs=jpeg_tolerance)
    grey, _ = val[3]  # a grayscale JPEG of value 128, converted to RGB
    # (128 / 255 - 0.4802) / 0.2302 and (128 / 255 - 0.3975) / 0.2262
    assert grey[0, 0, 0].item() == pytest.approx(0.094530, abs=jpeg_tolerance)
    assert grey[2, 63, 63].item() == pytest.approx(0.461807, abs=jpeg_tolerance)


def test_tiny_imagenet_test_is_val_and_root_may_be_the_folder(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    val = load_dataset("tiny-imagenet", "val", root=str(tmp_path))
    test = load_dataset("tiny-imagenet", "test", root=str(folder))
    assert test.samples == val.samples


def test_tiny_imagenet_augmented_items_keep_shape_and_dtype(tmp_path):
    write_tiny_imagenet(tmp_path)
    train = load_dataset("tiny-imagenet", "train", root=str(tmp_path), augment=True)
    for index in range(len(train)):
        image, _ = train[index]
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32


def test_tiny_imagenet_info_without_root_has_placeholder_names():
    info = dataset_info("tiny-imagenet")
    assert info.num_classes == 200 and info.input_shape == (3, 64, 64)
    assert info.labels[0] == "class_000" and info.labels[199] == "class_199"
    assert info.mean == (0.4802, 0.4481, 0.3975) and info.std == (0.2302, 0.2265, 0.2262)


def test_tiny_imagenet_errors_name_the_missing_or_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny-imagenet-200"):
        load_dataset("tiny-imagenet", "train", root=str(tmp_path))

    folder = write_tiny_imagenet(tmp_path)
    annotations = folder / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn09999999\t0\t0\t63\t63\n")
    with pytest.raises(ValueError, match="val_annotations.txt:1"):
        load_dataset("tiny-imagenet", "val", root=str(tmp_path))
    annotations.write_text("gone.JPEG\tn01000001\t0\t0\t63\t63\n")
    with pytest.raises(FileNotFoundError, match="gone.JPEG"):
        load_dataset("tiny-imagenet", "val", root=str(tmp_path))
    annotations.unlink()
    with pytest.raises(FileNotFoundError, match="val_annotations.txt"):
        load_dataset("tiny-imagenet", "val", root=str(tmp_path))

    write_jpeg(folder / "train" / "n01000001" / "images" / "n01000001_0.JPEG", (0, 0, 0), size=32)
    train = load_dataset("tiny-imagenet", "train", root=str(tmp_path))
    with pytest.raises(ValueError, match="32x32 pixels"):
        train[0]

    for path in (folder / "train" / "n02000002" / "images").iterdir():
        path.unlink()
    (folder / "train" / "n02000002" / "images").rmdir()
    with pytest.raises(FileNotFoundError, match="n02000002"):
        load_dataset("tiny-imagenet", "train", root=str(tmp_path))

    with pytest.raises(ValueError, match="'train' and 'val'"):
        load_dataset("tiny-imagenet", "holdout", root=str(tmp_path))


# Augmentations -------------------------------------------------------------------------------


def test_random_crop_is_a_zero_filled_shift_of_the_image():
    image = torch.arange(1, 1 + 3 * 8 * 8, dtype=torch.int32).reshape(3, 8, 8).to(torch.uint8)
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        cropped = transforms.random_crop(image, generator, padding=2)
        assert cropped.shape == image.shape
        # Locate the shift through the first surviving original pixel and compare the overlap.
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
        matches = [
            (top, left)
            for top in range(5)
            for left in range(5)
            if torch.equal(padded[:, top : top + 8, left : left + 8], cropped)
        ]
        assert len(matches) == 1


def test_train_transform_follows_its_generator():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    first = transforms.train_transform("cifar10", torch.Generator().manual_seed(7))
    second = transforms.train_transform("cifar10", torch.Generator().manual_seed(7))
    outputs = [first(image) for _ in range(10)]
    assert all(torch.equal(output, second(image)) for output in outputs)
    assert all(output.dtype == torch.uint8 and output.shape == (3, 32, 32) for output in outputs)
    assert len({output.numpy().tobytes() for output in outputs}) > 1
    with pytest.raises(ValueError, match="no augmentation policy"):
        transforms.train_transform("mnist", torch.Generator())


def test_paper_policies_are_chosen_per_dataset_and_leave_the_global_rng_alone():
    from training.data.augment_policies import AutoAugment, RandAugment

    assert isinstance(transforms.paper_policy("cifar10"), AutoAugment)
    assert isinstance(transforms.paper_policy("cifar100"), AutoAugment)
    assert isinstance(transforms.paper_policy("tiny-imagenet"), RandAugment)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    global_state = torch.get_rng_state()
    augment = transforms.train_transform("tiny-imagenet", torch.Generator().manual_seed(5))
    outputs = [augment(image) for _ in range(5)]
    assert torch.equal(torch.get_rng_state(), global_state)
    assert len({output.numpy().tobytes() for output in outputs}) == 5


# Digits --------------------------------------------------------------------------------------


def test_digits_split_is_every_fifth_sample_for_test():
    from sklearn.datasets import load_digits

    digits = load_digits()
    test = load_dataset("digits", "test")
    train = load_dataset("digits", "train")

    assert len(train) == 1437 and len(test) == 360
    index = np.arange(len(digits.target))
    # scaled through the 8-bit image form: min(255, 16 v) / 255
    as_image = lambda raw: np.minimum(255, raw * 16).astype(np.float32) / 255  # noqa: E731
    expected_test = torch.from_numpy(as_image(digits.images[index % 5 == 0])).unsqueeze(1)
    expected_train = torch.from_numpy(as_image(digits.images[index % 5 != 0])).unsqueeze(1)
    assert torch.equal(test.images, expected_test)
    assert torch.equal(train.images, expected_train)
    assert test.labels.tolist() == digits.target[index % 5 == 0].tolist()
    assert train.labels.tolist() == digits.target[index % 5 != 0].tolist()
