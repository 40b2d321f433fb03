"""A user's image folder as a data set (training/data/image_folder.py): scanning and its errors,
the splits, the disk cache, the recipe, and items equal to what the service computes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.inference.preprocessing import preprocess
from training.config import TrainConfig
from training.contract.images.decode import ImageLimits, decode_image
from training.contract.images.model_input import InputSpec, normalize_pixels
from training.contract.images.resize import DEFAULT_RESIZE, ResizePolicy
from training.data import image_folder
from training.data.image_augment import UserInputAugmentation
from training.data.image_folder import (
    FolderError,
    FolderScan,
    ImageFolderDataset,
    SizeStats,
    default_recipe,
    folder_info,
    scan_folder,
    split_stratified,
    stage_widths,
)
from training.data.image_folder_cache import ImageCache, default_cache_dir
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec
from training.neurons.lif import LIFParameters

FORMATS = (  # (suffix, Pillow format, mode, size): every class gets one of each
    ("png", "PNG", "L", (12, 12)),
    ("jpg", "JPEG", "RGB", (20, 14)),
    ("webp", "WEBP", "RGB", (9, 16)),
    ("bmp", "BMP", "RGB", (16, 16)),
    ("gif", "GIF", "P", (10, 8)),
    ("rgba.png", "PNG", "RGBA", (14, 10)),
)


def picture(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    """A small picture with structure (a bright square on a gradient) in ``mode``."""
    rng = np.random.default_rng(seed)
    width, height = size
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[...] = (np.linspace(0, 120, width)[None, :, None] + rng.integers(0, 40, 3)).astype(np.uint8)
    rgb[height // 4 : height // 2 + 1, width // 4 : width // 2 + 1] = rng.integers(150, 256, 3)
    image = Image.fromarray(rgb, "RGB")
    if mode == "P":
        return image.quantize(16)
    return image.convert(mode)


def write_image(path: Path, image: Image.Image, form: str, **options: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, form, **options)


def make_class(folder: Path, count: int = 6, seed: int = 0) -> list[Path]:
    """``count`` images of mixed formats, sizes and modes."""
    paths = []
    for number in range(count):
        suffix, form, mode, size = FORMATS[number % len(FORMATS)]
        path = folder / f"img{number:02d}.{suffix}"
        write_image(path, picture(mode, size, seed * 100 + number), form)
        paths.append(path)
    return paths


def grey_class(folder: Path, count: int = 5) -> None:
    for number in range(count):
        write_image(folder / f"g{number}.png", picture("L", (8, 8), number), "PNG")


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Three classes of mixed images, with junk that must be skipped and named."""
    root = tmp_path / "pets"
    for index, name in enumerate(("cat", "dog", "emu")):
        make_class(root / name, seed=index)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "dog" / "empty.png").write_bytes(b"")
    buffer = io.BytesIO()
    picture("RGB", (40, 40), 7).save(buffer, "JPEG")
    (root / "emu" / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / ".thumbnails").mkdir()
    (root / "readme.md").write_text("my pets")
    return root


def test_scan_reads_mixed_images_and_names_what_it_skips(mixed: Path) -> None:
    scan = scan_folder(mixed)
    assert scan.classes == ("cat", "dog", "emu")
    assert scan.formats == {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
    assert scan.modes == {"L", "RGB", "P", "RGBA"}
    assert not scan.all_grey
    assert scan.sizes == SizeStats(width=(9, 12, 20), height=(8, 12, 16))
    counts = scan.counts
    assert [t + v for t, v in zip(counts["train"], counts["val"])] == [6, 6, 6]
    assert counts["test"] == [0, 0, 0]
    reasons = {item.path: item.reason for item in scan.skipped}
    assert set(reasons) == {
        ".thumbnails/",
        "readme.md",
        "cat/notes.txt",
        "dog/.DS_Store",
        "dog/empty.png",
        "emu/truncated.jpg",
    }
    assert reasons["dog/.DS_Store"] == "hidden"
    assert reasons["readme.md"] == "not in a class folder"
    assert "empty" in reasons["dog/empty.png"]
    assert "not an image" in reasons["cat/notes.txt"]
    assert "could not be decoded" in reasons["emu/truncated.jpg"]
    table = scan.table()
    for text in ("cat", "dog", "emu", "emu/truncated.jpg", "GIF, JPEG, PNG", "width 9..20 (median 12)"):
        assert text in table
    assert len(table.splitlines()) < 20


def test_the_table_names_ten_skipped_files_then_counts(tmp_path: Path) -> None:
    for name in ("a", "b"):
        grey_class(tmp_path / name)
    for number in range(13):
        (tmp_path / "a" / f"junk{number:02d}.txt").write_text("x")
    table = scan_folder(tmp_path).table()
    assert "skipped 13:" in table
    assert "a/junk09.txt" in table and "a/junk10.txt" not in table
    assert "... and 3 more" in table


def test_strict_refuses_the_first_skipped_file(mixed: Path) -> None:
    with pytest.raises(FolderError, match=r"^\.thumbnails/: hidden \(strict"):
        scan_folder(mixed, strict=True)
    (mixed / ".thumbnails").rmdir()
    (mixed / "readme.md").unlink()
    with pytest.raises(FolderError, match=r"^cat/notes\.txt: .*not an image"):
        scan_folder(mixed, strict=True)


def test_a_clean_folder_passes_strict(tmp_path: Path) -> None:
    for name in ("a", "b"):
        grey_class(tmp_path / name)
    # A grey picture saved in colour (JPEG's rounding included) is still grey.
    write_image(tmp_path / "b" / "grey-in-colour.jpg", picture("L", (30, 20), 9).convert("RGB"), "JPEG")
    scan = scan_folder(tmp_path, strict=True)
    assert scan.skipped == () and scan.all_grey and scan.modes == {"L", "RGB"}
    assert default_recipe(scan)["network"]["input_shape"][0] == 1


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    stored = np.zeros((10, 20), dtype=np.uint8)
    stored[:, :10] = 255  # the left half of the stored image is white
    exif = Image.Exif()
    exif[0x0112] = 6  # shown after turning the stored image 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(stored, "L").save(buffer, "JPEG", exif=exif, quality=95)
    upright = np.asarray(decode_image(buffer.getvalue(), ImageLimits()))
    assert upright.shape == (20, 10)  # now tall
    assert upright[:8].mean() > 200 and upright[12:].mean() < 50  # the white half on top
    for name in ("a", "b"):
        grey_class(tmp_path / name)
    (tmp_path / "a" / "turned.jpg").write_bytes(buffer.getvalue())
    scan = scan_folder(tmp_path)
    assert scan.sizes.height[2] == 20 and scan.sizes.width[2] == 10
    # The service decodes the same way: the item is what /classify makes of the file.
    entries = [
        entry for entry in scan.splits["train"] + scan.splits["val"] if entry[0].endswith("turned.jpg")
    ]
    dataset = ImageFolderDataset(tmp_path, entries, SPECS[0], cache=ImageCache(tmp_path / ".cache"))
    served = preprocess(buffer.getvalue(), SPECS[0], ImageLimits())
    np.testing.assert_array_equal(dataset[0][0].numpy(), served)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, r"has no class folders"),
        ({"only": 5}, r"has one class \('only'\); a classifier needs at least two"),
        ({"a": 5, "b": 0}, r"^class 'b' has no usable images$"),
        ({"a": 5, "b": 3}, r"^class 'b' has 3 usable images; each class needs at least 5$"),
    ],
)
def test_folders_that_cannot_train_a_classifier(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    for name, count in layout.items():
        (tmp_path / name).mkdir()
        grey_class(tmp_path / name, count)
    with pytest.raises(FolderError, match=message):
        scan_folder(tmp_path)


def test_a_missing_folder_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(FolderError, match=r"does not exist"):
        scan_folder(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(FolderError, match=r"is not a folder"):
        scan_folder(tmp_path / "file.png")
    assert issubclass(FolderError, ValueError)


def test_explicit_splits(tmp_path: Path) -> None:
    for name in ("a", "b"):
        grey_class(tmp_path / "train" / name, 6)
        grey_class(tmp_path / "val" / name, 2)
    grey_class(tmp_path / "test" / "b", 3)
    scan = scan_folder(tmp_path)
    assert scan.split_by == "folders"
    assert scan.counts == {"train": [6, 6], "val": [2, 2], "test": [0, 3]}
    assert scan.splits["test"][0] == ("test/b/g0.png", 1)
    assert "validation: val/" in scan.table()


def test_explicit_splits_without_val_split_train(tmp_path: Path) -> None:
    for name in ("a", "b"):
        grey_class(tmp_path / "train" / name, 10)
        grey_class(tmp_path / "test" / name, 2)
    scan = scan_folder(tmp_path)
    assert scan.split_by == "stratified"
    assert scan.counts == {"train": [9, 9], "val": [1, 1], "test": [2, 2]}


def test_explicit_split_errors(tmp_path: Path) -> None:
    for name in ("a", "b"):
        grey_class(tmp_path / "val" / name)
    with pytest.raises(FolderError, match=r"has val/ but no train/"):
        scan_folder(tmp_path)
    for name in ("a", "b"):
        grey_class(tmp_path / "train" / name)
    grey_class(tmp_path / "test" / "c")
    with pytest.raises(FolderError, match=r"^class 'c' is in test/ but not in train/$"):
        scan_folder(tmp_path)


def test_stratified_split_takes_every_class_and_repeats_itself() -> None:
    entries = [(f"{label}/{number:02d}.png", label) for label in range(4) for number in range(3 + 7 * label)]
    split = split_stratified(entries, 0.1, seed=0)
    assert {label for _, label in split.val} == {0, 1, 2, 3}
    assert [sum(1 for _, label in split.val if label == c) for c in range(4)] == [1, 1, 2, 2]
    assert sorted(split.train + split.val) == sorted(entries)
    assert sorted(split_stratified(entries[::-1], 0.1, seed=0).val_paths) == sorted(split.val_paths)
    assert split_stratified(entries, 0.1, seed=0) == split
    assert any(split_stratified(entries, 0.1, seed=s).val != split.val for s in range(1, 6))
    single = split_stratified([("x/0.png", 0)], 0.5)
    assert single.val == [] and single.train == [("x/0.png", 0)]
    with pytest.raises(ValueError, match=r"strictly between 0 and 1"):
        split_stratified(entries, 0.0)


def test_the_scan_records_its_stratified_split(mixed: Path) -> None:
    scan = scan_folder(mixed, seed=3)
    assert scan.split_by == "stratified" and (scan.val_fraction, scan.seed) == (0.1, 3)
    assert {label for _, label in scan.splits["val"]} == {0, 1, 2}
    assert scan.val_paths == scan_folder(mixed, seed=3).val_paths
    every = sorted(scan.splits["train"] + scan.splits["val"])
    assert split_stratified(every, 0.1, 3).val_paths == sorted(scan.val_paths)


SPECS = (
    InputSpec(1, 16, 16, 255.0, (0.0,), (1.0,)),
    InputSpec(3, 12, 20, 255.0, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3), ResizePolicy(aspect="stretch")),
)


@pytest.mark.parametrize("spec", SPECS, ids=["grey", "colour"])
def test_items_equal_the_services_preprocessing(mixed: Path, tmp_path: Path, spec: InputSpec) -> None:
    scan = scan_folder(mixed)
    entries = scan.splits["train"] + scan.splits["val"]
    cache = ImageCache(tmp_path / "cache")
    for dataset in (ImageFolderDataset(mixed, entries, spec, cache=cache),) * 2:  # decoded, then cached
        for index, (path, label) in enumerate(entries):
            tensor, item_label = dataset[index]
            served = preprocess((mixed / path).read_bytes(), spec, ImageLimits())
            assert item_label == label
            assert tensor.dtype == torch.float32
            np.testing.assert_array_equal(tensor.numpy(), served)


def test_the_cache_spares_decoding_in_later_epochs_and_runs(mixed: Path, tmp_path: Path) -> None:
    scan = scan_folder(mixed)
    entries = scan.splits["train"]
    spec = SPECS[1]
    first = ImageFolderDataset(mixed, entries, spec, cache=ImageCache(tmp_path / "cache"))
    epoch = [first[i][0] for i in range(len(first))]
    assert first.decoded == len(entries) and first.cache.stats.writes == len(entries)
    again = [first[i][0] for i in range(len(first))]
    assert first.decoded == len(entries) and first.cache.stats.hits == len(entries)
    second = ImageFolderDataset(mixed, entries, spec, cache=ImageCache(tmp_path / "cache"))
    rerun = [second[i][0] for i in range(len(second))]
    assert second.decoded == 0 and second.cache.stats.hits == len(entries)
    for a, b, c in zip(epoch, again, rerun):
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Another geometry is another key; nothing half-written is left behind.
    other = ImageFolderDataset(mixed, entries[:2], SPECS[0], cache=ImageCache(tmp_path / "cache"))
    other[0]
    assert other.decoded == 1
    assert not list((tmp_path / "cache").rglob(".tmp-*"))
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(entries) + 1


def test_a_cached_scan_decodes_nothing(mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan_folder(mixed, cache=ImageCache(tmp_path / "cache"))
    decoded: list[int] = []

    def counting(data: bytes, limits: ImageLimits) -> Image.Image:
        decoded.append(len(data))
        return decode_image(data, limits)

    monkeypatch.setattr(image_folder, "decode_image", counting)
    second = scan_folder(mixed, cache=ImageCache(tmp_path / "cache"))
    assert second == first
    # Only the three files refused the first time are decoded again: refusals are not cached.
    assert len(decoded) == 3


def test_an_unwritable_cache_still_serves_items(mixed: Path, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    scan = scan_folder(mixed)
    dataset = ImageFolderDataset(
        mixed, scan.splits["train"][:2], SPECS[0], cache=ImageCache(tmp_path / "blocked")
    )
    assert dataset[0][0].shape == (1, 16, 16)
    assert dataset.cache.stats.write_errors == 1


def test_the_default_cache_honours_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "firstspike" / "images"
    assert ImageCache().directory == default_cache_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert default_cache_dir() == Path.home() / ".cache" / "firstspike" / "images"


def test_augmentation_changes_the_pixels_before_normalisation(mixed: Path, tmp_path: Path) -> None:
    scan = scan_folder(mixed)
    entries, spec = scan.splits["train"], SPECS[1]
    cache = ImageCache(tmp_path / "cache")
    clean = ImageFolderDataset(mixed, entries, spec, cache=cache)

    def invert(pixels: np.ndarray, rng: np.random.Generator, resize: ResizePolicy) -> np.ndarray:
        assert pixels.dtype == np.uint8 and pixels.shape == (12, 20, 3) and resize == spec.resize
        return 255 - pixels

    inverted = ImageFolderDataset(mixed, entries, spec, augment=invert, cache=cache)
    np.testing.assert_array_equal(inverted[0][0].numpy(), normalize_pixels(255 - clean.pixels(0), spec))
    robust = UserInputAugmentation.from_dict(default_recipe(scan)["augmentation"])
    runs = [ImageFolderDataset(mixed, entries, spec, augment=robust, seed=5, cache=cache) for _ in range(2)]
    samples = [[run[i][0] for i in range(len(entries))] for run in runs]
    assert all(a.shape == (3, 12, 20) for a in samples[0])
    assert all(bool((a == b).all()) for a, b in zip(*samples))  # seeded: the same both times
    assert runs[0].generator.initial_seed() == 5


def synthetic_scan(
    classes: int, per_class: int, size: tuple[int, int], grey: bool, root: Path = Path("/data/my pets!")
) -> FolderScan:
    entries = [(f"{c}/{i}.png", c) for c in range(classes) for i in range(per_class)]
    train, val = split_stratified(entries)
    width, height = size
    return FolderScan(
        root=root,
        classes=tuple(f"class{c}" for c in range(classes)),
        splits={"train": train, "val": val, "test": []},
        formats=frozenset({"PNG"}),
        modes=frozenset({"L" if grey else "RGB"}),
        sizes=SizeStats((width, width, width), (height, height, height)),
        all_grey=grey,
    )


def test_the_recipe_for_a_fashion_mnist_sized_folder() -> None:
    recipe = default_recipe(synthetic_scan(10, 600, (28, 28), grey=True))
    network = recipe["network"]
    assert network["input_shape"] == [1, 28, 28] and network["num_classes"] == 10
    assert network["architecture"] == "digits_net"
    assert network["arch_args"] == {"channels": [16, 32, 128, 256]}
    assert network["stem_channels"] == 16  # half the shipped net's 32, as its large-map stages are
    assert (network["timesteps"], network["encoder"], recipe["loss"]["name"]) == (4, "le", "tad")
    assert recipe["batch_size"] == 32 and recipe["epochs"] == 60
    assert recipe["name"] == "my-pets" and recipe["dataset"] == "image-folder"
    assert recipe["augmentation"]["flip_p"] == 0.5  # the shipped Fashion-MNIST settings
    config = TrainConfig.from_dict(recipe)
    assert {key: config.to_dict()[key] for key in recipe} == recipe


@pytest.mark.parametrize(
    "classes, per_class, size, grey, input_size, shape, widths",
    [
        (3, 12, (4000, 3000), False, None, [3, 64, 64], [16, 32, 64, 256, 256]),
        (2, 40, (10, 9), True, None, [1, 16, 16], [16, 64, 128]),
        (2, 40, (30, 30), False, None, [3, 32, 32], [16, 32, 128, 256]),
        (2, 40, (30, 30), True, 8, [1, 8, 8], [32, 64]),
    ],
)
def test_the_recipe_follows_the_data(
    classes: int,
    per_class: int,
    size: tuple[int, int],
    grey: bool,
    input_size: int | None,
    shape: list[int],
    widths: list[int],
) -> None:
    recipe = default_recipe(synthetic_scan(classes, per_class, size, grey), input_size=input_size)
    network = recipe["network"]
    assert network["input_shape"] == shape and network["arch_args"]["channels"] == widths
    assert recipe["epochs"] == 100 and recipe["batch_size"] == 8  # a small set: more passes, small batches
    values = dict(network, neuron=LIFParameters.from_dict(network["neuron"]))
    values["input_shape"] = tuple(values["input_shape"])
    SpikingNetwork(NetworkSpec(**values))  # the widths fit the size: the head's input is probed
    TrainConfig.from_dict(recipe)


def test_recipe_and_info_refusals_and_the_info(mixed: Path) -> None:
    scan = scan_folder(mixed)
    with pytest.raises(ValueError, match=r"input_size must lie in 8\.\.256"):
        default_recipe(scan, input_size=4)
    with pytest.raises(ValueError, match=r"cannot name a model"):
        default_recipe(scan, name="../x")
    recipe = default_recipe(scan, name="pets")
    assert recipe["network"]["input_shape"] == [3, 16, 16] and recipe["data_root"] == str(mixed)
    info = folder_info(scan, recipe["network"]["input_shape"])
    assert info.labels == ("cat", "dog", "emu") and info.resize == DEFAULT_RESIZE
    assert InputSpec.from_info(info) == InputSpec(3, 16, 16, 255.0, (0.0,) * 3, (1.0,) * 3)
    assert stage_widths(28) == [16, 32, 128, 256]  # full width on the 7- and 3-pixel maps
