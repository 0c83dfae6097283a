"""y += alpha * x rounded once per element, by numpy's own BLAS (OpenBLAS's axpy), where it is.

torch's `add(x, y, alpha=a)` (the optimizers' step) is one fused multiply-add per element. numpy
has no fused multiply-add; `_ops._fma` computes one exactly from several numpy passes. The BLAS
numpy is linked against has `?axpy` (y += alpha * x), and OpenBLAS's kernels for CPUs with FMA
compute it with one FMA instruction per element: the same rounding as torch's kernel, in one
pass. Not everywhere: their scalar tail (OpenBLAS's Haswell saxpy: the last n % 32 elements) is
`y[i] += da * x[i]`, rounded twice, and a BLAS without FMA kernels rounds twice throughout. So
`fused` runs the BLAS on a head of the arrays only (`head`: a multiple of `_UNIT` elements,
whole kernel blocks), in calls OpenBLAS runs on one thread, and only after a self-check
(`_self_check`) found the BLAS to round once on hard cases (halfway and subnormal sums); the
rest (fewer than `_UNIT` elements) goes through one more whole block, padded (`fused_rest`).

A NaN result is the product's NaN where the product is a NaN, as torch's (an FMA instruction
may return its addend's: the self-check would then refuse the BLAS).

Found through ctypes in numpy's wheel (`numpy.libs`, the `scipy_openblas` build); elsewhere, or
where the self-check fails, `head` is 0 and the engine computes as before (under valgrind, whose
FMA rounds twice, it fails: callgrind cannot measure this path).
``ENGINE_BLAS_AXPY=0`` turns it off.
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

# Elements per kernel block the head is a multiple of: OpenBLAS's AVX2 saxpy and daxpy loop over
# 32 and 16 elements, its AVX512 ones over 64 and 32 (twice that, to be safe).
_UNIT = 128
# Elements per call (a multiple of _UNIT): OpenBLAS runs axpy on one thread up to 10,000 elements
# (interface/axpy.c), on its threads above; a thread's part would end in the scalar tail, and its
# threads, asleep or preempted on a busy machine, made a 200K-element call take 0.3-5 ms instead of
# 0.03 (this project's 2-CPU machine at load 2.5). A call costs ~2 us.
_CHUNK = 78 * _UNIT

_lock = threading.Lock()
_library = None        # axpy by dtype once loaded, False where there is none
_checked: dict = {}    # dtype -> whether the BLAS rounded once on the hard cases


def _load():
    if os.environ.get("ENGINE_BLAS_AXPY", "1") == "0":
        return False
    here = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(here, "numpy.libs", "libscipy_openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix, int_type in (("64_", ctypes.c_int64), ("", ctypes.c_int)):
            try:
                saxpy, daxpy = (getattr(lib, f"scipy_cblas_{p}axpy{suffix}") for p in "sd")
            except AttributeError:
                continue
            for function, c_type in ((saxpy, ctypes.c_float), (daxpy, ctypes.c_double)):
                function.restype = None
                function.argtypes = [int_type, c_type, ctypes.c_void_p, int_type, ctypes.c_void_p, int_type]
            _kernels.update(_core_kernels(lib))
            return {np.dtype(np.float32): saxpy, np.dtype(np.float64): daxpy}
    return False


# The x86-64 cores whose kernels a DYNAMIC_ARCH OpenBLAS exports as `?axpy_k_<CORE>` next to its table of
# them, `gotoblas_<CORE>`.
_CORES = ("HASWELL", "SKYLAKEX", "ZEN", "COOPERLAKE", "SAPPHIRERAPIDS", "SANDYBRIDGE", "NEHALEM", "PRESCOTT")

_kernels: dict = {}    # dtype -> OpenBLAS's own axpy kernel of the core it runs on, found at load
_whole: dict = {}      # dtype -> that kernel, where it passed the self-check (`fused` calls it once)


def _core_kernels(lib) -> dict:
    """OpenBLAS's axpy kernels of the core it chose at load (`gotoblas` points to that core's table),
    as functions of (n, alpha, x, incx, y, incy) like cblas's: one call for any length, on the calling
    thread, where cblas's axpy splits a call of more than 10,000 elements over its threads. {} where the
    library has no such symbols (another build, another CPU family)."""
    try:
        table = ctypes.c_void_p.in_dll(lib, "gotoblas").value
    except ValueError:
        return {}
    for core in _CORES:
        try:
            if ctypes.addressof(ctypes.c_char.in_dll(lib, f"gotoblas_{core}")) != table:
                continue
        except ValueError:
            continue     # (not a core of this build)
        try:
            kernels = {}
            for prefix, dtype, c_type in (("s", np.float32, ctypes.c_float), ("d", np.float64, ctypes.c_double)):
                # int ?axpy_k(BLASLONG n, BLASLONG, BLASLONG, FLOAT alpha, FLOAT *x, BLASLONG incx, FLOAT *y,
                #             BLASLONG incy, FLOAT *, BLASLONG)   (OpenBLAS's kernel/x86_64/?axpy.c)
                kernel = getattr(lib, f"{prefix}axpy_k_{core}")
                kernel.restype = ctypes.c_int
                kernel.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, c_type, ctypes.c_void_p,
                                   ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
                kernels[np.dtype(dtype)] = (lambda kernel: lambda n, alpha, x, incx, y, incy:
                                            kernel(n, 0, 0, alpha, x, incx, y, incy, None, 0))(kernel)
            return kernels
        except (ValueError, AttributeError):
            return {}
    return {}


def _hard_cases(dtype, n: int):
    """x, alpha, y of `dtype` where y + alpha * x rounded twice (the product first, or the sum in
    a wider type) is not rounded once: halfway sums in every third element, subnormal ones in
    every third from 1 on, the rest random; at both ends and in the middle a NaN x with another
    NaN y, and zeros."""
    rng = np.random.default_rng(n)
    bits = np.finfo(dtype).nmant + 1   # 24 or 53
    u = 2.0 ** -(bits - 1)
    alpha = 1 - u
    k = rng.integers(-60, 60, n).astype(np.float64)
    y = rng.standard_normal(n)
    x = rng.standard_normal(n)
    # y + alpha x with y = (1 + u) 2**k, x = -(1 + u) 2**(k - bits): the exact sum is just above
    # the halfway point below y, (1 + u / 2) 2**k; the product rounded first (or the sum rounded
    # to float64) lands on it, and rounding to even goes down.
    y[0::3] = (1 + u) * 2.0 ** k[0::3]
    x[0::3] = -(1 + u) * 2.0 ** (k[0::3] - bits)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    y[1::3] = rng.integers(-600, 600, y[1::3].size) * tiny
    x[1::3] = rng.standard_normal(x[1::3].size) * tiny * 2.0 ** 10
    x, y = x.astype(dtype), y.astype(dtype)
    nans = (np.array([0x7FC00001, 0xFFC12345], np.uint32) if dtype == np.float32 else
            np.array([0x7FF8000000000001, 0xFFF8000000012345], np.uint64)).view(dtype)
    for at in (1, n // 2, n - 2):
        # NOTE: torch's fused multiply-add returns the product's NaN where the addend is a NaN too
        x[at], y[at] = nans
        x[at + 1], y[at + 1] = dtype.type(-0.0 if at % 2 else 0.0), dtype.type(-0.0)
    return x, float(dtype.type(alpha)), y


def _exact(x, alpha, y, dtype) -> np.ndarray:
    """y + alpha * x rounded once, in Python's exact fractions, and a NaN x's NaN (the self-check's
    reference)."""
    from fractions import Fraction
    out = np.empty(y.shape, dtype)
    a = Fraction(alpha)
    for i, (u, v) in enumerate(zip(x.tolist(), y.tolist())):
        if u != u:
            out[i] = x[i]
            continue
        exact = a * Fraction(u) + Fraction(v)
        if exact == 0:
            out[i] = x[i] * dtype.type(alpha) + y[i]   # (an exact zero: its sign)
            continue
        near = dtype.type(float(exact))   # (rounded at most twice: one unit off at most)
        candidates = [near, np.nextafter(near, dtype.type(np.inf)), np.nextafter(near, dtype.type(-np.inf))]
        out[i] = min(candidates, key=lambda f: (abs(Fraction(float(f)) - exact),
                                                int(np.asarray(f).view(np.int32 if dtype == np.float32 else np.int64))
                                                & 1))
    return out


def _self_check(axpy, dtype) -> bool:
    """Whether `axpy` rounds once on hard cases and returns a NaN product's NaN, on its largest
    calls (`_CHUNK`) and small ones."""
    with np.errstate(all="ignore"):
        for n in (_UNIT, _CHUNK):
            x, alpha, y = _hard_cases(dtype, n)
            got = y.copy()
            axpy(n, alpha, x.ctypes.data, 1, got.ctypes.data, 1)
            # (the exact reference on a sample: all of a small call, the middle and end of a large one)
            sample = np.unique(np.clip(np.add.outer([n // 2, n], np.arange(-_UNIT // 2, _UNIT // 2)), 0, n - 1))
            if got[sample].tobytes() != _exact(x[sample], alpha, y[sample], dtype).tobytes():
                return False
    return True


def usable(dtype: np.dtype) -> bool:
    """Whether the BLAS's axpy of `dtype` is there and passed the self-check (`fused`, `fused_rest`)."""
    global _library
    ok = _checked.get(dtype)
    if ok is not None:
        return ok
    if _library is None:
        with _lock:
            if _library is None:
                _library = _load()
    if not _library:
        return False
    axpy = _library.get(dtype)
    with _lock:
        ok = axpy is not None and _self_check(axpy, dtype)
        kernel = _kernels.get(dtype)
        if ok and kernel is not None and _self_check(kernel, dtype):
            _whole[dtype] = kernel
        _checked[dtype] = ok
    return ok


def head(dtype: np.dtype, n: int) -> int:
    """How many of `n` elements of `dtype` (the first ones) `fused` computes rounded once; 0: none."""
    if n < _UNIT or not usable(dtype):
        return 0
    return n - n % _UNIT


def fused(alpha: float, x: np.ndarray, y: np.ndarray, k: int) -> None:
    """y[:k] += alpha * x[:k], each element rounded once, by the BLAS; k from `head(y.dtype, y.size)`.

    `x`, `y`: 1-d row-major arrays of one float dtype and size, not overlapping; `alpha` a
    nonzero number (OpenBLAS's axpy returns y unchanged for alpha 0, where a fused multiply-add
    makes -0.0 + 0 * x +0.0 and inf * 0 NaN). The caller computes y[k:].
    Called `_CHUNK` elements at a time: each call on one thread; or, where OpenBLAS's own kernel
    passed the self-check too (`_core_kernels`), that kernel once (one call of ~1-2 us instead of one
    per `_CHUNK`: W3's SGD step of a 200,704-element weight, 20 calls).
    """
    whole = _whole.get(y.dtype)
    if whole is not None:
        whole(k, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
        return
    axpy = _library[y.dtype]
    step = _CHUNK * y.itemsize
    x_at, y_at = x.ctypes.data, y.ctypes.data
    for start in range(0, k * y.itemsize, step):
        axpy(min(_CHUNK, k - start // y.itemsize), alpha, x_at + start, 1, y_at + start, 1)



_blocks = threading.local()   # per thread and dtype: two arrays of _UNIT elements and their addresses


def fused_rest(alpha: float, x: np.ndarray, y: np.ndarray, k: int) -> None:
    """y[k:] += alpha * x[k:], each element rounded once, by the BLAS: the fewer than `_UNIT`
    elements `fused` leaves (all of a small array), copied into the head of one whole kernel block
    of the thread's own (the rest of the block holds earlier values, computed and not read).
    Where `usable(y.dtype)`; `x`, `y` and `alpha` as for `fused`.

    NOTE: the BLAS's own scalar tail rounds twice; a whole block runs in its vector loop, which the
    self-check tested on calls of `_UNIT` elements. One call instead of the dozen numpy passes of
    the exact float64 computation: an SGD step of a 10-element bias 34 -> 6 us (at load 9).
    """
    dtype = y.dtype
    blocks = getattr(_blocks, "by_dtype", None)
    if blocks is None:
        blocks = _blocks.by_dtype = {}
    block = blocks.get(dtype)
    if block is None:
        arrays = np.zeros(_UNIT, dtype), np.zeros(_UNIT, dtype)
        block = blocks[dtype] = (*arrays, *(a.ctypes.data for a in arrays))
    block_x, block_y, x_at, y_at = block
    m = y.size - k
    block_x[:m] = x[k:]
    block_y[:m] = y[k:]
    _library[dtype](_UNIT, alpha, x_at, 1, y_at, 1)
    y[k:] = block_y[:m]
