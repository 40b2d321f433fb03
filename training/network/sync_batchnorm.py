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
    """``nn.BatchNorm2d`` whose training statistics are those of every process's batch together."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return super().forward(input)
        dims = (0, 2, 3)
        values = input.float()  # statistics in float32 under bf16 autocast too
        count = torch.full((1,), float(values.numel() // values.shape[1]), device=values.device)
        local = torch.cat([values.sum(dims), (values**2).sum(dims), count])
        total = distributed_functional.all_reduce(local)
        channels = input.shape[1]
        n = total[-1]
        mean = total[:channels] / n
        variance = total[channels : 2 * channels] / n - mean**2  # biased, as batch norm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (
                    self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                )
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                unbiased = variance.detach() * n / (n - 1).clamp(min=1)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        shape = (1, channels, 1, 1)
        normalised = (input - mean.view(shape).to(input.dtype)) * torch.rsqrt(variance + self.eps).view(
            shape
        ).to(input.dtype)
        if self.affine:
            normalised = normalised * self.weight.view(shape) + self.bias.view(shape)
        return normalised


def synchronise_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm2d`` computing global statistics: PyTorch's
    ``SyncBatchNorm`` on GPUs, ``GlobalBatchNorm2d`` elsewhere; parameters and buffers kept."""
    if any(parameter.is_cuda for parameter in module.parameters()):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
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
