"""The runtimes' allocator setting (service/inference/runtimes/heap.py)."""

import platform

import numpy as np
import pytest

from service.inference.runtimes.heap import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_thresholds_and_large_arrays_still_work():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process, then remembered
    for _ in range(3):  # blocks above the default mmap threshold, freed and made again
        block = np.ones((4, 64, 28, 28), np.float32)
        assert block.sum() == block.size
