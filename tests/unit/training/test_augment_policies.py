"""AutoAugment and RandAugment without torchvision: each operation against a result worked out
by hand on a tiny image, the magnitude scales, seeded plans, and how often the policies pick
what they pick."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from PIL import Image

from training.data import image_ops
from training.data.augment_policies import (
    CIFAR10_POLICY,
    RANDAUGMENT_OPERATIONS,
    AutoAugment,
    RandAugment,
    apply_plan,
)

GREY = np.array([[0, 50, 100], [150, 200, 250]], dtype=np.uint8)  # 2 rows x 3 columns


def grey(array: np.ndarray = GREY) -> Image.Image:
    return Image.fromarray(array, "L")


def pixels(image: Image.Image) -> np.ndarray:
    return np.array(image)


def test_autoaugment_and_randaugment_point_operations_by_hand():
    assert (pixels(image_ops.invert(grey())) == 255 - GREY).all()
    assert (pixels(image_ops.solarize(grey(), 128)) == [[0, 50, 100], [105, 55, 5]]).all()  # >= 128 inverted
    assert (pixels(image_ops.solarize(grey(), 256)) == GREY).all()  # the top of the scale: nothing
    assert (pixels(image_ops.posterize(grey(), 4)) == GREY & 0xF0).all()
    assert (pixels(image_ops.posterize(grey(), 1)) == [[0, 0, 0], [128, 128, 128]]).all()
    assert (pixels(image_ops.brightness(grey(), -0.5)) == [[0, 25, 50], [75, 100, 125]]).all()  # x 0.5
    assert (pixels(image_ops.brightness(grey(), 0.0)) == GREY).all()
    # autocontrast: 0 .. 250 stretched to 0 .. 255
    assert (pixels(image_ops.auto_contrast(grey())) == [[0, 51, 102], [153, 204, 255]]).all()
    # colour on a grey image changes nothing; contrast 0 (offset -1) is the mean grey everywhere
    assert (pixels(image_ops.color(grey(), 0.9)) == GREY).all()
    assert (pixels(image_ops.contrast(grey(), -1.0)) == round(GREY.mean())).all()
    flat = np.full((4, 4), 77, dtype=np.uint8)
    assert (pixels(image_ops.sharpness(grey(flat), 0.9)) == 77).all()  # nothing to sharpen
    # sharpness 1.5: blend away from the 3x3 smoothing [1 1 1; 1 5 1; 1 1 1] / 13 of a lone 130:
    # smoothed centre 50, neighbours 10; 50 + 1.5 (130 - 50) = 170, 10 + 1.5 (0 - 10) < 0 -> 0
    dot = np.zeros((5, 5), dtype=np.uint8)
    dot[2, 2] = 130
    expected = np.zeros((5, 5), dtype=np.uint8)
    expected[2, 2] = 170
    assert (pixels(image_ops.sharpness(grey(dot), 0.5)) == expected).all()
    # colour 0 (offset -1): the luma 0.299 R + 0.587 G + 0.114 B, rounded down, in every channel
    rgb = np.array([[[200, 100, 0], [0, 0, 255]]], dtype=np.uint8)
    assert (pixels(image_ops.color(Image.fromarray(rgb, "RGB"), -1.0)) == [[[118] * 3, [29] * 3]]).all()
    # equalize, by the cumulative histogram: 512 pixels of 10, 256 of 20, 256 of 30; step =
    # (1024 - 256) // 255 = 3; 10 -> (3 // 2) // 3 = 0, 20 -> (1 + 512) // 3 = 171,
    # 30 -> 769 // 3, capped at 255
    dull = np.repeat(np.array([10, 10, 20, 30], dtype=np.uint8), 256).reshape(32, 32)
    assert (
        pixels(image_ops.equalize(grey(dull))) == np.select([dull == 10, dull == 20], [0, 171], 255)
    ).all()


def test_autoaugment_and_randaugment_geometric_operations_by_hand():
    assert (pixels(image_ops.translate_x(grey(), 1)) == [[0, 0, 50], [0, 150, 200]]).all()
    assert (pixels(image_ops.translate_x(grey(), -1)) == [[50, 100, 0], [200, 250, 0]]).all()
    assert (pixels(image_ops.translate_y(grey(), 1)) == [[0, 0, 0], [0, 50, 100]]).all()
    # shear x by 1: row y takes the input from x + y, so row 1 moves one pixel left
    assert (pixels(image_ops.shear_x(grey(), 1.0)) == [[0, 50, 100], [200, 250, 0]]).all()
    assert (pixels(image_ops.shear_y(grey(), 1.0)) == [[0, 200, 0], [150, 0, 0]]).all()
    square = np.arange(9, dtype=np.uint8).reshape(3, 3) * 10
    assert (pixels(image_ops.rotate(grey(square), 90)) == np.rot90(square)).all()  # counter-clockwise
    rgb = np.stack([GREY, GREY // 2, 255 - GREY], axis=-1)
    moved = pixels(image_ops.translate_x(Image.fromarray(rgb, "RGB"), 1))
    assert (moved[:, 0] == 0).all() and (moved[:, 1:] == rgb[:, :2]).all()


def test_autoaugment_and_randaugment_magnitude_scales():
    assert image_ops.magnitude("ShearX", 9, 10, 32) == pytest.approx(0.3)
    assert image_ops.magnitude("TranslateX", 9, 10, 32) == pytest.approx(150 / 331 * 32)
    assert image_ops.magnitude("Rotate", 0, 10, 32) == 0.0
    assert image_ops.magnitude("Rotate", 9, 31, 32) == pytest.approx(
        9.0
    )  # RandAugment's M = 9 of 31: 30 * 9/30
    assert [image_ops.magnitude("Posterize", level, 10, 32) for level in (0, 2, 5, 9)] == [8, 7, 6, 4]
    assert (
        image_ops.magnitude("Solarize", 0, 10, 32) == 256 and image_ops.magnitude("Solarize", 9, 10, 32) == 0
    )


def test_autoaugment_plans_follow_the_seed():
    policy = AutoAugment()
    plans = [policy.plan(torch.Generator().manual_seed(seed), 32) for seed in range(40)]
    again = [policy.plan(torch.Generator().manual_seed(seed), 32) for seed in range(40)]
    assert plans == again and len({str(plan) for plan in plans}) > 10
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    first = policy(image, torch.Generator().manual_seed(3))
    assert torch.equal(first, policy(image, torch.Generator().manual_seed(3)))
    assert first.dtype == torch.uint8 and first.shape == (3, 32, 32)


def test_randaugment_plans_follow_the_seed_and_keep_grey_images_grey():
    policy = RandAugment()
    image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    outputs = [policy(image, torch.Generator().manual_seed(seed)) for seed in range(10)]
    assert all(
        torch.equal(out, policy(image, torch.Generator().manual_seed(seed)))
        for seed, out in enumerate(outputs)
    )
    assert all(out.shape == (1, 16, 16) for out in outputs)
    assert apply_plan(image, []) is image


def test_autoaugment_policy_sampling_frequencies():
    """Sub-policies uniformly, each operation with its own probability, signs even."""
    draws = 20_000
    generator = torch.Generator().manual_seed(0)
    counts: collections.Counter = collections.Counter()
    signs: collections.Counter = collections.Counter()
    for _ in range(draws):
        for name, value in AutoAugment().plan(generator, 32):
            counts[name] += 1
            if name in ("Rotate", "TranslateX", "ShearY", "Brightness") and value != 0:
                signs[value > 0] += 1
    expected: collections.Counter = collections.Counter()
    for sub_policy in CIFAR10_POLICY:
        for name, probability, _ in sub_policy:
            expected[name] += probability * draws / len(CIFAR10_POLICY)
    for name, mean in expected.items():
        if mean:
            # binomial spread: well inside five standard deviations
            assert abs(counts[name] - mean) < 5 * np.sqrt(mean) + 1, (name, counts[name], mean)
    assert counts["Invert"] > 0 and abs(signs[True] - signs[False]) < 5 * np.sqrt(signs[True] + signs[False])


def test_randaugment_policy_sampling_frequencies():
    """Two operations per image, each of the fourteen equally often, at magnitude 9 of 31."""
    draws = 7_000
    generator = torch.Generator().manual_seed(1)
    counts: collections.Counter = collections.Counter()
    for _ in range(draws):
        plan = RandAugment().plan(generator, 64)
        assert len(plan) == 2
        for name, value in plan:
            counts[name] += 1
            if name == "Rotate":
                assert abs(value) == pytest.approx(9.0)
    mean = 2 * draws / len(RANDAUGMENT_OPERATIONS)
    assert set(counts) == set(RANDAUGMENT_OPERATIONS)
    assert all(abs(count - mean) < 5 * np.sqrt(mean) for count in counts.values()), counts
