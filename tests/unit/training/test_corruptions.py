"""The 15 common corruptions (training.robustness) and the CIFAR-10-C / CIFAR-100-C loader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.robustness import (
    CIFAR_C_CORRUPTIONS,
    CORRUPTION_GROUPS,
    CORRUPTIONS,
    SEVERITIES,
    corrupt,
    load_cifar_c,
)

# Corruptions whose output does not depend on the seed.
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}


def _digits() -> list[np.ndarray]:
    """The first eight sklearn digits as uint8 [8, 8] (0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    return [np.rint(image * 255 / 16).astype(np.uint8) for image in load_digits().images[:8]]


def _rotated_checkerboard(size: int = 32, cell: float = 5.0, degrees: float = 20.0) -> np.ndarray:
    """A two-colour checkerboard at an angle, anti-aliased by 4x4 supersampling.

    An axis-aligned one is a degenerate case for pixelate: a 4-pixel board resampled to 24 of
    32 pixels (severity 4) has its edges exactly on the coarse grid and comes back unchanged.
    """
    ticks = (np.arange(size * 4) + 0.5) / 4
    y, x = np.meshgrid(ticks, ticks, indexing="ij")
    angle = np.radians(degrees)
    u = (x * np.cos(angle) + y * np.sin(angle)) / cell
    v = (y * np.cos(angle) - x * np.sin(angle)) / cell
    board = ((np.floor(u) + np.floor(v)) % 2).reshape(size, 4, size, 4).mean(axis=(1, 3))
    return np.rint(np.stack([20 + 220 * board, 60 + 160 * board, 200 - 150 * board], axis=-1)).astype(
        np.uint8
    )


def _batch32() -> list[np.ndarray]:
    """Natural-ish 32x32 RGB images: eight tinted digits (bilinear upscale), a colour ramp, a
    radial gradient and a rotated checkerboard."""
    tints = [
        (1, 0.8, 0.6),
        (0.6, 0.9, 1),
        (1, 1, 1),
        (0.9, 0.5, 0.7),
        (0.7, 1, 0.6),
        (1, 0.9, 0.4),
        (0.5, 0.6, 1),
        (0.8, 0.8, 0.8),
    ]
    images = []
    for digit, tint in zip(_digits(), tints):
        grey = np.asarray(
            Image.fromarray(digit).resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64
        )
        images.append(np.rint(grey[..., None] * np.array(tint)).astype(np.uint8))
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    images.append(np.stack([x * 8, y * 8, 255 - x * 8], axis=-1).clip(0, 255).astype(np.uint8))
    radius = np.hypot(y - 15.5, x - 15.5)
    images.append(
        np.stack([255 - 10 * radius, np.full_like(radius, 128), 10 * radius], axis=-1)
        .clip(0, 255)
        .astype(np.uint8)
    )
    images.append(_rotated_checkerboard())
    return images


@pytest.fixture(scope="module")
def batch32() -> list[np.ndarray]:
    return _batch32()


def _mean_change(images: list[np.ndarray], name: str, severity: int, seed: int) -> float:
    return float(
        np.mean(
            [
                np.abs(corrupt(im, name, severity, seed + i).astype(np.int16) - im).mean()
                for i, im in enumerate(images)
            ]
        )
    )


# --- names, groups ---------------------------------------------------------------------------


def test_fifteen_corruptions_in_the_papers_four_groups():
    assert len(CORRUPTIONS) == 15 and len(set(CORRUPTIONS)) == 15
    assert list(CORRUPTION_GROUPS) == ["noise", "blur", "weather", "digital"]
    assert CORRUPTION_GROUPS["noise"] == ("gaussian_noise", "shot_noise", "impulse_noise")
    assert CORRUPTION_GROUPS["blur"] == ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur")
    assert CORRUPTION_GROUPS["weather"] == ("snow", "frost", "fog", "brightness")
    assert CORRUPTION_GROUPS["digital"] == ("contrast", "elastic_transform", "pixelate", "jpeg_compression")
    assert CORRUPTIONS == sum(CORRUPTION_GROUPS.values(), ())
    assert SEVERITIES == (1, 2, 3, 4, 5)


# --- shapes, dtype, determinism ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1), (32, 32, 3), (64, 64, 3), (12, 20, 3)])
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_keeps_shape_and_dtype(name, shape):
    image = np.random.default_rng(7).integers(0, 256, size=shape, dtype=np.uint8)
    for severity in (1, 5):
        out = corrupt(image, name, severity, seed=3)
        assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_deterministic_for_a_seed(name, batch32):
    image = batch32[0]
    first = corrupt(image, name, 3, seed=11)
    assert np.array_equal(first, corrupt(image, name, 3, seed=11))
    # The global generators play no part.
    np.random.seed(0)
    assert np.array_equal(first, corrupt(image, name, 3, seed=11))
    other = corrupt(image, name, 3, seed=12)
    if name in DETERMINISTIC:
        assert np.array_equal(first, other)
    else:
        assert not np.array_equal(first, other)


def test_input_is_not_modified(batch32):
    image = batch32[1].copy()
    for name in CORRUPTIONS:
        corrupt(image, name, 5, seed=0)
    assert np.array_equal(image, batch32[1])


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_grey_layouts_agree(name):
    digit = _digits()[3]
    assert np.array_equal(corrupt(digit, name, 4, seed=5), corrupt(digit[..., None], name, 4, seed=5)[..., 0])


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_tiny_images_have_five_distinct_severities(name):
    digits = _digits()[:4]
    if name in DETERMINISTIC:  # each image on its own
        for digit in digits:
            assert len({corrupt(digit, name, severity, seed=1).tobytes() for severity in SEVERITIES}) == 5
    else:  # on 64 pixels one draw may miss; over a few images with their own seeds it may not
        outputs = {
            np.stack([corrupt(digit, name, severity, seed=i) for i, digit in enumerate(digits)]).tobytes()
            for severity in SEVERITIES
        }
        assert len(outputs) == 5


# --- severity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_mean_change_strictly_increases_with_severity(name, batch32):
    for seed in (0, 1000):  # two seeds: the order must not hang on one draw
        changes = [_mean_change(batch32, name, severity, seed) for severity in SEVERITIES]
        assert changes[0] > 0, (name, changes)
        assert all(later > earlier for earlier, later in zip(changes, changes[1:])), (name, seed, changes)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gaussian", "Fog", "", "speckle_noise", None])
def test_unknown_name_is_a_value_error(name, batch32):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(batch32[0], name, 1, seed=0)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, "3", True, None])
def test_bad_severity_is_a_value_error(severity, batch32):
    with pytest.raises(ValueError, match="severity must be an integer from 1 to 5"):
        corrupt(batch32[0], "fog", severity, seed=0)


def test_bad_images_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        corrupt(np.zeros((8, 8), dtype=np.float32), "fog", 1, seed=0)
    for shape in [(8, 8, 2), (8, 8, 4), (8,), (1, 8, 8, 3), (0, 8)]:
        with pytest.raises(ValueError, match="image must be"):
            corrupt(np.zeros(shape, dtype=np.uint8), "fog", 1, seed=0)


# --- CIFAR-10-C / CIFAR-100-C -----------------------------------------------------------------


def _write_cifar_c(folder, corruption="fog", per_severity=4, labels=None, images=None):
    """A tiny CIFAR-C folder: image k of severity s is filled with 10 * s + k; labels k % 3."""
    folder.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = np.zeros((5 * per_severity, 32, 32, 3), dtype=np.uint8)
        for row in range(5 * per_severity):
            images[row] = 10 * (row // per_severity + 1) + row % per_severity
    if labels is None:
        labels = (np.arange(len(images)) % 3).astype(np.uint8)  # the released files store uint8
    np.save(folder / f"{corruption}.npy", images)
    np.save(folder / "labels.npy", labels)
    return folder


@pytest.mark.parametrize("severity", SEVERITIES)
def test_cifar_c_slices_one_severity(tmp_path, severity):
    _write_cifar_c(tmp_path / "CIFAR-10-C")
    images, labels = load_cifar_c(tmp_path / "CIFAR-10-C", "fog", severity)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [(4 * (severity - 1) + k) % 3 for k in range(4)]
    assert [int(image[0, 0, 0]) for image in images] == [10 * severity + k for k in range(4)]
    assert not isinstance(images, np.memmap) and images.flags.writeable


def test_cifar_c_root_may_be_the_parent(tmp_path):
    _write_cifar_c(tmp_path / "CIFAR-100-C", corruption="snow", per_severity=2)
    images, labels = load_cifar_c(str(tmp_path), "snow", 2)
    assert [int(image[0, 0, 0]) for image in images] == [20, 21] and labels.tolist() == [2, 0]
    # The four extra corruptions of the released archives load too.
    _write_cifar_c(tmp_path / "CIFAR-100-C", corruption="speckle_noise", per_severity=2)
    assert load_cifar_c(tmp_path, "speckle_noise", 5)[0].shape == (2, 32, 32, 3)
    assert "saturate" in CIFAR_C_CORRUPTIONS


def test_cifar_c_both_archives_under_one_root_is_ambiguous(tmp_path):
    _write_cifar_c(tmp_path / "CIFAR-10-C")
    _write_cifar_c(tmp_path / "CIFAR-100-C")
    with pytest.raises(ValueError, match="both"):
        load_cifar_c(tmp_path, "fog", 1)
    assert load_cifar_c(tmp_path / "CIFAR-100-C", "fog", 1)[0].shape == (4, 32, 32, 3)


def test_cifar_c_missing_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="fog.npy"):
        load_cifar_c(tmp_path, "fog", 1)
    folder = _write_cifar_c(tmp_path / "CIFAR-10-C")
    (folder / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        load_cifar_c(folder, "fog", 1)


def test_cifar_c_bad_files_and_arguments(tmp_path):
    odd = _write_cifar_c(tmp_path / "odd", images=np.zeros((7, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="5 equal severities"):
        load_cifar_c(odd, "fog", 1)
    short = _write_cifar_c(tmp_path / "short", labels=np.zeros(19, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 20 labels"):
        load_cifar_c(short, "fog", 1)
    floats = _write_cifar_c(tmp_path / "floats", images=np.zeros((10, 32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        load_cifar_c(floats, "fog", 1)
    good = _write_cifar_c(tmp_path / "good")
    with pytest.raises(ValueError, match="severity"):
        load_cifar_c(good, "fog", 6)
    with pytest.raises(ValueError, match="unknown CIFAR-C corruption"):
        load_cifar_c(good, "../fog", 1)


def test_cifar_c_refuses_pickles(tmp_path):
    folder = tmp_path / "CIFAR-10-C"
    _write_cifar_c(folder)
    np.save(folder / "labels.npy", np.array([{"label": 1}] * 20, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        load_cifar_c(folder, "fog", 1)
