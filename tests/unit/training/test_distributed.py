"""Data-parallel training with torchrun: after some steps the weights agree on every rank."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def _two_ranks(tmp_path: Path, sync_batchnorm: bool) -> tuple[dict, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[3])}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(WORKER),
            str(tmp_path),
            str(sync_batchnorm).lower(),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")


def _batchnorm_statistics(tensors: dict) -> dict:
    return {name: value for name, value in tensors.items() if name.endswith(("running_mean", "running_var"))}


@pytest.mark.slow
def test_sync_batchnorm_two_ranks_end_with_identical_statistics(tmp_path):
    rank0, rank1 = _two_ranks(tmp_path, sync_batchnorm=True)
    statistics = _batchnorm_statistics(rank0)
    assert len(statistics) == 6  # the stem's and the two stages' BatchNorm layers, mean and variance
    for name in statistics:
        assert torch.equal(rank0[name], rank1[name]), name
    assert "GlobalBatchNorm2d" in json.loads((tmp_path / "modules.json").read_text())
    run = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["run"]
    assert run == {
        "world_size": 2,
        "global_batch_size": 32,
        "per_process_batch_size": 16,
        "lr": 1e-3,
        "sync_batchnorm": True,
        "device": "cpu",
    }


@pytest.mark.slow
def test_sync_batchnorm_off_leaves_each_rank_its_own_statistics(tmp_path):
    rank0, rank1 = _two_ranks(tmp_path, sync_batchnorm=False)
    statistics = _batchnorm_statistics(rank0)
    # DDP copies rank 0's buffers at each forward; the last step's update is each rank's own
    assert any(not torch.equal(rank0[name], rank1[name]) for name in statistics)
    assert "GlobalBatchNorm2d" not in json.loads((tmp_path / "modules.json").read_text())


@pytest.mark.slow
def test_two_ranks_end_with_identical_weights(tmp_path):
    rank0, rank1 = (
        {name: value for name, value in tensors.items() if not name.endswith(("running_mean", "running_var"))}
        for tensors in _two_ranks(tmp_path, sync_batchnorm=False)
    )
    with safe_open(tmp_path / "rank0.safetensors", "pt") as handle:
        assert handle.metadata()["world_size"] == "2"
    assert rank0.keys() == rank1.keys() and len(rank0) > 0
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    # and training really changed them: a freshly seeded network differs
    from training.config import load_config
    from training.network.network import SpikingNetwork

    torch.manual_seed(0)
    fresh = SpikingNetwork(load_config("digits", ["network.arch_args.channels=[8, 16]"]).network_spec())
    assert not torch.equal(dict(fresh.named_parameters())["head.module.weight"], rank0["head.module.weight"])
