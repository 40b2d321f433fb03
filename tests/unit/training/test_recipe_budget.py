"""Fitting a recipe's epochs to a time budget: the arithmetic on a given step time, and a real
probe of a small network."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import png_bytes
from training import recipe_budget
from training.cli import _folder_config, build_parser
from training.config import TrainConfig
from training.recipe_budget import MIN_EPOCHS, OVERHEAD, fit_epochs, seconds_per_step


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


@pytest.mark.parametrize(
    ("budget_seconds", "epochs"),
    [
        (600, 10),  # 84 steps of 0.5 s with the overhead: 54.6 s an epoch
        (10_000, 60),  # never more than the recipe's own
        (60, MIN_EPOCHS),  # never fewer than the minimum, even over the budget
    ],
)
def test_the_epochs_that_fit(monkeypatch, budget_seconds, epochs):
    monkeypatch.setattr(recipe_budget, "seconds_per_step", lambda config: 0.5)
    fit = fit_epochs(_config(), train_images=5400, budget_seconds=budget_seconds)
    assert fit.steps_per_epoch == 84 and fit.seconds_per_step == 0.5
    assert fit.epochs == epochs
    assert fit.expected_seconds == pytest.approx(epochs * 84 * 0.5 * OVERHEAD)


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
