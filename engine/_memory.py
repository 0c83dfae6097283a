"""Recycled memory for the engine's large arrays.

glibc hands a freed array above its mmap threshold (or at the top of its heap) back to
the system, and the next array of that size page-faults its memory in again, one fault
per 4 KB page (~1-2 us each here: a float32 256 x 256 result costs 64 of them, about
the time of computing it). In a process running only the engine, a W2 round page-faulted
~1,000 times without this module (~130 with it; torch: ~1). How often depends on glibc's
adaptive thresholds, so on what else the process allocates: next to torch, ~30.

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

import numpy as np

MIN_BYTES = 1 << 17    # glibc's initial mmap threshold; smaller arrays come from its heap
CACHE_BYTES = int(float(os.environ.get("ENGINE_MEMORY_CACHE_MB", "256")) * (1 << 20))
_PAGE = 4096

_free: dict[int, list] = {}   # size in bytes -> buffers no live array uses
_released: set = set()        # sizes of which one buffer went back to glibc
_cached = [0]                 # bytes in _free, about (its updates may interleave between threads)


class _Block(np.ndarray):
    """The bytes of one recycled buffer: the base of the array `empty` returns. When that array
    and its views are gone, this block is too, and its buffer returns to the free list."""

    def __del__(self):
        memory = self.base
        try:
            size = len(memory)
            if size not in _released:
                # NOTE: the first buffer of a size goes back to glibc, as numpy's array would:
                # freeing a mapped chunk raises glibc's mmap threshold to its size, so numpy's
                # own temporaries of that size come from the heap too instead of being mapped
                # (and faulted in) anew each time.
                _released.add(size)
            elif _cached[0] + size <= CACHE_BYTES:
                _free.setdefault(size, []).append(memory)
                _cached[0] += size
        except Exception:   # noqa: BLE001 - interpreter shutdown: module globals may be gone
            pass


def empty(shape, dtype) -> np.ndarray:
    """An uninitialized row-major array, in recycled memory when it is large."""
    try:
        size, dtype = _layouts[shape, dtype]
    except (KeyError, TypeError):    # (TypeError: a shape given as a list)
        size, dtype = _layout(shape, dtype)
    if not size:
        return np.empty(shape, dtype)
    try:
        memory = _free[size].pop()   # (atomic under the GIL, as append)
        _cached[0] -= size
    except (KeyError, IndexError):
        # NOTE: not an ndarray (nor a memoryview of one, which numpy unwraps): numpy's base
        # collapsing would skip the block and free it while the array lives.
        memory = bytearray(size)
    return _ndarray(shape, dtype, buffer=_new_block(_Block, (size,), _BYTE, buffer=memory))


_layouts: dict = {}   # (shape, dtype as given) -> (bytes of its buffer, 0 below MIN_BYTES; numpy dtype)
_ndarray, _new_block, _BYTE = np.ndarray, _Block.__new__, np.dtype(np.uint8)


def _layout(shape, dtype) -> tuple:
    """(bytes of the recycled buffer for an array of `shape` and `dtype`, or 0 for one numpy
    allocates; the numpy dtype), remembered for the next array of that layout."""
    npdt = np.dtype(dtype)
    nbytes = math.prod(shape) * npdt.itemsize
    size = 0 if nbytes < MIN_BYTES or CACHE_BYTES <= 0 else -(-nbytes // _PAGE) * _PAGE
    if type(shape) is tuple:
        if len(_layouts) >= 1024:
            _layouts.clear()
        _layouts[shape, dtype] = size, npdt
    return size, npdt


def is_recycled(array: np.ndarray) -> bool:
    """Whether `array` is one `empty` made from recycled memory (not a view of one): it owns its
    memory as an array numpy allocated does."""
    return type(array.base) is _Block


def clear() -> None:
    """Give every cached buffer back (to Python's allocator)."""
    _free.clear()
    _cached[0] = 0
