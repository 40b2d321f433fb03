"""Batch normalisation over the global batch of data-parallel training, on any device.

Under DDP every process normalises with its own slice of the batch unless its BatchNorm layers
share their statistics; the paper trains on one GPU, so one batch, one set of statistics.
PyTorch's ``nn.SyncBatchNorm`` does this on GPUs only; ``GlobalBatchNorm2d`` all-reduces the
per-channel sums and sums of squares itself (differentiably, so gradients flow through the
global statistics too), which works with gloo on CPUs as well. ``synchronise_batchnorm`` swaps
them in, keeping the weights and running statistics.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed_functional
from torch import nn


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of every process's batch together.

    Args:
        num_features: the channels.
        eps: added to the variance.
        momentum: of the running statistics; None: their cumulative average.
        affine: learn a per-channel scale and shift.
        track_running_stats: keep running statistics for evaluation.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalise ``input`` by the global batch's statistics while training in a process group.

        Args:
            input: [B, C, H, W].

        Returns:
            The normalised input; as ``nn.BatchNorm2d`` outside training or a process group.
        """
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return super().forward(input)
        dims = (0, 2, 3)
        values = input.float()  # statistics in float32 under bf16 autocast too
        count = torch.full((1,), float(values.numel() // values.shape[1]), device=values.device)
        local = torch.cat([values.sum(dims), (values**2).sum(dims), count])
        # torch leaves ``torch.distributed.nn.functional.all_reduce`` unannotated.
        total: torch.Tensor = distributed_functional.all_reduce(local)  # type: ignore[no-untyped-call]
        channels = input.shape[1]
        n = total[-1]
        mean = total[:channels] / n
        variance = total[channels : 2 * channels] / n - mean**2  # biased, as batch norm normalises
        # The buffers are None only where running statistics are not tracked.
        tracked, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        if (
            self.track_running_stats
            and tracked is not None
            and running_mean is not None
            and running_var is not None
        ):
            with torch.no_grad():
                tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                unbiased = variance.detach() * n / (n - 1).clamp(min=1)
                running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        shape = (1, channels, 1, 1)
        normalised = (input - mean.view(shape).to(input.dtype)) * torch.rsqrt(variance + self.eps).view(
            shape
        ).to(input.dtype)
        if self.affine:
            normalised = normalised * self.weight.view(shape) + self.bias.view(shape)
        return normalised


def synchronise_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm2d`` computing global statistics.

    PyTorch's ``SyncBatchNorm`` on GPUs, ``GlobalBatchNorm2d`` elsewhere; parameters and
    buffers are kept.

    Args:
        module: the model, before it is wrapped for data-parallel training.

    Returns:
        The converted model: a new one on GPUs, ``module`` itself, changed in place, elsewhere.
    """
    if any(parameter.is_cuda for parameter in module.parameters()):
        # torch leaves ``SyncBatchNorm.convert_sync_batchnorm`` unannotated.
        converted: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(module)  # type: ignore[no-untyped-call]
        return converted
    _swap_batchnorm(module)
    return module


def _swap_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            ).to(child.weight.device)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement)
        else:
            _swap_batchnorm(child)
