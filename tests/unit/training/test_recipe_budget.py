"""Fitting a recipe's epochs to a time budget: the arithmetic on given step and loading times, and
real probes of a small network and of a data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import png_bytes
from training import recipe_budget
from training.cli import _folder_config, build_parser
from training.config import TrainConfig
from training.recipe_budget import (
    MIN_EPOCHS,
    OVERHEAD,
    PROBE_IMAGES,
    fit_epochs,
    seconds_per_image,
    seconds_per_step,
)


def _config(epochs: int = 60, batch_size: int = 64) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "name": "x",
            "dataset": "image-folder",
            "epochs": epochs,
            "batch_size": batch_size,
            "network": {
                "architecture": "digits_net",
                "arch_args": {"channels": [8, 16]},
                "coding": "latency",
                "encoder": "le",
                "timesteps": 4,
                "input_shape": [1, 8, 8],
                "num_classes": 3,
            },
        }
    )


class CountingImages:
    """A stand-in training split that counts which images were asked for."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.asked: list[int] = []

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.asked.append(index)
        return torch.zeros(1, 8, 8), 0


@pytest.mark.parametrize(
    ("budget_seconds", "epochs"),
    [
        (600, 10),  # 84 steps of 0.5 s and 64 images of 2.5 ms, with the overhead: 58.2 s an epoch
        (10_000, 60),  # never more than the recipe's own
        (60, MIN_EPOCHS),  # never fewer than the minimum, even over the budget
    ],
)
def test_the_epochs_that_fit(monkeypatch, budget_seconds, epochs):
    monkeypatch.setattr(recipe_budget, "seconds_per_step", lambda config: 0.5)
    monkeypatch.setattr(recipe_budget, "seconds_per_image", lambda dataset: 0.0025)
    fit = fit_epochs(_config(), CountingImages(5400), budget_seconds=budget_seconds)
    assert fit.steps_per_epoch == 84 and fit.seconds_per_step == 0.5 and fit.seconds_per_image == 0.0025
    assert fit.epochs == epochs
    assert fit.expected_seconds == pytest.approx(epochs * 84 * (0.5 + 64 * 0.0025) * OVERHEAD)


@pytest.mark.parametrize(("size", "timed"), [(1000, PROBE_IMAGES), (10, 10), (0, 0)])
def test_the_loading_probe_times_a_seeded_draw_after_a_first_touch(size, timed):
    split = CountingImages(size)
    assert seconds_per_image(split) >= 0.0
    # each image once untimed (a first decode), then once timed, without repeats
    assert split.asked == split.asked[:timed] * 2 and len(set(split.asked)) == timed
    again = CountingImages(size)
    seconds_per_image(again)
    assert again.asked == split.asked  # a fixed seed: the same images every time


def test_a_real_probe_times_a_few_steps():
    seconds = seconds_per_step(_config(batch_size=8), steps=2)
    assert 0 < seconds < 30


@pytest.mark.parametrize(("overrides", "eval_every"), [([], 1), (["--set", "eval_every=2"], 2)])
def test_a_budget_respreads_evaluations_unless_the_user_chose(tmp_path, monkeypatch, overrides, eval_every):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 256, (12, 12), dtype=np.uint8)
            (tmp_path / "data" / name / f"{index}.png").write_bytes(png_bytes(pixels))
    monkeypatch.setattr(recipe_budget, "seconds_per_step", lambda config: 1000.0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = build_parser().parse_args(
        ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--quiet", *overrides]
    )
    config = _folder_config(args)
    # a default budget of minutes holds MIN_EPOCHS of these slow steps, not the recipe's epochs
    assert config.epochs == MIN_EPOCHS
    assert config.eval_every == eval_every


@pytest.mark.parametrize(
    ("pretraining", "epochs", "twin_epochs"),
    [
        # 84 steps of 0.5 s, and of the twin's 0.2 s, each with 64 images of 2.5 ms: 58.2 s and
        # 31.8 s an epoch with the overhead; together 90.0 s fit 6 of each in 600 s
        ({"lr": 0.01}, 6, 6),
        # two twin epochs per epoch of the spiking net: 121.7 s, so 4 of it and 8 of the twin's
        ({"epochs": 120}, 4, 8),
        # 2.5 per epoch, given as a factor: 137.6 s, so 4 and 10 (the twin's follow the run's)
        ({"epochs_factor": 2.5}, 4, 10),
    ],
)
def test_pretraining_epochs_count_in_the_budget(monkeypatch, pretraining, epochs, twin_epochs):
    monkeypatch.setattr(
        recipe_budget, "seconds_per_step", lambda config: 0.2 if config.network["coding"] == "ann" else 0.5
    )
    monkeypatch.setattr(recipe_budget, "seconds_per_image", lambda dataset: 0.0025)
    config = TrainConfig.from_dict({**_config().to_dict(), "ann_pretraining": pretraining})
    fit = fit_epochs(config, CountingImages(5400), budget_seconds=600)
    assert (fit.epochs, fit.pretraining_epochs, fit.seconds_per_pretraining_step) == (
        epochs,
        twin_epochs,
        0.2,
    )
    loading = 64 * 0.0025
    ratio = twin_epochs / epochs
    per_epoch = 84 * ((0.5 + loading) + ratio * (0.2 + loading)) * OVERHEAD
    assert fit.expected_seconds == pytest.approx(epochs * per_epoch)
    trained = fit.applied(config)
    assert trained.epochs == epochs and trained.ann_twin().epochs == twin_epochs
    assert trained.ann_pretraining == (
        {**pretraining, "epochs": twin_epochs} if "epochs" in pretraining else pretraining
    )
