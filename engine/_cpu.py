"""How torch's CPU kernels loop, where the loop decides the rounding.

NOTE: most of torch's float kernels are vectorized (SLEEF); the engine matches those by
computing in float64 and rounding once (`_ops._VIA_FLOAT64`). Two other facts of torch's CPU
loops show in the last bits of results:

- Some kernels are plain scalar loops that call `std::log`, `std::log1p`, ... of the C library
  torch is linked against (on Linux, glibc's `logf`, `log1pf`, ...). Their float32 results are
  neither numpy's nor the correctly rounded ones (glibc's log1pf differs from the rounded float64
  log1p on ~7 % of inputs in (0, 1)), so `libm` calls the same C functions: through ctypes on
  small arrays, numpy's loop above `_ops._VIA_FLOAT64_MAX_NUMEL` elements (as for the float64
  route).
- `cpu_kernel_vec` computes each inner loop two vectors at a time with its vector op and the rest
  (the tail, and whole loops whose input is neither contiguous nor a broadcast scalar) with its
  scalar op; the two can round differently (`vector_loop_mask` says which element took which).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import numpy as np


def _load():
    """The C math library, or None where it cannot be found (then numpy's loops are used)."""
    name = ctypes.util.find_library("m") or ("libm.so.6" if sys.platform.startswith("linux") else None)
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBM = _load()
_FUNCTIONS: dict = {}


def _function(name: str, dtype: np.dtype):
    """The C function `name` (float64) or `name + "f"` (float32), as a numpy ufunc over objects."""
    key = (name, dtype)
    if key not in _FUNCTIONS:
        c_type = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        function = getattr(_LIBM, name + "f" if dtype == np.float32 else name)
        function.restype, function.argtypes = c_type, [c_type]
        _FUNCTIONS[key] = np.frompyfunc(function, 1, 1)
    return _FUNCTIONS[key]


def libm(name: str, numpy_fn, x: np.ndarray) -> np.ndarray:
    """The C library's `name` of each element of the float array `x`, in x's dtype (numpy_fn,
    the same function in numpy, on large arrays or without a C library)."""
    from ._ops import _VIA_FLOAT64_MAX_NUMEL
    x = np.asarray(x)
    if _LIBM is None or x.size > _VIA_FLOAT64_MAX_NUMEL or x.dtype not in (np.float32, np.float64):
        return numpy_fn(x)
    return np.asarray(_function(name, x.dtype)(x), dtype=x.dtype)


def _vector_bytes() -> int:
    """The bytes of one vector of torch's kernels on this machine: 64 where it dispatches to its
    AVX512 build (the CPU has AVX512 F, BW, VL and DQ, unless ATEN_CPU_CAPABILITY says
    otherwise), else 32 (AVX2, and the 32-byte Vectorized of its default build)."""
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if capability:
        return 64 if capability == "avx512" else 32
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return 32
    return 64 if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags) else 32


VECTOR_BYTES = _vector_bytes()


def vector_loop_mask(x: np.ndarray) -> np.ndarray:
    """Where a unary `cpu_kernel_vec` over `x` takes its vector op: a bool array of x's shape.

    NOTE: TensorIterator walks x in memory order (its dims sorted by stride; C order when a dim
    is broadcast) and merges dims that follow one another in memory into one inner loop; the
    loop is vectorized when x's inner stride is one element (or 0), for its first whole multiples
    of two vectors (32 float32 elements with AVX512). Loops run over at most 32768 elements
    per thread; the engine's arrays that use this are smaller (`_ops._VIA_FLOAT64_MAX_NUMEL`).
    """
    mask = np.zeros(x.shape, dtype=bool)
    dims = [d for d in range(x.ndim) if x.shape[d] != 1]
    if not dims:
        return mask
    strides = [x.strides[d] for d in dims]
    if 0 not in strides:
        dims = [d for _, d in sorted(zip(strides, dims), key=lambda pair: -abs(pair[0]))]
    view = x.transpose(dims + [d for d in range(x.ndim) if d not in dims])
    inner_stride, length, first = x.strides[dims[-1]], x.shape[dims[-1]], len(dims) - 1
    while first > 0 and view.strides[first - 1] == inner_stride * length:
        first -= 1
        length *= view.shape[first]
    if inner_stride not in (0, x.itemsize):
        return mask
    step = 2 * VECTOR_BYTES // x.itemsize
    inner = (np.arange(length) < length - length % step).reshape(view.shape[first:len(dims)])
    view_mask = np.broadcast_to(inner.reshape(inner.shape + (1,) * (x.ndim - len(dims))), view.shape)
    return np.transpose(view_mask, np.argsort(dims + [d for d in range(x.ndim) if d not in dims])).copy()
