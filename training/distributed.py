"""Multi-process data parallel training under ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the training processes (one process: the defaults).

    Attributes:
        rank: The process's index among all processes.
        world_size: The number of processes.
        local_rank: The process's index on its machine (its GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether training is spread over several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates, logs and writes checkpoints (rank 0)."""
        return self.rank == 0

    def device(self) -> torch.device:
        """The device this process trains on.

        Returns:
            Its local GPU when CUDA is available, else the CPU.
        """
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def init_distributed() -> DistributedContext:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); no-op otherwise.

    Returns:
        This process's context, read from torchrun's environment variables.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    context = DistributedContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    return context


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group, if this process joined one.

    Args:
        context: The context ``init_distributed`` returned.
    """
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``values`` over all processes, in place.

    Args:
        values: This process's values.
        context: The processes to sum over.

    Returns:
        ``values``, now holding the sum (unchanged with one process).
    """
    if context.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
