"""Training augmentation that mirrors user inputs: deterministic per seed, configurable, bounded."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import load_config
from training.data import image_augment, load_dataset
from training.data.image_augment import (
    UserInputAugmentation,
    convolve,
    gaussian_kernel,
    line_kernel,
    salt_and_pepper,
)

DIGIT = np.zeros((8, 8), np.uint8)
DIGIT[1:7, 3:5] = 255  # a "1"


def test_the_same_seed_gives_the_same_image_and_other_seeds_differ():
    augmentation = UserInputAugmentation(apply_p=1.0)
    first = [augmentation(DIGIT, np.random.default_rng(seed)) for seed in range(20)]
    again = [augmentation(DIGIT, np.random.default_rng(seed)) for seed in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert len({image.tobytes() for image in first}) >= 18
    assert all(image.shape == (8, 8) and image.dtype == np.uint8 for image in first)


def test_rgb_images_keep_their_shape():
    rgb = np.stack([DIGIT, DIGIT // 2, DIGIT // 4], axis=-1)
    out = UserInputAugmentation(apply_p=1.0)(rgb, np.random.default_rng(0))
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8


def test_nothing_happens_when_every_probability_is_zero():
    off = UserInputAugmentation(apply_p=0.0)
    assert np.array_equal(off(DIGIT, np.random.default_rng(0)), DIGIT)


def test_a_data_set_replays_its_augmentation_from_its_generator():
    first = load_dataset("digits", "train", augment=True)
    second = load_dataset("digits", "train", augment=True)
    state = first.generator.get_state()
    batch = torch.stack([first[i][0] for i in range(32)])
    assert torch.equal(batch, torch.stack([second[i][0] for i in range(32)]))
    first.generator.set_state(state)  # what resuming from a checkpoint does
    assert torch.equal(batch, torch.stack([first[i][0] for i in range(32)]))
    plain = load_dataset("digits", "train")
    assert not torch.equal(batch, torch.stack([plain[i][0] for i in range(32)]))
    assert batch.min() >= 0 and batch.max() <= 1


def test_settings_come_from_the_config_and_bad_ones_are_refused():
    config = load_config("digits")
    assert config.augmentation["jpeg_quality"] == [20, 95]
    assert UserInputAugmentation.from_dict(config.augmentation).to_dict() == {
        **UserInputAugmentation().to_dict(),
        **config.augmentation,
    }
    for bad in ({"blur": 1}, {"noise_p": 1.5}, {"contrast": [1.3, 0.2]}, {"scale": [1, 2, 3]}):
        with pytest.raises(ValueError):
            load_dataset("digits", "train", augment=True, augmentation=bad)


def test_kernels_are_normalised_and_a_line_blur_smears_along_its_direction():
    for kernel in (gaussian_kernel(0.7), line_kernel(3.0, 0.0), line_kernel(4.0, 1.0)):
        assert kernel.sum() == pytest.approx(1.0) and (kernel >= 0).all()
    dot = np.zeros((9, 9, 1))
    dot[4, 4] = 255.0
    horizontal = convolve(dot, line_kernel(4.0, 0.0))[..., 0]
    assert horizontal[4].sum() == pytest.approx(255.0)  # all weight stays on the dot's row
    assert horizontal[4, 2] > 0 and horizontal[4, 6] > 0


def test_salt_and_pepper_hits_about_the_asked_share_of_pixels():
    flat = np.full((100, 100, 1), 128.0)
    hit = salt_and_pepper(flat, np.random.default_rng(0), 0.05)[..., 0] != 128
    assert 0.04 < hit.mean() < 0.06


def test_the_evaluation_corruptions_are_not_used_for_training():
    """The 15 corruptions of the report stay a held-out measure."""
    tree = ast.parse(Path(image_augment.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any(name and "robustness" in name for name in imported)


def test_flip_mirrors_left_right_and_is_off_by_default():
    mirror = UserInputAugmentation(flip_p=1.0, apply_p=0.0)
    assert np.array_equal(mirror(DIGIT, np.random.default_rng(0)), DIGIT[:, ::-1])
    # Off (the digits default), it draws nothing: with apply_p = 0 the one draw is apply_p's, so
    # older configs keep their random streams.
    used, fresh = np.random.default_rng(5), np.random.default_rng(5)
    UserInputAugmentation(apply_p=0.0)(DIGIT, used)
    fresh.random()
    assert used.random() == fresh.random()
