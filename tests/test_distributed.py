"""Data-parallel training with torchrun: after some steps the weights agree on every rank."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_ranks_end_with_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
         str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
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
