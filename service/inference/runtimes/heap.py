"""Keep freed heap memory in the process for the next request's arrays.

Every timestep hands its outputs to numpy as fresh arrays (onnxruntime copies them out of its
own arena; torch tensors become arrays likewise). A first step that writes out hidden
membranes of hundreds of kB each is, for glibc's allocator, a series of large blocks: by
default it maps them fresh from the kernel and unmaps them on free, or trims the heap back
when they are freed, so every request pays the page faults of touching new pages again
(``benchmarks.comparison`` measures what that costs).
Raising the mmap and trim thresholds makes those blocks come from, and return to, the heap.
The process then keeps what it freed, up to the trim threshold, as a server keeps a pool.

Only glibc has ``mallopt``; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters of glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's upper limit for the mmap threshold on 64-bit
TRIM_THRESHOLD_BYTES = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True where the allocator took them."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    trimmed = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return bool(mapped) and bool(trimmed)
