"""Keep freed memory in the process for the next large array (glibc's malloc only).

numpy allocates every array with malloc. glibc gives the free top of its heap back to
the system once it exceeds a trim threshold, and serves large blocks with fresh
mmap-ed pages; both thresholds adapt to the largest block freed so far (trim: twice
its size). An autograd step allocates and frees many arrays of one size in an order
that leaves the heap top free, so each step gave its memory back and page-faulted it
in again: about 1000 faults (1-1.5 us each here) per round of 20 elementwise ops on a
256 x 256 float32 tensor and their backward, a third of the round's time (torch's own
round, with the same malloc, takes about 40). Fixed thresholds keep up to `TRIM_THRESHOLD`
bytes free in the process instead, and serve blocks of up to `MMAP_THRESHOLD` (glibc's own
dynamic maximum) from the heap.

This is process-wide: it applies to everything in the process that allocates with
malloc. It is skipped where the C library is not glibc, where the user set glibc's
own MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ environment variables (their
settings stand), and when ENGINE_KEEP_MALLOC_DEFAULTS=1.
"""
from __future__ import annotations

import ctypes
import os

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

TRIM_THRESHOLD = 128 << 20   # free bytes kept at the heap top
MMAP_THRESHOLD = 32 << 20    # larger blocks are mmap-ed (glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)


def keep_freed_memory() -> bool:
    """Set fixed trim and mmap thresholds in glibc's malloc; True when they were set."""
    if os.environ.get("ENGINE_KEEP_MALLOC_DEFAULTS") == "1":
        return False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):   # not a glibc system
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):   # pragma: no cover - a glibc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
