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
  (the tail, and whole loops whose operands are neither contiguous nor one broadcast scalar) with
  its scalar op; the two can round differently, or return different operands of a tie of +0.0
  and -0.0 (`vector_loop_mask` says which element took which).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
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


def _function(name: str, dtype: np.dtype, arity: int = 1):
    """The C function `name` (float64) or `name + "f"` (float32) of `arity` arguments, as a
    numpy ufunc over objects."""
    key = (name, dtype, arity)
    if key not in _FUNCTIONS:
        c_type = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        function = getattr(_LIBM, name + "f" if dtype == np.float32 else name)
        function.restype, function.argtypes = c_type, [c_type] * arity
        _FUNCTIONS[key] = np.frompyfunc(function, arity, 1)
    return _FUNCTIONS[key]


def libm(name: str, numpy_fn, x: np.ndarray, *more) -> np.ndarray:
    """The C library's `name` of each element of the float array `x`, in x's dtype (numpy_fn,
    the same function in numpy, on large arrays or without a C library). `more`: the further
    arguments of a function of several (pow's exponent), Python floats or arrays of x's dtype.

    NOTE: numpy's own float loops are not the C library's where numpy has SIMD builds of them
    (np.power(27.0, 1 / 3) is 2.9999999999999996, C pow gives 3.0)."""
    from ._ops import _VIA_FLOAT64_MAX_NUMEL
    x = np.asarray(x)
    if _LIBM is None or x.size > _VIA_FLOAT64_MAX_NUMEL or x.dtype not in (np.float32, np.float64):
        return numpy_fn(x, *more)
    return np.asarray(_function(name, x.dtype, 1 + len(more))(x, *more), dtype=x.dtype)


def _has_avx512_core() -> bool:
    """Whether the CPU has AVX512 F, BW, VL and DQ (what torch's AVX512 build, MKL's and oneDNN's
    AVX512 code need), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return False
    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags)


_AVX512_CORE = _has_avx512_core()


def _vector_bytes() -> int:
    """The bytes of one vector of torch's kernels on this machine: 64 where it dispatches to its
    AVX512 build (the CPU has AVX512 F, BW, VL and DQ, unless ATEN_CPU_CAPABILITY says
    otherwise), else 32 (AVX2, and the 32-byte Vectorized of its default build)."""
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if capability:
        return 64 if capability == "avx512" else 32
    return 64 if _AVX512_CORE else 32


VECTOR_BYTES = _vector_bytes()
# Where MKL (torch's BLAS) picks its AVX512 code, which signs zeros differently from its AVX2 code
# in places (float64 addmm of an inner size of 1). MKL decides by the CPU, not by ATEN_CPU_CAPABILITY.
# (oneDNN decides for itself: ONEDNN_AVX512.)
AVX512 = _AVX512_CORE


def _onednn_avx512() -> bool:
    """Whether oneDNN (torch's mkldnn: float32 gelu, ...) runs its AVX512 JIT kernels here: the
    CPU has avx512_core (AVX512 F, BW, VL, DQ) and ONEDNN_MAX_CPU_ISA does not cap it lower.
    NOTE: oneDNN picks its ISA itself; ATEN_CPU_CAPABILITY does not reach it."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").lower()
    if cap and not cap.startswith(("avx512", "avx10", "all")):
        return False
    return _AVX512_CORE


ONEDNN_AVX512 = _onednn_avx512()


# NOTE: kernels registered with REGISTER_DISPATCH (not ALSO_REGISTER_AVX512_DISPATCH) have no
# AVX512 variant: on an AVX512 machine torch runs their AVX2 build, with 32-byte vectors (sum,
# maximum, minimum, clamp, clamp_min, clamp_max: seen in tests/engine/test_zero_ties.py).
AVX2_VECTOR_BYTES = min(VECTOR_BYTES, 32)


_ROW_MAJOR_MASKS: dict = {}   # (shape, elements per pair of vectors, two single numbers) -> mask


def vector_loop_mask(*operands: np.ndarray, dtype=None, vector_bytes: int = VECTOR_BYTES,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Where an elementwise `cpu_kernel_vec` over the input arrays `operands` (torch's argument
    order, broadcast together) takes its vector op: a bool array of the broadcast shape (not
    to be written: it may be shared).
    `dtype`: the dtype the kernel computes in (the first operand's by default); `vector_bytes`:
    its vector width (VECTOR_BYTES, or AVX2_VECTOR_BYTES for a kernel without an AVX512 build);
    `out`: the array an in-place op writes into (None: a result TensorIterator allocates).

    NOTE: torch's TensorIterator orders the dims by the operands' strides (`iterator_order`),
    then merges neighbouring dims along which every operand steps evenly (a broadcast operand
    too: stride 0) into one inner loop. The loop is vectorized when every operand steps one
    element along it, or one input is a stride-0 broadcast and the others step one element
    (the output TensorIterator allocates always does); then its first whole multiples of two
    vectors take the vector op, the rest (the tail) the scalar op, and otherwise every element
    takes the scalar op. An input of another dtype is first copied into `dtype` (keeping its
    strides if it is dense, else contiguous); an `out` of another dtype is replaced by a
    contiguous temporary (copied into it after the loop), which then orders the dims. Loops run
    over at most 32768 elements per thread (`_GRAIN_SIZE`); torch with several threads splits
    larger ones mid-row, which is not modelled (the fuzzer runs torch with one thread).
    """
    dtype = np.dtype(dtype if dtype is not None else operands[0].dtype)
    shape = operands[0].shape
    if any(a.shape != shape for a in operands):
        shape = np.broadcast_shapes(*(a.shape for a in operands))
    step = 2 * vector_bytes // dtype.itemsize
    if all(a.size == 1 or (a.shape == shape and a.flags.c_contiguous) for a in operands) and (
            out is None or out.flags.c_contiguous):
        # (the common case: row-major operands of the result's shape and single numbers,
        # walked as one loop, vectorized unless two inputs are single numbers)
        key = (shape, step, sum(a.size == 1 for a in operands) > 1)
        mask = _ROW_MAJOR_MASKS.get(key)
        if mask is None:
            size = math.prod(shape)
            mask = np.zeros(shape, dtype=bool) if size <= 1 or key[2] else (
                np.arange(size) < size - size % step).reshape(shape)
            mask.flags.writeable = False
            if len(_ROW_MAJOR_MASKS) > 256:
                _ROW_MAJOR_MASKS.clear()
            _ROW_MAJOR_MASKS[key] = mask
        return mask
    strides = [iterator_strides(a, shape, dtype) for a in operands]
    if out is not None:
        strides.insert(0, iterator_strides(out if out.dtype == dtype else np.empty(out.shape, dtype), shape, dtype))
    order = iterator_order(shape, strides)            # outermost first
    mask = np.zeros([shape[d] for d in order], dtype=bool)
    if mask.size <= 1:
        return mask.transpose(np.argsort(order))
    # NOTE: TensorIteratorBase::coalesce_dimensions, from the innermost dim while it merges
    length, steps, merged = shape[order[-1]], [s[order[-1]] for s in strides], 1
    for dim in order[-2::-1]:
        if length != 1 and shape[dim] != 1 and any(inner * length != s[dim] for inner, s in zip(steps, strides)):
            break
        if length == 1:
            steps = [s[dim] for s in strides]
        length *= shape[dim]
        merged += 1
    if all(inner == 1 for inner in steps) or (steps.count(0) == 1 and all(inner in (0, 1) for inner in steps)):
        whole = length - length % step
        mask[...] = (np.arange(length) < whole).reshape(mask.shape[mask.ndim - merged:])
    return mask.transpose(np.argsort(order))


def iterator_strides(a: np.ndarray, shape: tuple, dtype: np.dtype | None = None) -> list:
    """The strides (in elements) of the operand `a` in TensorIterator, broadcast to `shape`
    (0 along broadcast dims); `a` cast to `dtype` first if given (see vector_loop_mask)."""
    strides = [s // a.itemsize for s in a.strides]
    if dtype is not None and a.dtype != dtype:
        from ._ops import _non_overlapping_and_dense
        if not _non_overlapping_and_dense(a):
            # NOTE: torch's .to() (empty_like, preserve_format) of a tensor with gaps or overlaps
            # (an expanded one) makes it dense in its own order of dims (infer_dense_strides)
            step = 1
            for d in iterator_order(a.shape, [strides])[::-1]:
                strides[d] = step
                step *= max(a.shape[d], 1)
    pad = len(shape) - a.ndim
    return [0] * pad + [0 if n == 1 and shape[pad + i] != 1 else s for i, (n, s) in enumerate(zip(a.shape, strides))]


def dense_cast(data: np.ndarray, dtype) -> np.ndarray:
    """A copy of `data` in `dtype`, laid out as torch's `.to(dtype)` (preserve_format) lays it out.

    NOTE: numpy's astype (order "K") puts a stride-0 dim innermost; torch's infer_dense_strides
    orders dims by the strides that tell them apart, so a broadcast dim stays where it stands.
    The layout of an elementwise result follows its promoted operands' (campaign seed 13:
    x * int_row.expand(2, 3) was contiguous in torch, column-major in the engine, so its
    contiguous() was a clone).
    """
    if data.ndim < 2 or 0 not in data.strides:
        return data.astype(dtype)
    order = iterator_order(data.shape, [[abs(s) for s in data.strides]])
    out = np.empty([data.shape[d] for d in order], dtype).transpose(np.argsort(order))
    np.copyto(out, data, casting="unsafe")
    return out


def iterator_order(shape: tuple, strides: list, reduction: bool = False) -> list:
    """The dims of an elementwise TensorIterator over operands with these strides (per operand,
    one per dim of `shape`, 0 where broadcast), outermost first. `reduction`: the first operand
    is a reduction's output (stride 0 along the reduced dims), whose reduced dims go innermost.

    NOTE: torch orders the dims by the strides of the first operand that tells two dims apart
    (a broadcast dim tells nothing; equal strides put the smaller dim innermost), by insertion
    sort from the innermost dim (TensorIteratorBase::reorder_dimensions).
    """
    ndim = len(shape)

    def should_swap(dim0: int, dim1: int) -> int:
        for operand in strides:
            stride0, stride1 = operand[dim0], operand[dim1]
            if reduction and operand is strides[0] and (stride0 == 0) != (stride1 == 0):
                return 1 if stride1 == 0 else -1
            if stride0 == 0 or stride1 == 0:
                continue
            if stride0 != stride1:
                return -1 if stride0 < stride1 else 1
            if shape[dim0] > shape[dim1]:
                return 1
        return 0

    perm = list(range(ndim - 1, -1, -1))     # innermost dim first, as torch's perm_
    for i in range(1, ndim):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    return perm[::-1]


# NOTE: torch's full reductions run one loop over at most this many elements; above it its threads
# each sum a part (how many depends on the machine), and the engine's sums are numpy's.
_GRAIN_SIZE = 32768
# NOTE: torch registers its sum kernel without an AVX512 variant (REGISTER_DISPATCH, not
# ALSO_REGISTER_AVX512_DISPATCH): it runs with 32-byte vectors on every x86 machine.
_SUM_VECTOR_BYTES = 32
_SUM_ZERO = {np.dtype(np.float32): np.float32(0), np.dtype(np.float64): np.float64(0)}   # dtypes full_sum covers


def full_sum(x: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """The sum of every element of the float array `x` as torch's cascade_sum adds them (0-d,
    in x's dtype), or None where the engine does not follow its order (see below).

    NOTE: torch walks a dense tensor in memory order as one row. A row of at least one vector
    (8 float32) is summed as vectors: groups of 4 vectors accumulate lane by lane
    into 4 partial vectors (in levels of 16 groups: `multi_row_sum`), the vectors left over go
    into the first, the other three are added to it, then the elements after the last whole
    vector are added in order to 0 and the lanes of the vector in order to that. A shorter row
    is the same with numbers for vectors. Float32 accumulates in float32. Only dense arrays of
    x's own dtype up to _GRAIN_SIZE elements are covered: others are walked as several rows.
    """
    zero = _SUM_ZERO.get(x.dtype)
    if zero is None or x.dtype != dtype or not 0 < x.size <= _GRAIN_SIZE:
        return None
    if x.flags.c_contiguous:
        flat = x.reshape(-1)
    else:
        flat = x.transpose(sorted(range(x.ndim), key=lambda d: -x.strides[d]))
        if not flat.flags.c_contiguous:
            return None
        flat = flat.reshape(-1)
    lanes = _SUM_VECTOR_BYTES // x.itemsize
    whole = flat.size - flat.size % lanes
    if whole < _SHORT_ROW * lanes:
        total = _short_sum(flat, whole, lanes)
        if total == total:
            return np.asarray(zero + total, dtype=x.dtype)
        # NOTE: of two NaNs, an addition of numpy scalars (as the loops below add numbers, and
        # as torch's scalar loops do) returns the second's payload and sign, np.add.accumulate
        # the first's: a NaN sum is computed again by the loops.
    if flat.size < lanes:
        total = _row_sum(flat)
    else:
        vector = _row_sum(flat[:whole].reshape(-1, lanes))
        total = zero
        for value in flat[whole:]:
            total = total + value
        for value in vector:
            total = total + value
    return np.asarray(zero + total, dtype=x.dtype)   # (stored by adding to the zeroed output)


def leading_sum(x: np.ndarray, count: int) -> np.ndarray | None:
    """The sum of the float array `x` over its first `count` dims as torch's cascade_sum adds it
    (x's dtype, the remaining dims' shape), or None where the engine does not follow its order.

    NOTE: torch coalesces the reduced leading dims of a row-major tensor into one of n rows and
    the others into C columns, and sums the columns 4 vectors at a time (vectorized_outer_sum):
    each column's n rows in multi_row_sum's cascade (`_multi_row_sum`), added to the zeroed
    output. Covered: row-major arrays of full_sum's dtypes whose C is a whole number of those
    4-vector groups (torch's threads split the columns at 128-byte boundaries, so the groups,
    and the order, are the same on any number of threads). Elsewhere, in the remaining columns,
    torch sums each column in 4 interleaved partial sums (row_sum): not followed.
    """
    zero = _SUM_ZERO.get(x.dtype)
    if zero is None or not 0 < count < x.ndim or not x.flags.c_contiguous or not x.size:
        return None
    columns = math.prod(x.shape[count:])
    if columns % (4 * _SUM_VECTOR_BYTES // x.itemsize):
        return None
    rows = x.reshape(-1, columns)
    return (zero + _multi_row_sum(rows)).reshape(x.shape[count:])


# Rows of fewer elements (numbers or vectors) than this never move an accumulator of
# multi_row_sum up a level (which happens every 16 groups of 4): `_short_sum`.
_SHORT_ROW = 64


def _short_sum(flat: np.ndarray, whole: int, lanes: int):
    """full_sum's total of a row of fewer than _SHORT_ROW vectors (`whole` elements; numbers
    for a row shorter than one vector), before it is added to the zeroed output, in a few numpy
    calls instead of one per addition: a small tensor's sum() is one of the commonest ops.

    The additions are the loops' (of `full_sum`, `_row_sum` and `_multi_row_sum`), in their
    order, each sequence added by one np.add.accumulate (which adds in order, from the first
    element), but for the zeros the loops start from and add (multi_row_sum's first level is
    the only one here; its upper levels add zeros): x + 0 differs from x only for x = -0.0 (or
    a NaN, which full_sum computes again), and sums of operands that are equal or both zeros
    are equal or both zeros, so the total differs at most in the sign of a zero, which adding
    it to the zeroed output (+0.0) removes."""
    if not whole:
        return _short_row_sum(flat)
    row = _short_row_sum(flat[:whole].reshape(-1, lanes))
    # the numbers after the last whole vector, then the vector's lanes
    return np.add.accumulate(np.concatenate((flat[whole:], row)) if whole < flat.size else row)[-1]


def _short_row_sum(elements: np.ndarray):
    """`_row_sum` of fewer than _SHORT_ROW elements (numbers or vectors), as `_short_sum` says."""
    groups = len(elements) // 4
    if not groups:
        return np.add.accumulate(elements, axis=0)[-1]
    # multi_row_sum: the sums of the groups (rows of 4) for its 4 accumulators
    partial = elements[:4] if groups == 1 else _sum_in_order(
        elements[:groups * 4].reshape((groups, 4) + elements.shape[1:]), 0)
    if len(elements) > groups * 4:
        # the first accumulator, the elements after the last group, the other three
        partial = np.concatenate((partial[:1], elements[groups * 4:], partial[1:]))
    return np.add.accumulate(partial, axis=0)[-1]


def _row_sum(elements: np.ndarray):
    """torch's row_sum: elements (numbers or vectors) in 4 interleaved partial sums (multi_row_sum),
    the ones after the last group of 4 into the first, then the other three added to it."""
    groups = elements.shape[0] // 4
    partial = _multi_row_sum(elements[:groups * 4].reshape((groups, 4) + elements.shape[1:]))
    first = partial[0]
    for element in elements[groups * 4:]:
        first = first + element
    for k in range(1, 4):
        first = first + partial[k]
    return first


def _sum_in_order(a: np.ndarray, axis: int) -> np.ndarray:
    """The sum along `axis` (0 or 1) of a row-major array with further dims after it, added in
    order from the first element along it, as np.add.accumulate(a, axis)[last] adds.

    np.add.reduce over an axis that is not the innermost adds whole rows elementwise in order
    (its pairwise summation is the inner loop's, over the innermost axis only), and does not
    keep the running sums: 8x faster than accumulate on full_sum's (16, 16, 4, 8) level, which
    took ~60 of the ~130 us of a 8,192-element float32 sum(). NOTE: it starts from its identity,
    +0.0, where accumulate starts from the first row: a sum of -0.0 only was +0.0 (torch's vector
    lanes keep -0.0: log_softmax's gradient of a row of -0.0, 16 classes or more, was -0.0 where
    torch's is +0.0). It starts from -0.0 instead, which adds to any x as x."""
    if a.ndim > axis + 1 and a.flags.c_contiguous and math.prod(a.shape[axis + 1:]) > 1:
        return np.add.reduce(a, axis=axis, initial=-0.0) if a.dtype.kind == "f" else np.add.reduce(a, axis=axis)
    return np.add.accumulate(a, axis=axis)[(slice(None),) * axis + (-1,)]


def _multi_row_sum(rows: np.ndarray) -> np.ndarray:
    """torch's multi_row_sum over rows (size, 4, ...): 4 levels of accumulators; every 16 rows the
    first moves up into the next, and further up at every 16**j rows (level_power is 4 below
    2**20 rows); at the end the others are added to the first.

    Computed level by level rather than row by row: level 0's moves are the sums of each 16
    rows, level 1's the sums of each 16 of those, and so on; each level's last, incomplete group
    is what its accumulator holds at the end. The top level never moves up. Every sum adds in
    the loop's order, so the result is the loop's bit for bit.

    NOTE: the loop's accumulators start at +0.0, and the sums here from their first row: adding
    zeros (an accumulator's start, an empty level, a sum moved up) changes no sum but for the
    sign of a zero, and sums of operands equal or both zeros are equal or both zeros (a NaN keeps
    its payload: x + 0 is x); so the zeros are added once, to the total, which that makes the
    loop's bit for bit (+0.0 where the loop's is, as the loop's total is a sum with +0.0)."""
    levels, step = 4, 16
    total = None
    moved = rows                 # what reaches the current level
    for level in range(levels):
        size = moved.shape[0]
        whole = size - size % step if level < levels - 1 else 0
        # the accumulator at the end: the rows after its last move up, added in order (one
        # reduce from the first row)
        rest = moved[whole:] if whole else moved
        if len(rest):
            held = rest[0] if len(rest) == 1 else _sum_in_order(rest, 0)
            total = held if total is None else total + held
        if not whole:
            break
        # NOTE: accumulate adds in order (a reduce may add pairwise)
        moved = _sum_in_order(moved[:whole].reshape((-1, step) + moved.shape[1:]), 1)
    zero = np.zeros(rows.shape[1:], rows.dtype)
    return zero if total is None else zero + total
