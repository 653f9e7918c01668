"""Keep freed heap memory in the process while scoring, instead of handing it back to the kernel.

Scoring an events object allocates a few MiB of short-lived buffers (decoded columns, bincount codes,
hashes). With glibc's default thresholds most of that is mmapped or trimmed off the heap top after each
object, so the next object page-faults the same amount back in: on a VM that was a third of the CPU time of
the per-object reduction. Raising the mmap and trim thresholds makes the allocator reuse those pages.
Memory stays bounded (the heap keeps at most TRIM_THRESHOLD free bytes). No-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Blocks below this come from the heap (glibc's dynamic ceiling is 32 MiB; a 1M-prompt accumulator row is 4).
MMAP_THRESHOLD = 64 << 20
#: Free bytes the heap keeps at its top before returning memory to the kernel.
TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc once per process; True when it took effect."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
