"""Train a config for as many epochs as fit in a wall-clock budget (a lent GPU's lease, a CI slot).

    python scripts/train_within_budget.py --config fashion_mnist --out runs/fm-gpu \
        --budget-seconds 450 [--max-epochs 100] [--set key=value ...]

The cosine schedule has to know its length before the first step, so the script first times the
trainer's own epoch loop on a few batches of a throwaway copy of the network (after a warm-up that
pays for kernel selection), adds one test evaluation per ``eval_every`` epochs, and sets
``epochs`` to what fits. Then it trains as ``firstspike train`` does, writing the checkpoint after
every epoch, and finally a weights-only copy (``weights.pt``: no optimizer state) that
``firstspike calibrate``/``export`` read like a run directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sized
from pathlib import Path
from typing import cast

# A script of the source tree: benchmarks/ is importable from the checkout's root only.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.data import Dataset, Subset  # noqa: E402

from benchmarks.train_speed import trainer_loop  # noqa: E402
from training.config import TrainConfig, load_config  # noqa: E402
from training.distributed import DistributedContext  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.network.network import SpikingNetwork  # noqa: E402
from training.trainer import CHECKPOINT, load_checkpoint_payload, load_training_data, train  # noqa: E402

PROBE_BATCHES = 40
WARM_UP_BATCHES = 5


def seconds_per_batch(
    config: TrainConfig, train_set: Dataset[tuple[torch.Tensor, int]], device: torch.device
) -> float:
    """Wall time of one training batch through the trainer's loop with the config's loader."""
    size = len(cast(Sized, train_set))  # torch's Dataset type declares no __len__
    probe_batches = max(1, min(PROBE_BATCHES, size // config.batch_size - WARM_UP_BATCHES))
    subset = Subset(train_set, range((WARM_UP_BATCHES + probe_batches) * config.batch_size))
    return trainer_loop(config, subset, device, WARM_UP_BATCHES) / probe_batches


def seconds_per_evaluation(
    config: TrainConfig, test_set: Dataset[tuple[torch.Tensor, int]], device: torch.device
) -> float:
    """Wall time of one test evaluation of a fresh network of the config."""
    network = SpikingNetwork(config.network_spec()).to(device)
    started = time.perf_counter()
    evaluate(network, test_set, device=str(device))
    return time.perf_counter() - started


def write_weights_only(run_dir: Path) -> Path:
    """The checkpoint without optimizer, scheduler and random states: smaller, and enough to
    calibrate, evaluate and export."""
    payload = load_checkpoint_payload(run_dir / CHECKPOINT)
    kept = {
        key: payload[key] for key in ("config", "spec", "model", "epoch", "history", "run") if key in payload
    }
    target = run_dir / "weights.pt"
    torch.save(kept, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--budget-seconds", type=float, required=True, help="wall time for training itself")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    config = load_config(args.config, args.set)
    device = DistributedContext().device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_set, test_set = load_training_data(config)

    batch_seconds = seconds_per_batch(config, train_set, device)
    evaluation_seconds = seconds_per_evaluation(config, test_set, device)
    batches = len(cast(Sized, train_set)) // config.batch_size
    epoch_seconds = batches * batch_seconds + evaluation_seconds / config.eval_every
    epochs = max(1, min(args.max_epochs, math.floor(args.budget_seconds / epoch_seconds)))
    plan = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "seconds_per_batch": round(batch_seconds, 5),
        "seconds_per_evaluation": round(evaluation_seconds, 2),
        "estimated_epoch_seconds": round(epoch_seconds, 2),
        "epochs": epochs,
        "batch_size": config.batch_size,
        "budget_seconds": args.budget_seconds,
    }
    print(json.dumps(plan), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan.json").write_text(json.dumps(plan, indent=2))

    started = time.perf_counter()
    result = train(dataclasses.replace(config, epochs=epochs), args.out, progress=False)
    for record in result.history:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
    print(json.dumps({"trained_seconds": round(time.perf_counter() - started, 1)}))
    write_weights_only(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
