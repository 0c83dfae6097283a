"""Recycled memory for the engine's large arrays.

glibc hands a freed array above its mmap threshold (or at the top of its heap) back to
the system, and the next array of that size page-faults its memory in again, one fault
per 4 KB page (~1-2 us each here: a float32 256 x 256 result costs 64 of them, about
the time of computing it). torch keeps its freed memory in its process: a W2 round
page-faults ~1 time in torch and ~1,000 times in the engine without this module.

`empty(shape, dtype)` returns a row-major array whose memory comes from a free list
when an array of the same size died before; when the array (and every view of it) dies,
its memory goes back to the list. Only the engine's own results use it, never numpy's
allocator or other code in the process. At most `CACHE_BYTES` of free memory are kept
(``ENGINE_MEMORY_CACHE_MB`` in the environment, 0 turns recycling off).

An array from here behaves as one numpy allocated: its views have it as their base (its
own base is a `_Block`, an ndarray subclass over a bytearray, at which numpy's base
collapsing stops), and the memory owner of the chain is distinct for every live array.
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np

MIN_BYTES = 1 << 17    # glibc's initial mmap threshold; smaller arrays come from its heap
CACHE_BYTES = int(float(os.environ.get("ENGINE_MEMORY_CACHE_MB", "256")) * (1 << 20))
_PAGE = 4096

_free: dict[int, list] = {}   # size in bytes -> buffers no live array uses
_released: set = set()        # sizes of which one buffer went back to glibc
_cached = [0]                 # bytes in _free
_lock = threading.Lock()


class _Block(np.ndarray):
    """The bytes of one recycled buffer: the base of the array `empty` returns. When that array
    and its views are gone, this block is too, and its buffer returns to the free list."""

    def __del__(self):
        memory = self.base
        try:
            size = len(memory)
            with _lock:
                if size not in _released:
                    # NOTE: the first buffer of a size goes back to glibc, as numpy's array would:
                    # freeing a mapped chunk raises glibc's mmap threshold to its size, so numpy's
                    # own temporaries of that size come from the heap too instead of being
                    # mapped (and faulted in) anew each time.
                    _released.add(size)
                elif _cached[0] + size <= CACHE_BYTES:
                    _free.setdefault(size, []).append(memory)
                    _cached[0] += size
        except Exception:   # noqa: BLE001 - interpreter shutdown: module globals may be gone
            pass


def empty(shape, dtype) -> np.ndarray:
    """An uninitialized row-major array, in recycled memory when it is large."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or CACHE_BYTES <= 0:
        return np.empty(shape, dtype)
    size = -(-nbytes // _PAGE) * _PAGE
    memory = None
    with _lock:
        stack = _free.get(size)
        if stack:
            memory = stack.pop()
            _cached[0] -= size
    if memory is None:
        # NOTE: not an ndarray (nor a memoryview of one, which numpy unwraps): numpy's base
        # collapsing would skip the block and free it while the array lives.
        memory = bytearray(size)
    block = _Block.__new__(_Block, (size,), np.uint8, buffer=memory)
    return np.ndarray(shape, dtype, buffer=block)


def is_recycled(array: np.ndarray) -> bool:
    """Whether `array` is one `empty` made from recycled memory (not a view of one): it owns its
    memory as an array numpy allocated does."""
    return type(array.base) is _Block


def clear() -> None:
    """Give every cached buffer back (to Python's allocator)."""
    with _lock:
        _free.clear()
        _cached[0] = 0
