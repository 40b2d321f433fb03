"""Training speed: the trainer's epoch loop with and without the CPU speed options, against the
same network in a plain PyTorch loop, side by side in one run.

    python -m benchmarks.train_speed [--config fashion_mnist] [--images 2048] [--set workers=1]

Each mode trains a fresh copy of the config's network on the first ``--images`` training images
(after one warm-up batch) and prints seconds per 1,000 images and the implied time per epoch:

- plain loop: tensors already in memory, no augmentation, fp32: forward, TAD, backward, AdamW;
- trainer fp32: ``_train_epoch`` with the config's augmentation, float32, NCHW, no loader worker;
- then bf16 autocast, then channels_last added, each without a worker;
- trainer as configured: the config's ``precision``, ``channels_last`` and ``workers`` (a worker
  process starts per pass, which short runs pay for).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sized
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from training.config import TrainConfig, load_config
from training.data import load_dataset
from training.data.pixel_images import PixelImages
from training.distributed import DistributedContext
from training.network.network import SpikingNetwork
from training.trainer import _train_epoch, build_loss, load_training_data

CPU = torch.device("cpu")


def _network(config: TrainConfig) -> SpikingNetwork:
    """A fresh network of the config (seeded), channels_last where the config says."""
    torch.manual_seed(config.seed)
    network = SpikingNetwork(config.network_spec())
    if config.channels_last:
        # Module.to takes memory_format at run time; torch's overloads leave it out.
        network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return network


def plain_loop(config: TrainConfig, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Seconds of a plain PyTorch loop (forward, loss, backward, AdamW) over in-memory tensors,
    after one warm-up batch."""
    network = _network(dataclasses.replace(config, channels_last=False)).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = build_loss(config)
    batches = list(zip(torch.split(images, config.batch_size), torch.split(labels, config.batch_size)))
    started: float | None = None
    for index, (x, y) in enumerate(batches):
        if index == 1:
            started = time.perf_counter()  # after one warm-up batch
        loss = loss_fn(network(x).current, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        optimizer.step()
    assert started is not None, "the plain loop times from its second batch"
    return time.perf_counter() - started


def trainer_loop(
    config: TrainConfig,
    dataset: Dataset[tuple[torch.Tensor, int]],
    device: torch.device = CPU,
    warm_up_batches: int = 1,
) -> float:
    """Seconds the trainer's own epoch loop takes over ``dataset`` after ``warm_up_batches``
    (kernel selection, first allocations), with the config's loader workers.

    Args:
        config: The training config (batch size, precision, channels_last, workers, loss).
        dataset: The training samples; the warm-up takes its first batches.
        device: Where to train.
        warm_up_batches: Batches run before the timing, without loader workers.

    Returns:
        Wall seconds of one pass over the rest of ``dataset`` (shuffled), the GPU's queue
        included.
    """
    network = _network(config).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    loss_fn = build_loss(config)

    def epoch(loader: DataLoader[tuple[torch.Tensor, int]]) -> None:
        _train_epoch(
            network,
            network,
            loader,
            optimizer,
            scheduler,
            loss_fn,
            device,
            DistributedContext(),
            False,
            "",
            config,
        )
        if device.type == "cuda":
            torch.cuda.synchronize()  # the GPU's queue, not only the host's side of it

    warm_up = warm_up_batches * config.batch_size
    epoch(DataLoader(Subset(dataset, range(warm_up)), batch_size=config.batch_size))
    started = time.perf_counter()
    epoch(
        DataLoader(
            # torch's Dataset type declares no __len__; every data set here has one
            Subset(dataset, range(warm_up, len(cast(Sized, dataset)))),
            batch_size=config.batch_size,
            shuffle=True,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(0),
        )
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="fashion_mnist")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, as for firstspike train (e.g. workers=1)",
    )
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    train_set, _ = load_training_data(dataclasses.replace(config, train_images=None))
    full = len(cast(Sized, train_set))  # torch's Dataset type declares no __len__
    subset = Subset(train_set, range(args.images))
    # the plain loop takes the tensors of an in-memory image set (digits, fashion-mnist)
    clean = cast(PixelImages, load_dataset(config.dataset, "train", config.data_root))
    images, labels = clean.images[: args.images], clean.labels[: args.images]
    timed = args.images - config.batch_size
    before = dataclasses.replace(config, precision="fp32", channels_last=False, workers=0)
    bf16 = dataclasses.replace(before, precision="bf16")
    bf16_nhwc = dataclasses.replace(bf16, channels_last=True)
    rows = [
        ("plain PyTorch loop (fp32, no augmentation)", plain_loop(config, images, labels)),
        ("trainer, fp32 NCHW, augmentation in the main process", trainer_loop(before, subset)),
        ("+ bf16 autocast", trainer_loop(bf16, subset)),
        ("+ channels_last", trainer_loop(bf16_nhwc, subset)),
        (
            f"as configured ({config.precision}, channels_last={config.channels_last}, "
            f"workers={config.workers})",
            trainer_loop(config, subset),
        ),
    ]
    print(
        f"{args.config}: {timed} images timed per mode, {torch.get_num_threads()} threads; "
        f"epoch = {full:,} images"
    )
    print("| mode | s per 1,000 images | epoch (min) | vs trainer fp32 |")
    print("|---|---|---|---|")
    reference = rows[1][1]
    for name, seconds in rows:
        print(
            f"| {name} | {1000 * seconds / timed:.2f} | {full * seconds / timed / 60:.1f} | "
            f"{reference / seconds:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
