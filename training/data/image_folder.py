"""A user's own labelled pictures as a data set: a folder with one sub-folder per class.

Layouts::

    <root>/<class>/<image>...                     a stratified validation split is made
    <root>/train/<class>/<image>...               explicit splits; val/ and test/ optional
    <root>/val/<class>/<image>...                 (without val/, it is split off train/)
    <root>/test/<class>/<image>...

The folder name is the label; classes are sorted by name, and a class's images may sit in
nested folders. Any image the service accepts is read (PNG, JPEG, WebP, BMP, TIFF, GIF's first
frame, ...), grey or colour, of any and mixed sizes, turned upright by its EXIF orientation.
Hidden files and folders, non-images and damaged images are skipped and listed.

Public API:

- ``scan_folder(root, strict=False, *, val_fraction=0.1, seed=0, limits=FOLDER_LIMITS,
  cache=None) -> FolderScan``: walk and check the folder (every image decoded once; with an
  ``ImageCache``, once ever); a ``FolderError`` says in one line what is wrong with it.
  ``FolderScan.table()`` describes it for people.
- ``split_stratified(entries, fraction=0.1, seed=0) -> Split``: the validation split.
- ``ImageFolderDataset(root, entries, spec, *, augment=None, seed=0, cache=None,
  limits=FOLDER_LIMITS)``: (model input, class index) per entry, made by the service's own
  preprocessing, the decoded pixels cached on disk (``image_folder_cache.ImageCache``).
- ``default_recipe(scan, input_size=None, name=None) -> dict``: a ``TrainConfig`` mapping
  chosen from the data; ``folder_info(scan, input_shape) -> DatasetInfo``: what the model's
  manifest records of it.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
import yaml
from PIL import Image
from torch.utils.data import Dataset

from training.contract.images.decode import ImageLimits, ImageRejected, decode_image
from training.contract.images.model_input import InputSpec, normalize_pixels
from training.contract.images.resize import DEFAULT_RESIZE, ResizePolicy
from training.contract.manifest import is_valid_name
from training.data.image_folder_cache import ImageCache, file_digest, model_pixels
from training.data.info import DatasetInfo
from training.data.samples import Sample
from training.network.spec import DEFAULT_STEM_CHANNELS

Entry = tuple[str, int]
"""One image: its path relative to the folder's root (with ``/``) and its class index."""

PixelAugment = Callable[[npt.NDArray[np.uint8], np.random.Generator, ResizePolicy], np.ndarray]
"""Training augmentation of uint8 [H, W, C] pixels (``UserInputAugmentation`` is one)."""

DATASET_NAME = "image-folder"
SPLITS = ("train", "val", "test")
MIN_IMAGES_PER_CLASS = 5
DEFAULT_VAL_FRACTION = 0.1
# Training reads the user's own files, photos from phones included, so it allows larger images
# than the service's defaults; each is decoded once and cached at the model's size.
FOLDER_LIMITS = ImageLimits(max_pixels=64 * 2**20, max_side=16384)
# Read no further than this: anything larger is not one of the images above.
MAX_FILE_BYTES = 512 * 2**20
# JPEG's colour conversion rounds, so a grey picture saved in colour differs by a few levels.
GREY_TOLERANCE = 4
TABLE_CLASSES = 30
TABLE_SKIPPED = 10

# default_recipe: the shipped Fashion-MNIST recipe (28x28, the size nearest a user's small
# images) supplies the stage widths, neurons, loss and robust-input augmentation.
RECIPE_BASE = Path(__file__).resolve().parents[1] / "configs" / "fashion_mnist.yaml"
MIN_SIDE, MAX_SIDE = 16, 64  # the automatic input size's range
OVERRIDE_SIDES = (8, 256)  # what input_size may ask for
# Small sets get more passes, large ones fewer, so that every set gets about as many updates;
# the bounds keep a tiny set from being memorised for hours and a huge one from a single pass.
TARGET_STEPS = 10000
EPOCH_RANGE = (10, 100)
# On a CPU an image costs about the same in a batch of 32 as of 64, and in a run cut short by its
# budget twice the updates train the spiking net further; 16 costs more an image for no more gain.
BATCH_RANGE = (8, 32)
MIN_STEPS_PER_EPOCH = 8
EVALUATIONS = 15  # roughly, over a run
WIDTH_DIVISOR = 2  # the recipe's stem and large-map stages are the Fashion-MNIST net's over this
# Stages whose input map is at most this many pixels a side keep the Fashion-MNIST net's full
# width: there a channel costs little (few pixels), and binary spikes need the channels to carry
# what a ReLU net holds in fewer (docs/own-images.md has the comparison).
FULL_WIDTH_MAX_SIDE = 8
# A budgeted run is short, and in a few dozen epochs the spiking net trains far from fitting its data
# at the shipped recipe's 0.001; six times that, decayed by the cosine schedule, gets further in
# the same minutes (docs/own-images.md has the comparison).
RECIPE_LR = 0.006
# The spiking net starts from its ANN twin, trained first on the same images (at RECIPE_LR) for
# three times its epochs: a twin's epoch costs about 40% of the spiking net's, the twin's filters
# already tell the classes apart, and how far the spiking net gets follows the twin more than its
# own epochs, which only adapt the twin's weights to spikes, at a lower rate (docs/own-images.md
# has the comparison).
PRETRAINING_EPOCHS_FACTOR = 3
SPIKING_LR = 0.002
DEFAULT_MAX_MEAN_TIMESTEP = 1.5  # the latency budget the output neurons are calibrated for


class FolderError(ValueError):
    """What is wrong with an image folder, in one line for the command line."""


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out.

    Attributes:
        path: relative to the folder's root, with ``/`` (a folder's ends in ``/``).
        reason: why.
    """

    path: str
    reason: str


@dataclass(frozen=True)
class SizeStats:
    """Image sizes, upright, in pixels: each a (min, median, max) triple.

    Attributes:
        width: the widths' minimum, median (the lower middle value) and maximum.
        height: the heights' likewise.
    """

    width: tuple[int, int, int]
    height: tuple[int, int, int]


@dataclass(frozen=True)
class FolderScan:
    """What ``scan_folder`` found.

    Attributes:
        root: the folder.
        classes: the class names, sorted; an entry's class index points into it.
        splits: ``train``, ``val`` and ``test`` (possibly empty) entries, each in path order.
        formats: the Pillow formats seen (``PNG``, ``JPEG``, ...).
        modes: the Pillow modes seen (``L``, ``RGB``, ``P``, ...).
        sizes: the usable images' sizes.
        all_grey: every usable image is grey (a colour mode with equal channels counts).
        skipped: files and folders left out, with reasons, in walking order.
        split_by: ``folders`` (val/ given) or ``stratified`` (``split_stratified``).
        val_fraction: the stratified split's fraction (recorded either way).
        seed: the stratified split's seed.
    """

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, list[Entry]]
    formats: frozenset[str]
    modes: frozenset[str]
    sizes: SizeStats
    all_grey: bool
    skipped: tuple[Skipped, ...] = ()
    split_by: str = "stratified"
    val_fraction: float = DEFAULT_VAL_FRACTION
    seed: int = 0

    @property
    def counts(self) -> dict[str, list[int]]:
        """Images per class, per split.

        Returns:
            For each of ``train``, ``val``, ``test``: one count per class, in class order.
        """
        counts = {split: [0] * len(self.classes) for split in SPLITS}
        for split in SPLITS:
            for _, label in self.splits.get(split, []):
                counts[split][label] += 1
        return counts

    @property
    def val_paths(self) -> list[str]:
        """The validation images' relative paths, for the run to record its split.

        Returns:
            The paths, in order.
        """
        return [path for path, _ in self.splits.get("val", [])]

    def table(self) -> str:
        """The scan for people: classes with images per split, sizes, formats, skipped files.

        Returns:
            A few lines of text, without a trailing newline.
        """
        counts = self.counts
        totals = {split: sum(counts[split]) for split in SPLITS}
        if self.split_by == "stratified":
            validation = f"validation: {self.val_fraction:.0%} of each class (seed {self.seed})"
        else:
            validation = "validation: val/"
        lines = [f"{self.root}: {len(self.classes)} classes, {sum(totals.values())} images; {validation}"]
        width = max(len("class"), *(len(name) for name in self.classes[:TABLE_CLASSES]))
        lines.append(f"  {'class':<{width}}  {'train':>6}  {'val':>6}  {'test':>6}")
        for index, name in enumerate(self.classes[:TABLE_CLASSES]):
            row = "  ".join(f"{counts[split][index]:>6}" for split in SPLITS)
            lines.append(f"  {name:<{width}}  {row}")
        if len(self.classes) > TABLE_CLASSES:
            lines.append(f"  ... and {len(self.classes) - TABLE_CLASSES} more classes")
        lines.append(f"  {'all':<{width}}  " + "  ".join(f"{totals[split]:>6}" for split in SPLITS))
        (w_min, w_med, w_max), (h_min, h_med, h_max) = self.sizes.width, self.sizes.height
        lines.append(
            f"sizes: width {w_min}..{w_max} (median {w_med}), height {h_min}..{h_max} (median {h_med})"
        )
        colour = "all grey" if self.all_grey else "colour"
        lines.append(
            f"formats: {', '.join(sorted(self.formats))}; modes: {', '.join(sorted(self.modes))} ({colour})"
        )
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines += [f"  {item.path}: {item.reason}" for item in self.skipped[:TABLE_SKIPPED]]
            if len(self.skipped) > TABLE_SKIPPED:
                lines.append(f"  ... and {len(self.skipped) - TABLE_SKIPPED} more")
        return "\n".join(lines)


class Split(NamedTuple):
    """A stratified split of entries.

    Attributes:
        train: the entries kept for training, in their given order.
        val: the entries chosen for validation, in their given order.
    """

    train: list[Entry]
    val: list[Entry]

    @property
    def val_paths(self) -> list[str]:
        """The validation entries' relative paths, for the run to record.

        Returns:
            The paths, in order.
        """
        return [path for path, _ in self.val]


def split_stratified(
    entries: Sequence[Entry], fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> Split:
    """Choose validation entries class by class, the same way every time.

    Each class's entries are sorted by path and shuffled by a generator seeded with
    ``(seed, class index)``, so one class's choice does not depend on the others or on the
    entries' order; the first ``round(fraction * n)`` go to validation, at least one of every
    class with two or more, never all of a class.

    Args:
        entries: (relative path, class index) pairs.
        fraction: the share of each class to validate on, strictly between 0 and 1.
        seed: a non-negative seed.

    Returns:
        The training and validation entries.

    Raises:
        ValueError: a fraction outside (0, 1) or a negative seed.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must lie strictly between 0 and 1, not {fraction}")
    if seed < 0:
        raise ValueError(f"the split's seed must not be negative, not {seed}")
    by_class: dict[int, list[str]] = {}
    for path, label in entries:
        by_class.setdefault(label, []).append(path)
    chosen: set[str] = set()
    for label, paths in by_class.items():
        paths.sort()
        count = len(paths)
        take = 0 if count < 2 else min(count - 1, max(1, math.floor(count * fraction + 0.5)))
        order = np.random.default_rng([seed, label]).permutation(count)
        chosen.update(paths[i] for i in order[:take])
    return Split(
        [entry for entry in entries if entry[0] not in chosen],
        [entry for entry in entries if entry[0] in chosen],
    )


@dataclass
class _Image:
    """One usable file's scan record."""

    path: str
    format: str
    mode: str
    width: int
    height: int
    grey: bool


@dataclass
class _Walker:
    """Lists a folder's image files, decoding each, recording what it leaves out."""

    root: Path
    strict: bool
    limits: ImageLimits
    cache: ImageCache | None
    skipped: list[Skipped] = field(default_factory=list)
    images: dict[str, _Image] = field(default_factory=dict)

    def skip(self, path: Path, reason: str) -> None:
        relative = self.relative(path) + ("/" if path.is_dir() else "")
        if self.strict:
            raise FolderError(f"{relative}: {reason} (strict: no file may be skipped)")
        self.skipped.append(Skipped(relative, reason))

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def children(self, folder: Path) -> list[Path]:
        """The folder's entries by name, hidden ones skipped."""
        try:
            names = sorted(os.listdir(folder))
        except OSError as error:
            self.skip(folder, f"unreadable ({error.strerror or error})")
            return []
        visible = []
        for name in names:
            if name.startswith("."):
                self.skip(folder / name, "hidden")
            else:
                visible.append(folder / name)
        return visible

    def class_images(self, folder: Path) -> list[str]:
        """The usable images anywhere under a class folder, in path order."""
        found: list[str] = []
        seen: set[Path] = set()

        def walk(current: Path) -> None:
            real = current.resolve()
            if real in seen:  # a link back up the tree
                self.skip(current, "a folder link seen before")
                return
            seen.add(real)
            for child in self.children(current):
                if child.is_dir():
                    walk(child)
                elif self.probe(child):
                    found.append(self.relative(child))

        walk(folder)
        return found

    def probe(self, path: Path) -> bool:
        """Decode ``path`` (or read its cached record); record it, or skip it and say why."""
        if not path.is_file():
            self.skip(path, "not a regular file")
            return False
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                self.skip(path, f"larger than {MAX_FILE_BYTES >> 20} MiB")
                return False
            data = path.read_bytes()
        except OSError as error:
            self.skip(path, f"unreadable ({error.strerror or error})")
            return False
        digest = file_digest(data) if self.cache is not None else ""
        image = self.cached(path, digest)
        try:
            if image is not None:
                self.limits.check(image.width, image.height)
            else:
                image = self.decode(path, data)
                if self.cache is not None:
                    self.cache.store_probe(digest, {k: v for k, v in vars(image).items() if k != "path"})
        except ImageRejected as error:
            self.skip(path, str(error))
            return False
        self.images[image.path] = image
        return True

    def cached(self, path: Path, digest: str) -> _Image | None:
        """The file's record from an earlier scan, if the cache has one of this shape."""
        record = self.cache.load_probe(digest) if self.cache is not None else None
        if record is None:
            return None
        try:
            return _Image(self.relative(path), **record)
        except TypeError:  # written by another version: decode afresh
            return None

    def decode(self, path: Path, data: bytes) -> _Image:
        decoded = decode_image(data, self.limits)
        width, height = decoded.size
        return _Image(
            self.relative(path), decoded.format or "?", decoded.mode, width, height, _is_grey(decoded)
        )


def _is_grey(image: Image.Image) -> bool:
    """Whether an image holds no colour: a grey mode, or colour channels equal to within
    ``GREY_TOLERANCE``."""
    if image.mode not in ("P", "PA") and len(image.getbands()) < 3:
        return True  # 1, L, LA, I, F and the 16-bit grey modes
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return bool(spread.max(initial=0) <= GREY_TOLERANCE)


def scan_folder(
    root: str | Path,
    strict: bool = False,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    limits: ImageLimits = FOLDER_LIMITS,
    cache: ImageCache | None = None,
    for_training: bool = True,
) -> FolderScan:
    """Walk an image folder, decode every file, and check it can train a classifier.

    Args:
        root: the folder: class folders, or ``train/`` (and ``val/``, ``test/``) above them.
        strict: refuse the folder at the first file or folder that would be skipped.
        val_fraction: without ``val/``, the share of each class split off for validation.
        seed: the seed of that split.
        limits: the largest image decoded; larger ones are skipped.
        cache: where decoded files' records are kept, so a second scan decodes nothing; None
            decodes every file.
        for_training: False for a folder only evaluated on: one class, and classes of fewer
            than ``MIN_IMAGES_PER_CLASS`` images, are fine there.

    Returns:
        The classes, splits, image statistics and skipped files.

    Raises:
        FolderError: the folder is missing or not a folder; it has no class folders or only one;
            a class has no usable images, or fewer than ``MIN_IMAGES_PER_CLASS``; with explicit
            splits, ``train/`` is missing or ``val/`` or ``test/`` has a class ``train/`` lacks;
            or, with ``strict``, a file would be skipped.
        ValueError: ``val_fraction`` outside (0, 1) or a negative seed.
    """
    root = Path(root)
    if not root.exists():
        raise FolderError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise FolderError(f"image folder {root} is not a folder")
    walker = _Walker(root, strict, limits, cache)
    top = walker.children(root)
    split_folders = {path.name: path for path in top if path.name in SPLITS and path.is_dir()}
    found: dict[str, dict[str, list[str]]] = {}  # split -> class -> relative paths
    if split_folders:
        if "train" not in split_folders:
            given = ", ".join(f"{name}/" for name in sorted(split_folders))
            raise FolderError(
                f"image folder {root} has {given} but no train/: put the training classes there"
            )
        for path in top:
            if path.name not in split_folders:
                walker.skip(path, "outside train/, val/ and test/")
        for split in SPLITS:
            if split in split_folders:
                found[split] = _classes(walker, split_folders[split])
        class_root = root / "train"
    else:
        found["train"] = _classes(walker, root, top)
        class_root = root
    classes = tuple(sorted(found["train"]))
    _check_classes(class_root, found["train"], for_training)
    for split in ("val", "test"):
        extra = sorted(set(found.get(split, {})) - set(classes))
        if extra:
            raise FolderError(f"class {extra[0]!r} is in {split}/ but not in train/")
    index = {name: number for number, name in enumerate(classes)}
    splits = {
        split: [(path, index[name]) for name in sorted(found.get(split, {})) for path in found[split][name]]
        for split in SPLITS
    }
    split_by = "folders" if "val" in found else "stratified"
    if split_by == "stratified":
        splits["train"], splits["val"] = split_stratified(splits["train"], val_fraction, seed)
    images = list(walker.images.values())
    return FolderScan(
        root=root,
        classes=classes,
        splits=splits,
        formats=frozenset(image.format for image in images),
        modes=frozenset(image.mode for image in images),
        sizes=SizeStats(
            _spread([image.width for image in images]), _spread([image.height for image in images])
        ),
        all_grey=all(image.grey for image in images),
        skipped=tuple(walker.skipped),
        split_by=split_by,
        val_fraction=val_fraction,
        seed=seed,
    )


def _classes(walker: _Walker, folder: Path, listing: list[Path] | None = None) -> dict[str, list[str]]:
    """Class name -> its usable images, for each class folder in ``folder``."""
    classes: dict[str, list[str]] = {}
    for path in walker.children(folder) if listing is None else listing:
        if path.is_dir():
            classes[path.name] = walker.class_images(path)
        else:
            walker.skip(path, "not in a class folder")
    return classes


def _check_classes(folder: Path, classes: dict[str, list[str]], for_training: bool) -> None:
    """Refuse a set of training classes that cannot train a classifier (or, not ``for_training``,
    that holds nothing to evaluate)."""
    if not classes:
        raise FolderError(
            f"image folder {folder} has no class folders: put each class's images in a folder named after it"
        )
    for name in sorted(classes):
        if not classes[name]:
            raise FolderError(f"class {name!r} has no usable images")
    if not for_training:
        return
    if len(classes) == 1:
        name = next(iter(classes))
        raise FolderError(f"image folder {folder} has one class ({name!r}); a classifier needs at least two")
    for name in sorted(classes):
        if len(classes[name]) < MIN_IMAGES_PER_CLASS:
            raise FolderError(
                f"class {name!r} has {len(classes[name])} usable images; "
                f"each class needs at least {MIN_IMAGES_PER_CLASS}"
            )


def _spread(values: list[int]) -> tuple[int, int, int]:
    """(min, median, max) of non-empty ``values``, the median a value that occurs."""
    return min(values), int(statistics.median_low(values)), max(values)


class ImageFolderDataset(Dataset[Sample]):
    """(float32 [C, H, W] model input, class index) per entry of an image folder.

    Each file is decoded as the service decodes an upload (turned upright by its EXIF
    orientation), brought to the model's size by the service's ``to_model_pixels``, and
    normalised by its ``normalize_pixels``; ``augment``, if given, changes the uint8 pixels in
    between, drawing from a generator seeded by ``seed`` (kept as ``generator`` so the trainer
    reseeds it per loader worker and checkpoints it). The pixels at model size are cached on
    disk by the file's content, so each file is decoded once for every epoch and run.

    Attributes:
        decoded: files decoded by this object in this process (cache misses).
        cache: the pixel cache; ``cache.stats`` counts its hits.

    Args:
        root: the folder the entries' paths are relative to.
        entries: (relative path, class index) pairs (``FolderScan.splits[split]``).
        spec: what the model reads: channels, size, resize policy, normalisation.
        augment: training augmentation of uint8 [H, W, C] pixels, e.g.
            ``UserInputAugmentation.from_dict(config.augmentation)``; None for none.
        seed: seed of the augmentation's generator.
        cache: where decoded pixels are kept; None for an ``ImageCache`` in the default folder.
        limits: the largest image decoded.
    """

    def __init__(
        self,
        root: str | Path,
        entries: Sequence[Entry],
        spec: InputSpec,
        *,
        augment: PixelAugment | None = None,
        seed: int = 0,
        cache: ImageCache | None = None,
        limits: ImageLimits = FOLDER_LIMITS,
    ) -> None:
        self.root = Path(root)
        self.entries = list(entries)
        self.spec = spec
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)
        self.cache = cache if cache is not None else ImageCache()
        self.limits = limits
        self.decoded = 0

    def __len__(self) -> int:
        return len(self.entries)

    def pixels(self, index: int) -> npt.NDArray[np.uint8]:
        """An entry's image at the model's size, before augmentation and normalisation.

        Args:
            index: the entry.

        Returns:
            uint8 [H, W, C].

        Raises:
            FolderError: the file is gone or no longer decodes.
        """
        relative = self.entries[index][0]
        try:
            data = (self.root / relative).read_bytes()
        except OSError as error:
            raise FolderError(f"{relative}: unreadable ({error.strerror or error})") from None
        digest = file_digest(data)
        pixels = self.cache.load_pixels(digest, self.spec)
        if pixels is None:
            try:
                pixels = model_pixels(data, self.spec, self.limits)
            except ImageRejected as error:
                raise FolderError(f"{relative}: {error}") from None
            self.decoded += 1
            self.cache.store_pixels(digest, self.spec, pixels)
        return pixels

    def __getitem__(self, index: int) -> Sample:
        pixels = self.pixels(index)
        if self.augment is not None:
            seed = int(torch.randint(0, 2**62, (), generator=self.generator))
            pixels = self.augment(pixels, np.random.default_rng(seed), self.spec.resize)
        return torch.from_numpy(normalize_pixels(pixels, self.spec)), self.entries[index][1]


def stage_widths(side: int) -> list[int]:
    """``digits_net`` stage widths for square inputs of ``side`` pixels.

    Each stage halves the map; stages are added until it is at most 2 pixels a side, as the
    shipped nets do (8 -> 2 for digits, 28 -> 1 for Fashion-MNIST). Stages on maps wider than
    ``FULL_WIDTH_MAX_SIDE`` are half the Fashion-MNIST net's widths, the rest its full widths,
    its widest repeated beyond its four stages: a user's first run has minutes on a laptop's
    cores, and the large maps are where a step's time goes.

    Args:
        side: the input's height and width.

    Returns:
        One width per stage.
    """
    full = [int(width) for width in _recipe_base()["network"]["arch_args"]["channels"]]
    widths: list[int] = []
    while True:
        width = full[min(len(widths), len(full) - 1)]
        widths.append(width if side <= FULL_WIDTH_MAX_SIDE else width // WIDTH_DIVISOR)
        side //= 2
        if side <= 2:
            return widths


def stem_width() -> int:
    """The LE module's channels: the Fashion-MNIST net's over ``WIDTH_DIVISOR``.

    The first stage convolves the stem's output at the full input size on every timestep, the
    costliest layer of the step, so a stem as wide as the full net's would undo much of what the
    narrower stages save.

    Returns:
        The stem's width.
    """
    network = _recipe_base()["network"]
    width = network.get("stem_channels") or DEFAULT_STEM_CHANNELS[network["architecture"]]
    return max(1, int(width) // WIDTH_DIVISOR)


def default_recipe(
    scan: FolderScan, input_size: int | None = None, name: str | None = None
) -> dict[str, Any]:
    """A training config chosen from the data, as the mapping ``TrainConfig.from_dict`` reads.

    Input: 1 channel when every image is grey, else 3; square, the median image's longer side
    rounded to a multiple of 4 and clamped to [16, 64] unless ``input_size`` says. Network:
    ``digits_net`` with ``stage_widths`` and a half-width stem (``stem_width``), latency coding with the LE
    encoder, T = 4, TAD, started from its ANN twin trained for ``PRETRAINING_EPOCHS_FACTOR`` times
    its epochs at ``RECIPE_LR``, then trained at ``SPIKING_LR``. Epochs: about ``TARGET_STEPS``
    optimiser steps, within ``EPOCH_RANGE``. Augmentation: the shipped Fashion-MNIST robust-input
    settings. After training, the output neurons are calibrated on the validation split for
    ``DEFAULT_MAX_MEAN_TIMESTEP``.

    Args:
        scan: the folder's scan.
        input_size: the input's side in pixels (8..256); None to choose it from the data.
        name: the model's name; None for the folder's name, made valid.

    Returns:
        The config mapping (``dataset`` is ``"image-folder"``, ``data_root`` the folder).

    Raises:
        ValueError: an ``input_size`` outside 8..256, or a ``name`` that cannot name a model.
    """
    base = _recipe_base()
    channels = 1 if scan.all_grey else 3
    if input_size is None:
        side = max(scan.sizes.width[1], scan.sizes.height[1])
        size = min(MAX_SIDE, max(MIN_SIDE, 4 * math.floor(side / 4 + 0.5)))
    elif not OVERRIDE_SIDES[0] <= input_size <= OVERRIDE_SIDES[1]:
        raise ValueError(f"input_size must lie in {OVERRIDE_SIDES[0]}..{OVERRIDE_SIDES[1]}, not {input_size}")
    else:
        size = input_size
    name = name if name is not None else _model_name(scan.root)
    if not is_valid_name(name):
        raise ValueError(f"{name!r} cannot name a model: letters, digits, '_', '-' and '.', up to 64")
    train_images = len(scan.splits["train"])
    batch_size = _batch_size(train_images)
    # The trainer drops the last partial batch when there is more than one.
    steps = max(1, train_images // batch_size)
    epochs = min(EPOCH_RANGE[1], max(EPOCH_RANGE[0], round(TARGET_STEPS / steps)))
    network = base["network"]
    return {
        "name": name,
        "dataset": DATASET_NAME,
        "data_root": str(scan.root),
        "network": {
            "architecture": "digits_net",
            "arch_args": {"channels": stage_widths(size)},
            "stem_channels": stem_width(),
            "coding": "latency",
            "encoder": "le",
            "timesteps": 4,
            "neuron": dict(network["neuron"]),
            "input_shape": [channels, size, size],
            "num_classes": len(scan.classes),
        },
        "loss": dict(base["loss"]),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": SPIKING_LR,
        "ann_pretraining": {"epochs_factor": PRETRAINING_EPOCHS_FACTOR, "lr": RECIPE_LR},
        "weight_decay": base["weight_decay"],
        "seed": scan.seed,
        "eval_every": evaluation_interval(epochs),
        "workers": base["workers"],
        "augment": True,
        "augmentation": dict(base["augmentation"]),
        "max_mean_timestep": DEFAULT_MAX_MEAN_TIMESTEP,
    }


def evaluation_interval(epochs: int) -> int:
    """Epochs between evaluations on the validation split: about ``EVALUATIONS`` over a run.

    Args:
        epochs: the run's epochs.

    Returns:
        At least 1.
    """
    return max(1, int(epochs) // EVALUATIONS)


def folder_info(scan: FolderScan, input_shape: Sequence[int]) -> DatasetInfo:
    """What a model trained on the folder records of its data: classes, input, normalisation.

    Pixels are scaled to [0, 1] without a shift (the LE encoder takes intensities), and files
    of other sizes are letterboxed (``DEFAULT_RESIZE``), as training resized them.

    Args:
        scan: the folder's scan.
        input_shape: the network's [C, H, W] (the recipe's ``network.input_shape``).

    Returns:
        The description; ``InputSpec.from_info`` of it is the data set's ``spec``.

    Raises:
        ValueError: not three sizes, or a channel count other than 1 or 3.
    """
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise ValueError(f"an image folder's input shape is [1 or 3, H, W], not {list(input_shape)}")
    channels, height, width = (int(value) for value in input_shape)
    return DatasetInfo(
        name=DATASET_NAME,
        input_shape=(channels, height, width),
        labels=scan.classes,
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        resize=DEFAULT_RESIZE,
    )


def _recipe_base() -> dict[str, Any]:
    """The shipped Fashion-MNIST config's mapping (read, not imported: ``training.config``
    imports the data registry)."""
    values: dict[str, Any] = yaml.safe_load(RECIPE_BASE.read_text())
    return values


def _batch_size(train_images: int) -> int:
    """The top of ``BATCH_RANGE``, or the largest power of two that still gives
    ``MIN_STEPS_PER_EPOCH`` batches (at least the range's bottom)."""
    fitting = train_images // MIN_STEPS_PER_EPOCH
    size = 1 << max(0, fitting.bit_length() - 1) if fitting else 1
    return min(BATCH_RANGE[1], max(BATCH_RANGE[0], size))


def _model_name(root: Path) -> str:
    """The folder's name as a model name: other characters become ``-``, at most 64."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.resolve().name).strip("-_.")[:64].rstrip("-_.")
    return slug or DATASET_NAME


class FolderData(NamedTuple):
    """An image folder ready to train on: its scan, what a model records of it, and its splits."""

    scan: FolderScan
    info: DatasetInfo
    train: ImageFolderDataset
    val: ImageFolderDataset
    test: ImageFolderDataset | None  # only with an explicit test/ folder


def folder_data(
    root: str | Path,
    input_shape: Sequence[int],
    *,
    seed: int = 0,
    augment: PixelAugment | None = None,
    strict: bool = False,
    cache: ImageCache | None = None,
) -> FolderData:
    """Scan a folder and make its splits at the model's input, the training split augmented.

    Args:
        root: the image folder.
        input_shape: the network's [C, H, W].
        seed: seeds the automatic validation split and the augmentation.
        augment: the training split's augmentation; None for none.
        strict: refuse, rather than skip, a file that is not a readable image.
        cache: where decoded pixels are kept; None for the default folder.

    Returns:
        The scan, the data set description and the splits.
    """
    cache = cache if cache is not None else ImageCache()
    scan = scan_folder(root, strict, seed=seed, cache=cache)
    info = folder_info(scan, input_shape)
    spec = InputSpec.from_info(info)

    def split(name: str, augmented: PixelAugment | None = None) -> ImageFolderDataset:
        return ImageFolderDataset(
            scan.root, scan.splits[name], spec, augment=augmented, seed=seed, cache=cache
        )

    test = split("test") if scan.splits["test"] else None
    return FolderData(scan, info, split("train", augment), split("val"), test)
