"""scripts/train_within_budget.py: the epoch count follows the measured speed and the budget, and
its weights-only copy serves calibrate, eval and export like the checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.trainer import network_from_checkpoint

pytestmark = pytest.mark.slow  # trains, in subprocesses

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "train_within_budget.py"
SMALL = [
    "--set",
    "network.arch_args.channels=[[4], [8]]",
    "--set",
    "network.stem_channels=4",
    "--set",
    "batch_size=64",
    "--set",
    "augment=false",
]


def budget_run(out: Path, budget: float, max_epochs: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--config",
            "digits",
            "--out",
            str(out),
            "--budget-seconds",
            str(budget),
            "--max-epochs",
            str(max_epochs),
            *SMALL,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )


def test_epochs_fit_the_budget_and_the_weights_load(tmp_path):
    completed = budget_run(tmp_path / "run", budget=10_000, max_epochs=2)
    assert completed.returncode == 0, completed.stderr
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    # a budget far above the need: the cap decides; the estimate is what the probe measured
    assert plan["epochs"] == 2 and plan["seconds_per_batch"] > 0
    assert plan["estimated_epoch_seconds"] >= plan["seconds_per_batch"] * (1437 // 64)
    weights = torch.load(tmp_path / "run" / "weights.pt", weights_only=True)
    assert set(weights) == {"config", "spec", "model", "epoch", "history", "run"} and weights["epoch"] == 2
    assert weights["run"]["world_size"] == 1 and weights["run"]["per_process_batch_size"] == 64
    from_weights, config, history = network_from_checkpoint(tmp_path / "run" / "weights.pt")
    from_checkpoint, _, _ = network_from_checkpoint(tmp_path / "run")
    assert config.epochs == 2 and len(history) == 2
    for name, tensor in from_checkpoint.state_dict().items():
        assert torch.equal(tensor, from_weights.state_dict()[name]), name


def test_a_budget_smaller_than_one_epoch_still_trains_one(tmp_path):
    completed = budget_run(tmp_path / "run", budget=0.001, max_epochs=50)
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["epochs"] == 1
