"""Starting a spiking network from its ANN twin: the twin's config, the settings refused, and a
real run whose spiking net starts from the twin's kept weights and resumes without retraining it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.cli import main
from training.config import TrainConfig, load_config
from training.network.network import SpikingNetwork
from training.trainer import CHECKPOINT, PRETRAINING_DIR, load_checkpoint_payload


def test_the_twin_is_the_same_network_as_an_ann():
    config = load_config("digits", ["epochs=7", "lr=0.002", "ann_pretraining={lr: 0.01}"])
    twin = config.ann_twin()
    assert (twin.network["coding"], twin.network["encoder"], twin.loss) == (
        "ann",
        "direct",
        {"name": "mean_ce"},
    )
    assert (twin.epochs, twin.lr, twin.ann_pretraining, twin.max_mean_timestep) == (7, 0.01, None, None)
    assert twin.network["arch_args"] == config.network["arch_args"]
    defaults = load_config("digits", ["epochs=7", "lr=0.002", "ann_pretraining={epochs: 3}"]).ann_twin()
    assert (defaults.epochs, defaults.lr) == (3, 0.002)
    factor = load_config("digits", ["epochs=7", "ann_pretraining={epochs_factor: 2.5}"]).ann_twin()
    assert factor.epochs == 18  # 17.5, rounded to even
    # the same names and shapes: the spiking net loads the twin's parameters one for one
    assert shapes(config) == shapes(twin)


def shapes(config: TrainConfig) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in SpikingNetwork(config.network_spec()).state_dict().items()}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("ann_pretraining={epochs: 0}", "epochs must be a positive whole number"),
        ("ann_pretraining={epochs: 2.5}", "epochs must be a positive whole number"),
        ("ann_pretraining={lr: -1}", "lr must be a positive number"),
        ("ann_pretraining={epochs_factor: 0}", "epochs_factor must be a positive number"),
        ("ann_pretraining={epochs: 3, epochs_factor: 2}", "must be {epochs: N or epochs_factor: F, lr: X}"),
        ("ann_pretraining={epoch: 3}", "must be {epochs: N or epochs_factor: F, lr: X}"),
        ("ann_pretraining=yes", "must be {epochs: N or epochs_factor: F, lr: X}"),
        ("network.encoder=intensity", "this one is latency coded with the intensity encoder"),
    ],
)
def test_pretraining_settings_that_cannot_work_are_refused(setting, message):
    overrides = [setting] if setting.startswith("ann_") else [setting, "ann_pretraining={}"]
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_config("digits", overrides)


def test_an_ann_is_not_pretrained_as_its_own_twin():
    with pytest.raises(ValueError, match="this one is ann coded"):
        load_config("digits", ["network.coding=ann", "network.encoder=direct", "ann_pretraining={}"])


def digits_folder(root: Path, classes: int = 3, per_class: int = 40) -> Path:
    """Real handwritten digits (scikit-learn's, 8 x 8) as PNG class folders."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(classes):
        folder = root / f"digit-{label}"
        folder.mkdir(parents=True)
        images = digits.images[digits.target == label][:per_class]
        for index, image in enumerate(images):
            Image.fromarray((image * 255 / 16).astype(np.uint8)).save(folder / f"{index}.png")
    return root


@pytest.mark.slow
def test_the_spiking_net_starts_from_the_twins_kept_weights_and_resumes_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder, run = digits_folder(tmp_path / "digits"), tmp_path / "run"
    # A learning rate of 1e-12 leaves the spiking net's weights where the twin left them.
    settings = ["epochs=2", "lr=1e-12", "ann_pretraining={epochs: 3, lr: 0.01}", "eval_every=1"]
    command = ["train", "--data", str(folder), "--out", str(run), "--quiet"]
    command += [item for setting in settings for item in ("--set", setting)]
    assert main([*command, "--until-epoch", "1"]) == 0

    twin_run = run / PRETRAINING_DIR
    twin_history = json.loads((twin_run / "history.json").read_text())
    assert [row["epoch"] for row in twin_history] == [1, 2, 3]
    kept = load_checkpoint_payload(twin_run / CHECKPOINT)["best"]
    assert kept["accuracy"] == max(row["val_accuracy"] for row in twin_history) > 0.6
    weights = load_checkpoint_payload(run / CHECKPOINT)["model"]
    parameters = [name for name in weights if name.endswith("weight")]
    assert len(parameters) >= 6
    for name in parameters:
        assert torch.allclose(weights[name], kept["model"][name], atol=1e-6), name

    twin_written = (twin_run / CHECKPOINT).stat().st_mtime_ns
    assert main([*command, "--resume"]) == 0
    assert [row["epoch"] for row in json.loads((run / "history.json").read_text())] == [1, 2]
    assert (twin_run / CHECKPOINT).stat().st_mtime_ns == twin_written  # the twin was not trained again
