"""The C library's math functions, for the few torch kernels that call them element by element.

NOTE: most of torch's float kernels are vectorized (SLEEF); the engine matches those by
computing in float64 and rounding once (`_ops._VIA_FLOAT64`). Some kernels are plain scalar
loops that call `std::log`, `std::log1p`, ... of the C library torch is linked against (on
Linux, glibc's `logf`, `log1pf`, ...). Their float32 results are neither numpy's nor the
correctly rounded ones (glibc's log1pf differs from the rounded float64 log1p on ~7 % of
inputs in (0, 1)), so the engine calls the same C functions: through ctypes on small arrays,
numpy's loop above `_ops._VIA_FLOAT64_MAX_NUMEL` elements (as for the float64 route).
"""
from __future__ import annotations

import ctypes
import ctypes.util
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


def call(name: str, numpy_fn, x: np.ndarray) -> np.ndarray:
    """The C library's `name` of each element of the float array `x`, in x's dtype (numpy_fn,
    the same function in numpy, on large arrays or without a C library)."""
    from ._ops import _VIA_FLOAT64_MAX_NUMEL
    x = np.asarray(x)
    if _LIBM is None or x.size > _VIA_FLOAT64_MAX_NUMEL or x.dtype not in (np.float32, np.float64):
        return numpy_fn(x)
    return np.asarray(_function(name, x.dtype)(x), dtype=x.dtype)
