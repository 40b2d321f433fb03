"""Training loop: AdamW, cosine learning rate to 0, seeds, checkpoint + resume, progress bar,
and data-parallel training across processes when started with torchrun."""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from training.calibration import WIDE_THRESHOLDS, as_rows, calibrate
from training.config import TrainConfig
from training.data import load_dataset
from training.data.image_augment import UserInputAugmentation
from training.data.image_folder import DATASET_NAME as IMAGE_FOLDER
from training.data.image_folder import folder_data
from training.data.samples import Sample
from training.distributed import DistributedContext, all_reduce_sum, init_distributed, shutdown_distributed
from training.evaluate import decide, evaluate
from training.losses import LOSSES
from training.network.network import SpikingNetwork
from training.network.sync_batchnorm import synchronise_batchnorm

CHECKPOINT = "checkpoint.pt"
PRETRAINING_DIR = "ann-pretraining"  # inside the run folder: the ANN twin's own run

# One epoch's figures (loss, accuracies, timings, ...), as history.json lists them.
EpochStats = dict[str, float | None]
# How a run was trained (processes, batches, learning rate, ...), as the checkpoint records it.
RunRecord = dict[str, str | float | None]
LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class BestWeights(TypedDict):
    """The weights of the epoch with the best validation accuracy so far."""

    epoch: int
    accuracy: float
    model: dict[str, torch.Tensor]


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        network: The trained network, in eval mode.
        history: One entry per epoch trained.
        run_dir: The run folder holding the checkpoint, if any.
    """

    network: SpikingNetwork
    history: list[EpochStats]
    run_dir: Path | None


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random generators.

    Args:
        seed: The seed.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _reseed_worker(worker_id: int) -> None:
    """Give each loader worker its own augmentation stream: workers start as copies of the
    dataset, generator included, and torch seeds each worker differently every epoch."""
    worker = torch.utils.data.get_worker_info()
    assert worker is not None  # called by the loader inside each worker
    generator = _augmentation_generator(worker.dataset)
    if generator is not None:
        generator.manual_seed(torch.initial_seed() % 2**63)


def _augmentation_generator(dataset: object) -> torch.Generator | None:
    """The data set's augmentation generator, through a ``Subset`` (``train_images``) too."""
    generator = getattr(getattr(dataset, "dataset", dataset), "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def load_training_data(config: TrainConfig) -> tuple[Dataset[Sample], Dataset[Sample]]:
    """The config's training split (augmented as it says, cut to ``train_images``) and the split
    it is evaluated on (``evaluation_split``), event data in frames of the network's T.

    Args:
        config: The run's config.

    Returns:
        The training and the evaluation split.
    """
    spec = config.network_spec()
    train_set: Dataset[Sample]
    evaluation_set: Dataset[Sample]
    if config.dataset == IMAGE_FOLDER:
        if config.data_root is None:
            raise ValueError(f"dataset {IMAGE_FOLDER} needs data_root: the folder of class folders")
        augment = UserInputAugmentation.from_dict(config.augmentation) if config.augment else None
        folder = folder_data(config.data_root, spec.input_shape, seed=config.seed, augment=augment)
        train_set, evaluation_set = folder.train, folder.val
    else:
        train_set = load_dataset(
            config.dataset,
            "train",
            config.data_root,
            augment=config.augment,
            augmentation=config.augmentation,
            timesteps=spec.timesteps,
        )
        evaluation_set = load_dataset(config.dataset, "test", config.data_root, timesteps=spec.timesteps)
    if config.train_images is not None:
        # torch types Dataset without __len__ (iterable data sets have none); ours all have one.
        train_set = Subset(train_set, range(min(config.train_images, len(cast(Sized, train_set)))))
    return train_set, evaluation_set


def evaluation_split(config: TrainConfig) -> str:
    """The split that training evaluates on: a user's image folder's validation split, on which
    the kept checkpoint is chosen; the test split of a named data set, reported only.

    Args:
        config: The run's config.

    Returns:
        ``"val"`` or ``"test"``.
    """
    return "val" if config.dataset == IMAGE_FOLDER else "test"


def build_loss(config: TrainConfig) -> LossFunction:
    """The config's loss, its arguments bound.

    Args:
        config: The run's config; ``loss`` names the loss and holds its arguments.

    Returns:
        loss(output currents [T, B, K], labels [B]) -> scalar.

    Raises:
        ValueError: An unknown loss.
    """
    args = dict(config.loss)
    name = args.pop("name")
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    loss_fn = LOSSES[name]
    return lambda current, target: loss_fn(current, target, **args)


def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    context: DistributedContext | None = None,
    until_epoch: int | None = None,
) -> TrainResult:
    """Train ``config``; with ``run_dir`` the checkpoint is written there after every epoch.

    Args:
        config: The run's config.
        run_dir: The run folder for checkpoint.pt and history.json; None keeps nothing.
        resume: Continue from the checkpoint in ``run_dir``, when there is one.
        progress: Show a progress bar and print each epoch's figures.
        context: The data-parallel context; None joins torchrun's process group (when started
            by torchrun) and leaves it at the end.
        until_epoch: Stop after that epoch, leaving a checkpoint to ``resume`` from later (for
            jobs with a wall-time limit); the schedule stays the one of ``config.epochs``.

    Returns:
        The trained network and the history of the epochs.
    """
    owns_context = context is None
    context = context or init_distributed()
    try:
        return _train(
            config,
            Path(run_dir) if run_dir else None,
            resume,
            progress,
            context,
            min(until_epoch or config.epochs, config.epochs),
        )
    finally:
        if owns_context:
            shutdown_distributed(context)


def _train(
    config: TrainConfig,
    run_dir: Path | None,
    resume: bool,
    progress: bool,
    context: DistributedContext,
    until_epoch: int,
) -> TrainResult:
    resuming = resume and run_dir is not None and (run_dir / CHECKPOINT).exists()
    start_weights = (
        _pretrained_twin(config, run_dir, resume, progress, context)
        if config.ann_pretraining is not None and not resuming
        else None
    )
    seed_everything(config.seed)
    device = context.device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
    train_set, test_set = load_training_data(config)
    sampler: DistributedSampler[Sample] | None = (
        DistributedSampler(train_set, context.world_size, context.rank, shuffle=True, seed=config.seed)
        if context.enabled
        else None
    )
    loader = DataLoader(
        train_set,
        batch_size=config.per_process_batch_size(context.world_size),
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=config.workers,
        drop_last=len(cast(Sized, train_set)) > config.batch_size,
        generator=torch.Generator().manual_seed(config.seed),
        worker_init_fn=_reseed_worker,
        pin_memory=device.type == "cuda",
    )
    network = SpikingNetwork(config.network_spec()).to(device)
    if start_weights is not None:
        network.load_state_dict(start_weights)
    if config.channels_last:
        # Module.to takes memory_format at run time; torch's overloads leave it out.
        network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    synchronised = context.enabled and config.sync_batchnorm
    if synchronised:
        # Only the BatchNorm layers inside are replaced: the network keeps its class.
        network = cast(SpikingNetwork, synchronise_batchnorm(network))
    model: nn.Module = DistributedDataParallel(network) if context.enabled else network
    run_record: RunRecord = {
        "world_size": context.world_size,
        "global_batch_size": config.batch_size,
        "per_process_batch_size": loader.batch_size,
        "lr": config.lr,
        "sync_batchnorm": synchronised,
        "device": device.type,
    }
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * len(loader), eta_min=0.0
    )
    loss_fn = build_loss(config)
    history: list[EpochStats] = []
    start_epoch = 0
    split = evaluation_split(config)
    best: BestWeights | None = None  # the best on the validation split, the one exported
    if resuming and run_dir is not None:
        start_epoch, history, best = _load_checkpoint(
            run_dir / CHECKPOINT, network, optimizer, scheduler, loader
        )
    for epoch in range(start_epoch, until_epoch):
        if sampler is not None:
            sampler.set_epoch(epoch)
        started = time.perf_counter()
        stats = _train_epoch(
            model,
            network,
            loader,
            optimizer,
            scheduler,
            loss_fn,
            device,
            context,
            progress and context.is_main,
            _bar_title(epoch, config.epochs, split, history),
            config,
        )
        last = epoch + 1 == config.epochs
        if context.is_main and (last or (epoch + 1) % config.eval_every == 0):
            result = evaluate(network, test_set, device=str(device))
            stats.update(
                {
                    f"{split}_accuracy": result.accuracy,
                    f"{split}_mean_decision_timestep": result.mean_decision_timestep,
                    f"{split}_firing_rate": result.firing_rate,
                }
            )
            if split == "val" and (best is None or result.accuracy > best["accuracy"]):
                best = {
                    "epoch": epoch + 1,
                    "accuracy": result.accuracy,
                    "model": {name: tensor.detach().clone() for name, tensor in network.state_dict().items()},
                }
            network.train()
        stats.update(epoch=epoch + 1, seconds=time.perf_counter() - started, peak_rss_mib=peak_rss_mib())
        history.append(stats)
        if progress and context.is_main:
            done = history[start_epoch:]
            # the run's remaining time at the pace of this session's epochs (evaluations included)
            eta_s = sum(row["seconds"] or 0.0 for row in done) / len(done) * (until_epoch - epoch - 1)
            shown = {**stats, "eta_s": eta_s}
            tqdm.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in shown.items()}))
        if run_dir and context.is_main:
            _save_checkpoint(
                run_dir, config, network, optimizer, scheduler, loader, epoch + 1, history, run_record, best
            )
    if best is not None:  # the kept network is the best on the validation split
        network.load_state_dict(best["model"])
    network.eval()
    if config.max_mean_timestep is not None and until_epoch == config.epochs and context.is_main:
        _calibrate_output(config, network, test_set, split, run_dir, progress)
    return TrainResult(network, history, run_dir)


def _pretrained_twin(
    config: TrainConfig, run_dir: Path | None, resume: bool, progress: bool, context: DistributedContext
) -> dict[str, torch.Tensor]:
    """The weights of ``config``'s ANN twin trained for ``config.ann_pretraining``.

    The twin is a run of its own in ``run_dir/ann-pretraining`` (so a resumed run trains it
    once); its weights are the best on the validation split where the run has one, else the
    last. Its convolutions, BatchNorms and classifier have the spiking network's names and
    shapes, so the spiking network starts from filters that already tell the classes apart,
    and its own epochs adapt them to spikes.
    """
    twin = config.ann_twin()
    if progress and context.is_main:
        tqdm.write(
            f"ANN pretraining: {twin.epochs} epochs of the network's ANN twin, then the spiking network"
        )
    result = _train(
        twin, run_dir / PRETRAINING_DIR if run_dir else None, resume, progress, context, twin.epochs
    )
    return result.network.state_dict()


def _calibrate_output(
    config: TrainConfig,
    network: SpikingNetwork,
    validation_set: Dataset[Sample],
    split: str,
    run_dir: Path | None,
    progress: bool,
) -> None:
    """Choose the output neurons for ``config.max_mean_timestep`` on the validation split, apply
    them, and record the choice in the checkpoint (``network_from_payload`` applies it)."""
    if split != "val":
        raise ValueError(
            f"max_mean_timestep calibrates on a validation split; {config.dataset} is evaluated on {split}"
        )
    if network.spec.coding != "latency":
        raise ValueError("max_mean_timestep applies to latency-coded networks, which decide at a first spike")
    assert config.max_mean_timestep is not None
    outcome = calibrate(
        network.cpu(), validation_set, config.max_mean_timestep, thresholds=WIDE_THRESHOLDS, strict=False
    )
    chosen = outcome.chosen
    network.set_output_neuron(leak=chosen.leak, threshold=chosen.threshold)
    record: dict[str, Any] = {
        "split": split,
        "samples": outcome.samples,
        "max_mean_timestep": config.max_mean_timestep,
        "met_budget": outcome.met_budget,
    }
    record |= as_rows([chosen])[0]
    if not outcome.met_budget:
        print(
            f"warning: no output neurons decide within {config.max_mean_timestep} timesteps on average on "
            f"the validation split; kept the fastest ({chosen.mean_decision_timestep:.3f})",
            file=sys.stderr,
        )
    if progress:
        tqdm.write(json.dumps({"calibration": record}))
    if run_dir is not None:
        payload = load_checkpoint_payload(run_dir / CHECKPOINT)
        payload["calibration"] = record
        _write_checkpoint(run_dir, payload)


def _bar_title(epoch: int, epochs: int, split: str, history: list[EpochStats]) -> str:
    """The epoch's progress bar title, with the latest evaluation's accuracy and decision time."""
    title = f"epoch {epoch + 1}/{epochs}"
    evaluated = [row for row in history if f"{split}_accuracy" in row]
    if evaluated:
        accuracy = evaluated[-1][f"{split}_accuracy"] or 0.0
        timestep = evaluated[-1][f"{split}_mean_decision_timestep"] or 0.0
        title += f" ({split} acc {accuracy:.3f}, t {timestep:.2f})"
    return title


def _train_epoch(
    model: nn.Module,
    network: SpikingNetwork,
    loader: DataLoader[Sample],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: LossFunction,
    device: torch.device,
    context: DistributedContext,
    progress: bool,
    description: str,
    config: TrainConfig,
) -> EpochStats:
    """One pass over ``loader``; returns the epoch's loss and training figures."""
    model.train()
    # Summed on the device: reading them every step would make a GPU wait for each batch.
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss * n, correct, decision timesteps, n
    bar = tqdm(loader, desc=description, disable=not progress, leave=False)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    for step, (images, labels) in enumerate(bar):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if images.dim() == 4:
            images = images.contiguous(memory_format=layout)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            output = model(images)
        loss = loss_fn(output.current.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        optimizer.step()
        scheduler.step()
        decision = decide(network, output)
        n = len(labels)
        sums += torch.stack(
            [
                loss.detach().double() * n,
                (decision.class_index == labels).sum().double(),
                decision.decision_timestep.sum().double(),
                torch.full((), float(n), dtype=torch.float64, device=device),
            ]
        )
        if progress and step % 10 == 0:
            shown = sums.cpu()
            bar.set_postfix(
                loss=f"{shown[0] / shown[3]:.4f}",
                acc=f"{shown[1] / shown[3]:.3f}",
                t=f"{shown[2] / shown[3]:.2f}",
            )
    sums = all_reduce_sum(sums, context).cpu()
    return {
        "loss": float(sums[0] / sums[3]),
        "train_accuracy": float(sums[1] / sums[3]),
        "train_mean_decision_timestep": float(sums[2] / sums[3]),
        # A float: torch's type allows tensor learning rates, config.lr is a number.
        "lr": cast(float, scheduler.get_last_lr()[0]),
    }


def _random_states(loader: DataLoader[Sample]) -> dict[str, torch.Tensor]:
    """Every random stream training draws from: the global torch RNG (dropout-free nets use it
    only at init), the loader's shuffling generator and the data set's augmentation generator."""
    states = {"torch": torch.get_rng_state(), "shuffle": loader.generator.get_state()}
    augmentation = _augmentation_generator(loader.dataset)
    if augmentation is not None:
        states["augmentation"] = augmentation.get_state()
    return states


def _restore_random_states(states: dict[str, torch.Tensor], loader: DataLoader[Sample]) -> None:
    """Put back the streams ``_random_states`` saved."""
    torch.set_rng_state(states["torch"])
    loader.generator.set_state(states["shuffle"])
    if "augmentation" in states:
        augmentation = _augmentation_generator(loader.dataset)
        assert augmentation is not None  # saved from this data set's generator
        augmentation.set_state(states["augmentation"])


def _save_checkpoint(
    run_dir: Path,
    config: TrainConfig,
    network: SpikingNetwork,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader[Sample],
    epoch: int,
    history: list[EpochStats],
    run_record: RunRecord,
    best: BestWeights | None,
) -> None:
    """Write checkpoint.pt (atomically) and history.json into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": config.to_dict(),
        "spec": network.spec.to_dict(),
        "model": network.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "history": history,
        "rng": _random_states(loader),
        "run": run_record,  # how it was trained: processes, batch per process, synchronised BatchNorm
        "best": best,  # the weights with the best validation accuracy so far (image folders)
    }
    _write_checkpoint(run_dir, payload)
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))


def _write_checkpoint(run_dir: Path, payload: dict[str, Any]) -> None:
    partial = run_dir / (CHECKPOINT + ".partial")
    torch.save(payload, partial)
    partial.replace(run_dir / CHECKPOINT)  # a crash mid-write never leaves a torn checkpoint


def load_checkpoint_payload(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, tensors on the CPU.

    Args:
        path: The checkpoint file.

    Returns:
        config, spec, model, optimizer, scheduler, epoch, history, rng and run, by name.
    """
    payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return payload


def _load_checkpoint(
    path: Path,
    network: SpikingNetwork,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader[Sample],
) -> tuple[int, list[EpochStats], BestWeights | None]:
    """Restore a run's state from ``path``; returns the epochs done, their history and the best
    weights on the validation split so far."""
    payload = load_checkpoint_payload(path)
    network.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    _restore_random_states(payload["rng"], loader)
    return payload["epoch"], payload["history"], payload.get("best")


def checkpoint_path(run_dir: str | Path) -> Path:
    """The checkpoint of a run.

    Args:
        run_dir: A run folder, or the checkpoint file itself.

    Returns:
        The checkpoint file.

    Raises:
        FileNotFoundError: There is none.
    """
    path = Path(run_dir) / CHECKPOINT if Path(run_dir).is_dir() else Path(run_dir)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def network_from_checkpoint(run_dir: str | Path) -> tuple[SpikingNetwork, TrainConfig, list[EpochStats]]:
    """The trained network, its config and history from a run's checkpoint.

    Args:
        run_dir: A run folder, or the checkpoint file itself.

    Returns:
        The network (in eval mode), its config and its history.

    Raises:
        FileNotFoundError: There is no checkpoint.
    """
    return network_from_payload(load_checkpoint_payload(checkpoint_path(run_dir)))


def network_from_payload(payload: dict[str, Any]) -> tuple[SpikingNetwork, TrainConfig, list[EpochStats]]:
    """The trained network, its config and history from a loaded checkpoint.

    Args:
        payload: What ``load_checkpoint_payload`` returned (its ``run``, when there, says how it
            was trained: world size, batches, learning rate, synchronised BatchNorm).

    Returns:
        The network (in eval mode), its config and its history.
    """
    from training.network.spec import NetworkSpec

    network = SpikingNetwork(NetworkSpec.from_dict(payload["spec"]))
    best = payload.get("best")
    # A run evaluated on a validation split keeps its best weights there, not its last.
    network.load_state_dict(best["model"] if best else payload["model"])
    calibration = payload.get("calibration")
    if calibration:
        network.set_output_neuron(leak=calibration["leak"], threshold=calibration["threshold"])
    network.eval()
    return network, TrainConfig.from_dict(payload["config"]), payload["history"]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
