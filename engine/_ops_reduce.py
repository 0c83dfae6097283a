"""Ops of the `engine/_ops_reduce.py` section of the op table (see engine/optable.py).

Each public function here is one op: it computes with numpy and calls
`record(rule, inputs, result, dtype, **saved_values)`; its `Rule` is defined
next to it. See `engine/_ops.py` for the conventions rules follow.

Reductions over `dims` keep `keep_shape` (the input's shape with 1 at each
reduced dim) in their context: a rule reshapes the incoming gradient (and a
saved result) to it, so broadcasting against the input puts the reduced dims
back (torch's `unsqueeze_multiple` / `restore_reduced_dims`).
"""
from __future__ import annotations

import builtins
import math
import numbers
import warnings

import numpy as np

from . import _args, _cpu, _dtype, _memory, _sum_order, optable
from ._ops import (_F32, _F64, _LARGE, _ONE, Rule, _check_tensor, _errstate, _float_dtype, _np_exp, _reduction_dims,
                   _rounded, mean, record, save_for_backward, sum as _sum, v_data, v_exp, v_expand, v_masked_fill,
                   v_reshape, v_where)
from ._ops_pointwise import abs as _abs, v_sign
from ._ops_shape import cat, _contiguous_array, narrow, stack
from ._tensor import Tensor, _wrap_dim

# ---------------------------------------------------------------------------------
# Value helpers for the rules below (numpy arrays in a plain backward, tensors with create_graph)
# ---------------------------------------------------------------------------------


def v_const(array, like):
    """A constant (mask, count) in the kind of `like`: a tensor of its dtype, or an array."""
    if isinstance(like, Tensor):
        return Tensor._make(np.asarray(array, dtype=like.dtype.np), like.dtype)
    return np.asarray(array, dtype=np.result_type(like))


def v_mean_keep(x, axes):
    """Mean over `axes` keeping them (over everything, as a 0-d value, for None)."""
    if isinstance(x, Tensor):
        return mean(x) if axes is None else mean(x, axes, keepdim=True)
    return _np_mean(x) if axes is None else _np_mean(x, axes, keepdims=True)


def _np_mean(x: np.ndarray, axis=None, keepdims: bool = False):
    """np.mean's arithmetic (sum / count) without its "Mean of empty slice" warning: a mean of
    nothing is NaN, silently, as in torch."""
    count = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)], dtype=np.int64))
    with _errstate():
        # NOTE: torch's mean divides its sum, added in torch's order (`_sum_order`)
        total = _sum_order.ordered_sum(x, None if axis is None else tuple(int(a) % x.ndim for a in np.atleast_1d(axis)),
                                       keepdims)
        return np.true_divide(total, count)


def v_cumsum(x, dim: int):
    return cumsum(x, dim) if isinstance(x, Tensor) else _accumulated(_np_cumsum, x, dim)


def _np_cumsum(x: np.ndarray, axis: int) -> np.ndarray:
    """np.cumsum, with torch's signed zeros. NOTE: torch's kernel starts its running sum at
    +0, so a run of -0.0 sums to +0.0 (numpy keeps -0.0); adding +0 changes nothing else."""
    return np.cumsum(x, axis=axis) + 0


def _accumulated(fn, x: np.ndarray, dim: int) -> np.ndarray:
    """np.cumsum or np.cumprod along `dim` as torch's CPU kernels compute them (and cumsum and
    cumprod below): float32 accumulated in double, each output rounded once."""
    if x.dtype == np.float32:
        return fn(x.astype(np.float64), axis=dim).astype(np.float32)
    return fn(x, axis=dim)


def v_flip(x, dim: int):
    return _flip(x, dim) if isinstance(x, Tensor) else np.flip(x, axis=dim)


def v_abs(x):
    """|x|; of a Tensor, torch's abs (AbsBackward0 under create_graph, as torch's formulas)."""
    return _abs(x) if isinstance(x, Tensor) else np.abs(x)


_FLIP = Rule("FlipBackward0", lambda ctx, g: (v_flip(g, ctx.dim),))


def _flip(t: Tensor, dim: int) -> Tensor:
    return record(_FLIP, (t,), np.flip(t._data, axis=dim).copy(), t.dtype, dim=dim)


def _reversed_cumsum(g, dim: int):
    """sum_{j >= i} g_j along `dim` (torch's reversed_cumsum: flip, cumsum, flip)."""
    return v_flip(v_cumsum(v_flip(g, dim), dim), dim)


def _prod_safe_zeros_backward(g, x, dim: int):
    """g times prod_{j != k} x_j along `dim`, for every k: the gradient of a product with zeros
    in it; g itself along a dim of size 1 (as torch's prod_safe_zeros_backward)."""
    return g if np.shape(x)[dim] == 1 else g * _exclusive_prod(x, dim)


def _exclusive_prod(x, dim: int):
    """prod_{j != k} x_j along `dim`, for every k.

    NOTE: as torch's prod_safe_zeros_backward, the product of two shifted cumprods (of
    [1, x_0 .. x_{n-2}] and of the flipped [1, x_{n-1} .. x_1], flipped back): with a graph
    those ops are its nodes, whose derivatives decide a second-order gradient's NaNs and zeros.
    """
    n = np.shape(x)[dim]
    ones = v_const(np.ones(np.shape(x)[:dim] + (1,) + np.shape(x)[dim + 1:], v_data(x).dtype), x)
    if isinstance(x, Tensor):
        normal = cumprod(cat([ones, narrow(x, dim, 0, n - 1)], dim), dim)
        reverse = _flip(cumprod(cat([ones, _flip(narrow(x, dim, 1, n - 1), dim)], dim), dim), dim)
        return normal * reverse
    # (cumprod as the engine's op computes it: float32 products accumulated in double, as torch's)
    normal = _accumulated(np.cumprod, np.concatenate([ones, np.take(x, range(n - 1), axis=dim)], dim), dim)
    reverse = np.flip(_accumulated(np.cumprod, np.concatenate([ones, np.flip(np.take(x, range(1, n), axis=dim), dim)],
                                                              dim), dim), dim)
    with _errstate():
        return normal * reverse


# ---------------------------------------------------------------------------------
# Shared argument handling
# ---------------------------------------------------------------------------------

_NO_DIM = object()   # an omitted `dim` where torch refuses an explicit None


def _axes(dims, ndim: int) -> tuple:
    return tuple(range(ndim)) if dims is None else dims


def _keep_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _unsqueeze_to(x, keep_shape: tuple):
    """A reduced gradient or result reshaped to keep_shape, so it broadcasts against the input."""
    return x if np.shape(x) == keep_shape else v_reshape(x, keep_shape)


def _check_int_dim(op: str, dim, position: int = 1):
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}(): argument 'dim' (position {position}) must be int, not {type(dim).__name__}")


def _check_nonempty(op: str, x: np.ndarray, dims):
    """torch's errors for reductions without an identity (max, amin, argmax, ...) on empty input."""
    if dims is None:
        if x.size == 0:
            raise (IndexError if op in ("argmax", "argmin") else RuntimeError)(
                f"{op}(): Expected reduction dim to be specified for input.numel() == 0."
                + ("" if op in ("argmax", "argmin") else
                   " Specify the reduction dim with the 'dim' argument."))
        return
    for d in dims:
        if x.ndim and x.shape[d] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")


def _result_dtype(op: str, input: Tensor, dtype):
    """The dtype of a sum-like op (prod, cumsum, cumprod): int64 for integral input, or `dtype`."""
    if dtype is None:
        return input.dtype if input.dtype.is_floating_point else _dtype.int64
    if not isinstance(dtype, _dtype.dtype):
        raise TypeError(f"{op}(): argument 'dtype' must be torch.dtype, not {type(dtype).__name__}")
    return dtype


# ---------------------------------------------------------------------------------
# prod
# ---------------------------------------------------------------------------------

def _prod_backward(ctx, g):
    x = ctx.self
    if np.ndim(x) == 0:
        return (g,)
    zeros = v_data(x) == 0
    if ctx.dim is None and zeros.any():
        # NOTE: torch's prod_backward returns zeros for several zeros in a full product when
        # not recording the backward (even where an inf in the input makes the product
        # of the others nan), and else the products of the others over the flattened input,
        # viewed as the input (its node, ViewBackward0, is the gradient's).
        if zeros.sum() > 1 and not isinstance(g, Tensor):
            return (np.zeros(np.shape(x), dtype=np.result_type(g)),)
        return (v_reshape(_prod_safe_zeros_backward(g, v_reshape(x, (-1,)), 0), np.shape(x)),)
    g = _unsqueeze_to(g, ctx.keep_shape)
    if not zeros.any():
        return (g * (_unsqueeze_to(ctx.result, ctx.keep_shape) / x),)
    return (_prod_safe_zeros_backward(g, x, ctx.dim),)


_PROD_ALL = Rule("ProdBackward0", _prod_backward, saves={"self": None, "result": None})
_PROD_DIM = Rule("ProdBackward1", _prod_backward, saves={"self": None, "result": None})


def prod(input, dim=_NO_DIM, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product of all elements, or along one dim (torch.prod; `dim` is one int)."""
    _check_tensor(input, "prod")
    x = input._data
    dims = None if dim is _NO_DIM else (_wrap_dim(dim, x.ndim),)
    dt = _result_dtype("prod", input, dtype)
    axes = _axes(dims, x.ndim) if x.ndim else ()
    with _errstate():
        data = np.prod(x.astype(dt.np), axis=axes, keepdims=keepdim and dims is not None)
    # NOTE: as torch, an integral result (dtype=torch.int64, or an int64 input an in-place op
    # left in a graph) of an input that requires grad is refused: "Autograd not support dtype".
    return record(_PROD_ALL if dims is None else _PROD_DIM, (input,), data, dt,
                  dim=None if dims is None or not x.ndim else dims[0], keep_shape=_keep_shape(x.shape, axes))


# ---------------------------------------------------------------------------------
# amax, amin, max, min, argmax, argmin
# ---------------------------------------------------------------------------------

def _amax_backward(ctx, g):
    # NOTE: torch's scale_grad_by_count splits the gradient evenly among ties, as
    # (g / count) * mask; a NaN extreme matches nothing, so every gradient is nan (g / 0 * 0).
    g = _unsqueeze_to(g, ctx.keep_shape)
    x, result = v_data(ctx.self), np.reshape(v_data(ctx.result), ctx.keep_shape)
    mask = x == result
    with _errstate():
        if (type(g) is np.ndarray and x.size >= _LARGE and x.flags.c_contiguous
                and x.size // result.size < _EXACT_COUNTS.get(g.dtype, 0)):
            return (_scale_by_count(g, mask, result, ctx.axes),)
        count = mask.sum(axis=ctx.axes, keepdims=True)
        return ((g / v_const(count, g)) * v_const(mask, g),)


# Float dtypes in which counting ones gives every count below this exactly.
_EXACT_COUNTS = {_F32: 1 << 24, _F64: 1 << 53}


def _scale_by_count(g: np.ndarray, mask: np.ndarray, result: np.ndarray, axes: tuple) -> np.ndarray:
    """(g / count) * mask for a large row-major mask, as _amax_backward computes it, in fewer
    passes: the mask converted once into the result's (recycled) memory, the count summed from
    that, and the product written over it. Where every extreme is matched once (as many matches
    as extremes, and none is NaN, which matches nothing), g is divided by 1 without a count."""
    out = _memory.empty(mask.shape, g.dtype)
    np.copyto(out, mask)
    if not builtins.any(g.strides):
        # One value everywhere (the gradient of amax(...).sum()): multiplied as one value, the
        # product runs as one long loop rather than one short loop per row of the mask.
        g = g[(slice(0, 1),) * g.ndim]
    if np.count_nonzero(mask) == result.size and not np.isnan(result).any():
        count = _ONE[g.dtype]
    else:
        count = np.add.reduce(out, axis=axes, keepdims=True)
    return np.multiply(g / count, out, out=out)


_AMAX = Rule("AmaxBackward0", _amax_backward, saves={"self": None, "result": None})
_AMIN = Rule("AminBackward0", _amax_backward, saves={"self": None, "result": None})


def _np_extreme(x: np.ndarray, axes: tuple, keepdims: bool, is_max: bool, last: bool = False) -> np.ndarray:
    """np.amax or np.amin, with torch's sign for a zero extreme: the first zero's (the last's
    with `last`).

    NOTE: torch's amax/amin kernels keep their running extreme on a tie, so of tied 0.0 and
    -0.0 the first read wins (in memory order), and its max()/min() of all elements takes the
    later one; a later sign-sensitive op such as atan2 or a division shows it (fuzzer
    finding), and numpy's SIMD loop may pick either. torch's vectorized loops, used from four
    vectors' worth of elements, keep the later zero in their lanes and combine the lanes in
    their own order: followed for AVX2 (`_vectorized_rows_zero`, `_later_zero_columns`), in the
    memory order of a contiguous or transposed input.
    """
    if not x.flags.c_contiguous and x.ndim > 1 and not last and axes:
        # A permuted contiguous array (a transpose): torch's iterator reads it in memory order, if its
        # kept dims lie in memory in their own order (the result's, which is contiguous); otherwise
        # it reads the result's order, one element at a time (the first zero in memory order, below).
        order = sorted(range(x.ndim), key=lambda a: -abs(x.strides[a]))
        permuted = np.transpose(x, order)
        kept = [a for a in order if a not in axes and x.shape[a] > 1]
        if permuted.flags.c_contiguous and kept == sorted(kept):
            data = _np_extreme(permuted, tuple(sorted(order.index(a) for a in axes)), True, is_max)
            data = np.transpose(data, np.argsort(order))
            return data if keepdims else np.squeeze(data, axis=axes)
    data = _folded_extreme(x, axes, is_max)
    if data is None:
        data = (np.amax if is_max else np.amin)(x, axis=axes, keepdims=True)
    if x.dtype.kind == "f" and (data == 0).any():
        rest = [a for a in range(x.ndim) if a not in axes]
        read = sorted(axes, key=lambda a: -abs(x.strides[a]))   # outermost in memory first
        slices = np.transpose(x, rest + read).reshape(tuple(x.shape[a] for a in rest) + (-1,))
        later = None if last else _later_zero_columns(x, axes, data.shape)
        if last:
            slices = slices[..., ::-1]
        first = np.take_along_axis(slices, np.argmax(slices == 0, axis=-1)[..., None], axis=-1).reshape(data.shape)
        if later is not None:
            flipped = slices[..., ::-1]
            final = np.take_along_axis(flipped, np.argmax(flipped == 0, axis=-1)[..., None], axis=-1)
            first = np.where(later, final.reshape(data.shape), first)
        elif not last:
            vectorized = _vectorized_rows_zero(x, axes, slices, is_max)
            if vectorized is not None:
                first = vectorized.reshape(data.shape)
        data = np.where(data == 0, first, data)
    return data if keepdims else np.squeeze(data, axis=axes)


def _innermost(x: np.ndarray) -> int:
    """x's last dim of more than one element (TensorIterator drops dims of size 1), or -1."""
    return next((a for a in reversed(range(x.ndim)) if x.shape[a] > 1), -1)


def _vectorized_rows_zero(x: np.ndarray, axes: tuple, slices: np.ndarray, is_max: bool):
    """The zero torch's amax/amin keep of a +-0 tie where they reduce the last dim in vectors (None
    where they do not); ``slices``: x's reduced elements of each result in a row, in memory order.

    NOTE: torch's vectorized inner reduction (aten/src/ATen/native/cpu/Reduce.h) reads each row
    (the trailing reduced dims; rows of other reduced dims one after another) from 4 vectors' worth
    of elements on (16 float64 or 32 float32 on AVX2) in chunks of four vectors. Each of those
    lanes keeps a running extreme over its chunks (the SIMD max/min returns its second operand on a
    tie: the later zero), the four vectors are combined as max(max(v0, v1), max(v2, v3)) (the second
    operand on a tie again), then their lanes one by one keeping the first, and the elements after
    the last whole chunk are read one by one, keeping the running extreme: of all these in turn,
    and of the rows in turn, the first zero read is kept (tests/engine/test_zero_ties.py)."""
    if (not axes or _innermost(x) not in axes or not x.flags.c_contiguous or x.dtype not in (_F32, _F64)
            or _cpu.VECTOR_BYTES != 32 or x.size > _cpu._GRAIN_SIZE or not x.size):
        return None
    lanes = _cpu.VECTOR_BYTES // x.itemsize
    chunk = 4 * lanes
    row = 1   # the trailing reduced dims (TensorIterator drops dims of size 1 and coalesces the rest)
    for a in reversed(range(x.ndim)):
        if x.shape[a] == 1:
            continue
        if a not in axes:
            break
        row *= x.shape[a]
    if row < chunk:
        return None
    outputs = slices.shape[:-1]
    rows = slices.reshape(-1, slices.shape[-1] // row, row)
    chunks = row // chunk
    vectors = rows[:, :, :chunks * chunk].reshape(rows.shape[0], rows.shape[1], chunks, chunk)
    extreme = vectors.max(axis=2) if is_max else vectors.min(axis=2)
    zero_lane = extreme == 0
    last_zero = chunks - 1 - np.argmax(vectors[:, :, ::-1] == 0, axis=2)
    lane_sign = np.signbit(np.take_along_axis(vectors, last_zero[:, :, None], axis=2)[:, :, 0])
    z, sign = zero_lane.reshape(*zero_lane.shape[:2], 4, lanes), lane_sign.reshape(*lane_sign.shape[:2], 4, lanes)

    def vector_op(a: int, b: int) -> tuple:   # (the second operand on a tie)
        return z[:, :, a] | z[:, :, b], np.where(z[:, :, b], sign[:, :, b], sign[:, :, a])
    (z01, s01), (z23, s23) = vector_op(0, 1), vector_op(2, 3)
    combined_zero, combined_sign = z01 | z23, np.where(z23, s23, s01)
    vector_has = combined_zero.any(axis=-1)
    vector_sign = np.take_along_axis(combined_sign, np.argmax(combined_zero, axis=-1)[..., None], axis=-1)[..., 0]
    tail = rows[:, :, chunks * chunk:]
    tail_zero = tail == 0
    tail_sign = (np.signbit(np.take_along_axis(tail, np.argmax(tail_zero, axis=-1)[..., None], axis=-1)[..., 0])
                 if tail.shape[-1] else np.zeros(vector_has.shape, bool))
    row_has = vector_has | tail_zero.any(axis=-1)
    row_sign = np.where(vector_has, vector_sign, tail_sign)
    kept = np.take_along_axis(row_sign, np.argmax(row_has, axis=-1)[:, None], axis=-1)[:, 0]
    return np.where(kept, -0.0, 0.0).astype(x.dtype).reshape(outputs)


def _later_zero_columns(x: np.ndarray, axes: tuple, shape: tuple):
    """Where torch's amax/amin over outer dims keep the later zero of a +-0 tie (None: nowhere).

    NOTE: reducing adjacent dims before the last of a contiguous input, torch's vectorized outer
    reduction (aten/src/ATen/native/cpu/Reduce.h) runs over the contiguous block of the dims after
    the last reduced one in chunks of four vectors (16 float64 or 32 float32 columns on AVX2),
    where the SIMD max/min returns its second operand on a tie: the later zero. The columns after
    the last whole chunk are reduced one by one, keeping the running extreme: the first zero
    (campaign seed 26: amax(dim=0) of a (4, 4, 4) float64 input; tests/engine/test_zero_ties.py)."""
    if (not axes or _innermost(x) in axes or not x.flags.c_contiguous or x.dtype not in (_F32, _F64)
            or _cpu.VECTOR_BYTES != 32 or x.size > _cpu._GRAIN_SIZE):
        return None
    reduced = sorted(a for a in axes if x.shape[a] > 1)   # (TensorIterator drops dims of size 1)
    if not reduced:
        return None
    inner = reduced[-1] + 1
    if [a for a in range(reduced[0], inner) if a not in axes and x.shape[a] > 1]:
        return None   # reduced dims apart (a kept one between): torch's scalar loop, the first zero
    block = math.prod(x.shape[inner:])
    chunk = 4 * _cpu.VECTOR_BYTES // x.itemsize
    vectorized = block // chunk * chunk
    if not vectorized:
        return None
    return (np.arange(block) < vectorized).reshape(shape[inner:])


def _all_extreme(x: np.ndarray, is_max: bool) -> np.ndarray:
    """max() or min() of every element, with the zero torch's vectorized all-reduction keeps.

    NOTE: torch's max_all/min_all (ReduceAllOpsKernel.cpp) read the contiguous input in vectors
    of `lanes` elements: each lane keeps a running extreme over the elements at its index modulo
    `lanes` (the tail included), and on a tie of 0.0 and -0.0 the SIMD max/min returns its second
    operand, the later element. The lanes are then combined: float32 by halving (AVX2's shuffle
    tree: lane i with lane i + 4, then i + 2, then i + 1), float64 one lane after another, the
    later winning a tie again. Under one vector's worth the elements are folded one by one (the
    later zero wins). Checked against torch 2.13 on AVX2 for every length up to 100 (a campaign
    finding: max() of [0.0, ..., -0.0, ...] is 0.0 in torch). Beyond one thread's grain, torch
    combines per-thread results, and AVX512 has other lanes: those keep the later zero.
    """
    data = _np_extreme(x, tuple(range(x.ndim)), False, is_max, last=True)
    if data != 0 or x.dtype not in (_F32, _F64) or x.size > _cpu._GRAIN_SIZE:
        return data
    flat = x.reshape(-1)   # C order: torch reduces input.contiguous()
    lanes = _cpu.VECTOR_BYTES // x.itemsize
    if x.size < lanes:
        return np.asarray(flat[np.flatnonzero(flat == 0)[-1]], x.dtype)
    if _cpu.VECTOR_BYTES != 32:
        return data
    kept = []
    for lane in range(lanes):
        run = flat[lane::lanes]
        extreme = run.max() if is_max else run.min()
        kept.append(run[np.flatnonzero(run == extreme)[-1]])
    better = (lambda a, b: a > b) if is_max else (lambda a, b: a < b)
    if x.dtype == _F32:
        while len(kept) > 1:
            half = len(kept) // 2
            kept = [a if better(a, b) else b for a, b in zip(kept[:half], kept[half:])]
        result = kept[0]
    else:
        result = kept[0]
        for value in kept[1:]:
            result = result if better(result, value) else value
    return np.asarray(result, x.dtype)


def _folded_extreme(x: np.ndarray, axes: tuple, is_max: bool):
    """np.amax or np.amin over one inner axis of a large row-major array (None otherwise), by
    halving that axis: the maximum (minimum) of its first and second halves, until one is left.

    numpy reduces such an axis (neither the first nor the last) with one short inner loop per
    element of the dims after it (64 elements in W5's (128, 32, 64) amax(dim=1)); each halving
    runs over the halves' rows as one contiguous block. An extreme is exact in any order, and
    np.maximum/np.minimum propagate NaN as the reduction does; which zero of a +-0 tie comes
    out is settled by _np_extreme afterwards either way."""
    if (len(axes) != 1 or x.size < _LARGE or not x.flags.c_contiguous or not 0 < axes[0] < x.ndim - 1
            or x.shape[axes[0]] < 2):
        return None
    fn = np.maximum if is_max else np.minimum
    n = x.shape[axes[0]]
    folded = x.reshape(math.prod(x.shape[:axes[0]]), n, -1)
    while n > 1:
        half = n // 2
        left = fn(folded[:, :half], folded[:, half:2 * half])
        if n % 2:
            fn(left[:, :1], folded[:, n - 1:], out=left[:, :1])
        folded, n = left, half
    return folded.reshape(x.shape[:axes[0]] + (1,) + x.shape[axes[0] + 1:])


def _extreme(op: str, rule: Rule, is_max: bool, input, dim, keepdim: bool) -> Tensor:
    _check_tensor(input, op)
    x = input._data
    if dim is not None and x.ndim and isinstance(dim, (numbers.Integral, tuple, list)):
        # NOTE: amax/amin name the first empty dim as it was given (-1 stays -1; max(dim) wraps it).
        # They wrap and check each dim in turn, before the dims are checked as a set: an empty dim
        # before an out-of-range or repeated one is the error (amin(zeros(0), dim=(0, 2)): "dim 0
        # ... non-zero size"; dim=(2, 0): out of range).
        for given in (dim,) if isinstance(dim, numbers.Integral) else tuple(dim):
            if isinstance(given, numbers.Integral) and x.shape[_wrap_dim(given, x.ndim)] == 0:
                raise IndexError(f"{op}(): Expected reduction dim {given} to have non-zero size.")
    dims = _reduction_dims(() if dim is None else dim, x.ndim)
    _check_nonempty(op, x, dims)
    axes = _axes(dims, x.ndim)
    data = _np_extreme(x, axes, keepdim, is_max)
    return record(rule, (input,), data, input.dtype, axes=axes, keep_shape=_keep_shape(x.shape, axes))


def amax(input, dim=(), keepdim: bool = False) -> Tensor:
    """Maximum over `dim` (all dims by default); the gradient is shared among ties."""
    return _extreme("amax", _AMAX, True, input, dim, keepdim)


def amin(input, dim=(), keepdim: bool = False) -> Tensor:
    """Minimum over `dim` (all dims by default); the gradient is shared among ties."""
    return _extreme("amin", _AMIN, False, input, dim, keepdim)


class _ReturnType(tuple):
    """A (values, indices) pair that prints and unpacks like torch.return_types.max."""

    __slots__ = ()
    _name = ""

    def __new__(cls, values, indices):
        return tuple.__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])
    n_fields = n_sequence_fields = 2

    def __repr__(self) -> str:
        return f"torch.return_types.{self._name}(\nvalues={self[0]!r},\nindices={self[1]!r})"

    def __getattr__(self, name: str):
        # NOTE: torch's return types are C struct sequences named "torch.return_types.max" in
        # their messages (campaign finding: `torch.max(x, 1).sum()`, a shrunk program's misuse).
        raise AttributeError(f"'torch.return_types.{self._name}' object has no attribute '{name}'")

    __str__ = __repr__


class return_types:  # noqa: N801  (a namespace named as torch's)
    """The named tuples of ops with several results, as torch.return_types."""

    max = type("max", (_ReturnType,), {"__slots__": (), "_name": "max"})
    min = type("min", (_ReturnType,), {"__slots__": (), "_name": "min"})


def _evenly_distribute_backward(ctx, g):
    # NOTE: torch's evenly_distribute_backward shares the gradient of a full max/min evenly
    # among the elements equal to it; when the result is NaN, among the NaNs.
    x = v_data(ctx.self)
    mask = np.isnan(x) if np.isnan(v_data(ctx.result)) else x == v_data(ctx.result)
    return (v_where(mask, g / v_const(mask.sum(), g), v_const(0, g)),)


def _select_backward(ctx, g):
    # NOTE: torch's value_selecting_reduction_backward sends the gradient to the index the
    # forward picked: the first extreme along the dim (the first NaN if there is one).
    g = _unsqueeze_to(g, ctx.keep_shape)
    return (v_where(ctx.picked, v_expand(g, ctx.self_shape), v_const(0, g)),)


_MAX_ALL = Rule("MaxBackward1", _evenly_distribute_backward, saves={"self": None, "result": None})
_MIN_ALL = Rule("MinBackward1", _evenly_distribute_backward, saves={"self": None, "result": None})
_MAX_DIM = Rule("MaxBackward0", _select_backward)
_MIN_DIM = Rule("MinBackward0", _select_backward)

def _max_min(op: str, input, dim, keepdim, other):
    _check_tensor(input, op)
    if isinstance(dim, Tensor) or other is not None:
        return _binary_extreme(op, input, other if other is not None else dim)
    x = input._data
    is_max = op == "max"
    if dim is _NO_DIM:
        _check_nonempty(op, x, None)
        data = _all_extreme(x, is_max)
        return record(_MAX_ALL if is_max else _MIN_ALL, (input,), data, input.dtype)
    d = _wrap_dim(dim, x.ndim)
    _check_nonempty(op, x, (d,))
    values, indices, picked = _select(x, d if x.ndim else None, is_max)
    keep_shape = _keep_shape(x.shape, (d,) if x.ndim else ())
    if x.ndim and not keepdim:
        values, indices = np.squeeze(values, d), np.squeeze(indices, d)
    out = record(_MAX_DIM if is_max else _MIN_DIM, (input,), values, input.dtype,
                 picked=picked, keep_shape=keep_shape, self_shape=x.shape)
    index_tensor = Tensor._make(indices, _dtype.int64)
    if out.grad_fn is not None:
        # NOTE: torch saves the indices (result1) for MaxBackward0/MinBackward0, so a
        # second backward without retain_graph raises.
        save_for_backward(out, "indices", index_tensor)
    return getattr(return_types, op)(out, index_tensor)


def _select(x: np.ndarray, dim, is_max: bool):
    """Values, indices (kept dim) and one-hot mask of the first extreme along `dim`."""
    if dim is None:   # a 0-d input: its only element
        return x.copy(), np.zeros((), np.int64), np.ones((), bool)
    # np.argmax/argmin pick the first extreme, and the first NaN if there is one (as torch).
    indices = np.expand_dims((np.argmax if is_max else np.argmin)(x, axis=dim), dim)
    values = np.take_along_axis(x, indices, axis=dim)
    picked = np.zeros(x.shape, bool)
    np.put_along_axis(picked, indices, True, axis=dim)
    return values, indices.astype(np.int64), picked


def _binary_extreme(op: str, input, other):
    from . import _ops_pointwise
    fn = getattr(_ops_pointwise, "maximum" if op == "max" else "minimum", None)
    if fn is None:
        raise NotImplementedError(f"{op}(input, other) is not supported yet; it is "
                                  f"torch.{'maximum' if op == 'max' else 'minimum'}(input, other)")
    return fn(input, other)


def max(input, dim=_NO_DIM, keepdim=None, *, other=None):  # noqa: A001  (torch.max shadows it too)
    """torch.max: the largest element (node MaxBackward1), or `(values, indices)` along
    `dim` (a `return_types.max`, node MaxBackward0), or `maximum(input, other)`."""
    return _max_min("max", input, dim, keepdim, other)


def min(input, dim=_NO_DIM, keepdim=None, *, other=None):  # noqa: A001
    """torch.min: the smallest element, `(values, indices)` along `dim`, or `minimum(input, other)`."""
    return _max_min("min", input, dim, keepdim, other)


def _arg_extreme(op: str, input, dim, keepdim: bool) -> Tensor:
    _check_tensor(input, op)
    if dim is not None:
        _check_int_dim(op, dim)
    if input.dtype is _dtype.bool_:
        raise RuntimeError(f"{op}(): does not support bool input")
    x = input._data
    dims = None if dim is None else (_wrap_dim(dim, x.ndim),)
    _check_nonempty(op, x, dims)
    fn = np.argmax if op == "argmax" else np.argmin
    if dims is None:
        data = np.asarray(fn(x.reshape(-1)))
        if keepdim:
            data = data.reshape((1,) * x.ndim)
    elif x.ndim == 0:
        data = np.zeros((), np.int64)
    else:
        data = fn(x, axis=dims[0], keepdims=keepdim)
    return Tensor._make(np.asarray(data, np.int64), _dtype.int64)


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum (of the flattened input when `dim` is None); NaN counts as largest."""
    return _arg_extreme("argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the first minimum (of the flattened input when `dim` is None); NaN counts as smallest."""
    return _arg_extreme("argmin", input, dim, keepdim)


# ---------------------------------------------------------------------------------
# var, std
# ---------------------------------------------------------------------------------

def _var_backward(ctx, g, x=None):
    x = ctx.self if x is None else x
    if ctx.full:
        dof = ctx.count - ctx.correction
        if dof <= 0:
            # NOTE: torch's var_backward gives inf (nan where x equals the mean) when the
            # degrees of freedom are <= 0 in a full reduction.
            # It is where(x == mean, nan, inf) of two Python floats, so in the default dtype,
            # times g: a 0-d g does not promote it (a float64 var's gradient is float32 then,
            # cast to float64 after: ToCopyBackward0 under create_graph; campaign seed 18).
            at_mean = v_data(x) == _np_mean(v_data(x))
            default = _dtype.default_float
            const = np.where(at_mean, np.nan, np.inf).astype(default.np)
            if isinstance(g, Tensor):
                return g * Tensor._make(const, default)
            if type(g) is np.ndarray and g.ndim == 0:   # (not a ZeroArray: zeros stay zeros)
                g = g.astype(default.np)
            with _errstate():
                return g * const
        centered = x - v_mean_keep(x, None)    # (torch's right operand first: see _ops._neg_grad_times)
        return (2.0 / dof) * g * centered
    # NOTE: with dims, torch scales by 2 / (n - correction) with n the product of the reduced
    # sizes, without the full reduction's special case; and for an empty dim list (which the
    # forward reduces over every dim) n is 1, so the gradient is +-inf where torch's is.
    g = _unsqueeze_to(g, ctx.keep_shape)
    with _errstate():
        scale = float(np.float64(2.0) / np.float64(ctx.backward_count - ctx.correction))
    centered = x - v_mean_keep(x, ctx.axes)
    return scale * g * centered


def _std_backward(ctx, g):
    # NOTE: torch's std_backward is var_backward(g / (2 * std)) with 0 where std == 0, divided
    # in the reduced shape (var_backward unsqueezes it: the node order under create_graph).
    result = ctx.result
    with _errstate():
        g = v_masked_fill(g / (result * 2), v_data(result) == 0)
    return (_var_backward(ctx, g),)


# Elements up to which var/std with several outputs follow torch's Welford updates one by one (a
# Python loop over the reduced length). Above torch's grain (32768) its threads split the work,
# which is not modelled anyway: two float64 passes serve there.
_WELFORD_MAX_NUMEL = 32768


def _welford_var(x: np.ndarray, axes: tuple, dof) -> np.ndarray:
    """The variance over `axes` (kept as dims of size 1), in float64, as torch's std_var_kernel
    computes each output of a reduction with several: Welford's updates in double, element by
    element in the order its TensorIterator walks the reduced dims (memory order).

    NOTE: torch's WelfordOps: delta = x - mean; mean += delta / n; m2 += delta * (x - mean);
    var = m2 / (n - correction), or m2 / 0 when n <= correction (fuzzer finding: var(0) of a
    float64 (2, 3) 1 ulp off a two-pass variance, then exp'd). Above 32768 elements torch's
    threads each take a part, combined after; not modelled (the fuzzer runs torch on one thread).
    """
    reduced = sorted(axes)
    order = _cpu.iterator_order(tuple(x.shape[d] for d in reduced),
                                [[builtins.abs(x.strides[d]) // x.itemsize for d in reduced]])
    kept = [d for d in range(x.ndim) if d not in axes]
    rows = x.transpose(kept + [reduced[i] for i in order]).reshape(
        tuple(x.shape[d] for d in kept) + (math.prod(x.shape[d] for d in reduced),))
    mean = np.zeros(rows.shape[:-1])
    m2 = np.zeros(rows.shape[:-1])
    for n in range(rows.shape[-1]):
        value = rows[..., n].astype(np.float64)
        delta = value - mean
        mean = mean + delta / (n + 1)
        m2 = m2 + delta * (value - mean)
    var = m2 / np.float64(builtins.max(dof, 0))
    return var.reshape(_keep_shape(x.shape, axes))


_VAR = Rule("VarBackward0", lambda ctx, g: (_var_backward(ctx, g),), saves={"self": None})
_STD = Rule("StdBackward0", _std_backward, saves={"self": None, "result": None})

def _var_std(op: str, input, dim, unbiased, keepdim, correction) -> Tensor:
    _check_tensor(input, op)
    if isinstance(dim, bool):            # var(x, False): the legacy `unbiased` overload
        dim, unbiased = None, dim if unbiased is None else unbiased
    if correction is None:
        correction = 0 if unbiased is False else 1
    if not input.dtype.is_floating_point:
        raise RuntimeError("std and var only support floating point and complex dtypes")
    x = input._data
    dims = _reduction_dims(dim, x.ndim)
    axes = _axes(dims, x.ndim)
    count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    # NOTE: torch's reduction factor is input numel / output numel: 0 for an empty output.
    out_numel = int(np.prod([n for i, n in enumerate(x.shape) if i not in axes], dtype=np.int64))
    if (x.size // out_numel if out_numel else 0) - correction <= 0:
        warnings.warn(f"{op}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                      "reduction factor (input numel divided by output numel).", UserWarning, stacklevel=3)
    keep = bool(keepdim)
    # NOTE: torch's var/std kernel accumulates float32 in double: squares of 1e30 do not overflow.
    wide = x.astype(np.float64) if x.dtype == np.float32 else x
    with _errstate():
        if out_numel <= 1 and x.size:
            # NOTE: for one output torch's std_var_all_cpu takes the mean in the input's dtype
            # (self.mean(): a float32 mean of equal values may differ from them), then adds the
            # squared deviations from it in double, one by one in memory order (fuzzer
            # finding: std of six equal float32 values is 5.2e-7, not 0).
            deviations = np.ravel(wide, order="K") - np.float64(_np_mean(x))
            squares = np.cumsum(deviations * deviations)[-1]
            data = np.asarray(squares / np.maximum(np.float64(count - correction), 0)).reshape(
                _keep_shape(x.shape, axes) if keep else tuple(n for i, n in enumerate(x.shape) if i not in axes))
        elif x.size <= _WELFORD_MAX_NUMEL:
            data = _welford_var(x, axes, count - correction)
            if not keep:
                data = data.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
        else:
            # Two passes in float64 (a Python loop over a long reduced dim would take seconds).
            centered = wide - _np_mean(wide, axes, keepdims=True)
            data = np.sum(centered * centered, axis=axes, keepdims=True) / np.float64(builtins.max(count - correction, 0))
            if not keep:
                data = data.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
        if op == "std":
            data = np.sqrt(data)
        data = data.astype(x.dtype)
    full = x.ndim == 0 or dim is None
    # The backward's n: the product of the sizes of the dims as given (1 for an empty list).
    explicit = () if full else (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    backward_count = int(np.prod([x.shape[_wrap_dim(d, x.ndim)] for d in explicit], dtype=np.int64))
    return record(_STD if op == "std" else _VAR, (input,), data, input.dtype, full=full, count=count,
                  backward_count=backward_count, correction=correction, axes=axes,
                  keep_shape=_keep_shape(x.shape, axes))


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance over `dim` with `correction` (default 1; the legacy `unbiased` is correction 1 or 0)."""
    return _var_std("var", input, dim, unbiased, keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation over `dim` with `correction` (default 1), as torch.std."""
    return _var_std("std", input, dim, unbiased, keepdim, correction)


# ---------------------------------------------------------------------------------
# logsumexp
# ---------------------------------------------------------------------------------

def _logsumexp_backward(ctx, g):
    # NOTE: torch's logsumexp_backward is g * exp(x - result), so an infinite result gives
    # nan (inf - inf) where x equals it, and nan everywhere for an all -inf slice.
    g = _unsqueeze_to(g, ctx.keep_shape)
    return (g * v_exp(ctx.self - _unsqueeze_to(ctx.result, ctx.keep_shape)),)


_LOGSUMEXP = Rule("LogsumexpBackward0", _logsumexp_backward, saves={"self": None, "result": None})


def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over `dim`, computed stably by shifting by the finite maximum."""
    _check_tensor(input, "logsumexp")
    x = input._data
    dt = _float_dtype(input.dtype)
    explicit = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if not explicit and not keepdim and x.ndim:
        # NOTE: torch reduces over every dim for an empty dim list, then fails to write the
        # kept-dims result into the squeezed output.
        raise RuntimeError(f"output with shape [] doesn't match the broadcast shape [{', '.join('1' * x.ndim)}]")
    dims = _reduction_dims(dim, x.ndim)
    axes = _axes(dims, x.ndim)
    xf = x.astype(dt.np)
    with _errstate():
        if xf.size:
            # NOTE: as torch, an infinite maximum is replaced by 0 before shifting.
            shift = np.amax(xf, axis=axes, keepdims=True)
            shift = np.where(np.isinf(shift), np.zeros((), dt.np), shift)
        else:
            shift = np.zeros(_keep_shape(x.shape, axes), dt.np)
        # NOTE: torch sums the exponentials with its sum (in its order: `_sum_order`)
        data = _rounded(np.log, _sum_order.ordered_sum(_np_exp(xf - shift), axes, keepdims=True)) + shift
    if not keepdim:
        data = data.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
    return record(_LOGSUMEXP, (input,), data, dt, keep_shape=_keep_shape(x.shape, axes))


# ---------------------------------------------------------------------------------
# norm
# ---------------------------------------------------------------------------------

def _norm_backward(ctx, g):
    """torch's norm_backward for linalg.vector_norm, case by case of p."""
    p, x = ctx.p, ctx.self
    g = _unsqueeze_to(g, ctx.keep_shape)
    norm = _unsqueeze_to(ctx.result, ctx.keep_shape)
    norm_is_zero = v_data(norm) == 0
    with _errstate():
        if p == 0:
            return (None,)    # NOTE: torch returns no gradient for the 0-"norm" (a count)
        if p == 1:
            return (v_sign(x) * g,)
        # NOTE: below, torch's formulas step by step (masked_fill_, C++'s right operand first):
        # the order of their nodes under create_graph.
        if p == 2:
            # NOTE: torch's gradient of the 2-norm at a zero vector is 0.
            return (g * v_masked_fill(x / norm, np.broadcast_to(norm_is_zero, np.shape(x))),)
        if np.isinf(p):
            # NOTE: as amax of |x|: shared evenly among ties, and NaNs count as extremes.
            ax = np.abs(v_data(x))
            mask = (ax == v_data(norm)) | np.isnan(ax)
            count = mask.sum(axis=ctx.axes, keepdims=True)
            return (v_sign(x) * ((g / v_const(count, g)) * v_const(mask, g)),)
        if p < 1:
            # NOTE: torch zeroes |x|^(p-1) where x == 0 (it would be inf).
            powered = v_masked_fill(v_abs(x) ** (p - 1), v_data(x) == 0)
            scaled = v_sign(x) * powered
            factor = norm ** (1 - p)
            return (scaled * g * factor,)
        # NOTE: for p > 1 torch zeroes the gradient where the norm is 0.
        if p < 2:
            powered = v_abs(x) ** (p - 1)
            scaled = v_sign(x) * powered
        else:
            scaled = x * v_abs(x) ** (p - 2)
        scale = v_masked_fill(g / norm ** (p - 1), norm_is_zero)
        return (scaled * scale,)


_NORM = Rule("LinalgVectorNormBackward0", _norm_backward, saves={"self": None, "result": None})


_VECTOR_NORM_ARGS = _args.Parser.from_text(optable.NATIVE_SIGNATURES["linalg_vector_norm"])


def _norm_method(native):
    """Tensor.norm: in torch a Python method calling torch.norm."""
    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return native(self, p, dim, keepdim, dtype=dtype)
    norm.__qualname__ = "Tensor.norm"
    norm.__doc__, norm.__wrapped__ = native.__doc__, native
    return norm


def _check_identity_free_norm(p: float, shape: tuple, dim):
    """NOTE: a norm of negative or infinite p has no identity: torch refuses an empty tensor (no
    dim) and an empty reduced dim, named as given, in the order given (its message lacks a space;
    fuzzer finding: normalize(p=-1) of an empty tensor)."""
    if dim is None:
        if 0 in shape:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {p:g} norm on an empty tensor because the "
                               "operation does not have an identity")
        return
    for d in (dim,) if isinstance(dim, numbers.Integral) else dim:
        if shape[d] == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {p:g} norm on the dimension {d}because "
                               "this dimension is empty and the operation does not have an identity")


def _check_norm_dtype(name: str, dt, dtype) -> None:
    """torch's check_linalg_norm_dtype: a requested dtype must be a float dtype that the input's
    promotes to."""
    if dtype is None:
        return
    if not dtype.is_floating_point:
        raise RuntimeError(f"{name}: dtype should be floating point or complex, but got {dtype.scalar_name}")
    if _dtype.promote(dt, dtype) is not dtype:
        raise RuntimeError(f"{name}: the dtype of the input ({dt.scalar_name}) should be convertible without "
                           f"narrowing to the specified dtype ({dtype.scalar_name})")


def _matrix_norm_checks(input: Tensor, p: str, dims: list, dtype) -> None:
    """The checks of torch.linalg.matrix_norm, which torch.norm calls for a string p other than
    'fro' over at most 2 dims, in its order: the order, the input's dims, its dtype, the dims,
    the requested dtype (fuzzer finding: norm of an int64 tensor with p='fro' over 3 dims is
    refused for its dtype, not for its dims)."""
    name = "linalg.matrix_norm"
    if p not in ("fro", "nuc"):
        raise RuntimeError(f"{name}: Order {p} not supported.")
    if input.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor A must have at least 2 dimensions.")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got {input.dtype.scalar_name}")
    if len(dims) != 2:
        raise RuntimeError(f"{name}: dim must be a 2-tuple. Got " + " ".join(map(str, dims)))
    first, second = (_wrap_dim(d, input.ndim) for d in dims)
    if first == second:
        raise RuntimeError(f"{name}: dims must be different. Got ({first}, {second})")
    _check_norm_dtype(name, input.dtype, dtype)


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Vector p-norm over `dim` (all elements by default), as torch.norm, which computes it with
    torch.linalg.vector_norm ('fro' is p = 2); p is a number, 'fro' or inf / -inf.

    In torch a Python function: it reads input.layout first, then calls linalg.vector_norm."""
    _args.attribute_of(input, "layout")
    x = input._data
    if p is None:
        p = 2
    elif isinstance(p, str):
        if p == "fro" and (dim is None or isinstance(dim, int) or len(dim) <= 2):
            p = 2
        else:
            _matrix_norm_checks(input, p, list(range(x.ndim)) if dim is None else list(dim), dtype)
            raise NotImplementedError("norm(p='nuc') (the nuclear matrix norm) is not supported")
    _VECTOR_NORM_ARGS.check((input, p, [dim] if isinstance(dim, int) else dim, keepdim),
                            {} if dtype is None else {"dtype": dtype})
    p = float(p)
    if not input.dtype.is_floating_point:
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {input.dtype.scalar_name}")
    _check_norm_dtype("linalg.vector_norm", input.dtype, dtype)
    dt = input.dtype if dtype is None else dtype
    dims = _reduction_dims(dim, x.ndim)
    axes = _axes(dims, x.ndim)
    if p < 0 or p == np.inf:
        _check_identity_free_norm(p, x.shape, None if dims is None else dim)
    ax = np.abs(x.astype(dt.np))
    keep = bool(keepdim)
    with _errstate():
        if int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) == 1:   # every reduced dim of size 1
            # NOTE: torch's linalg_vector_norm reduces over dims of size 1 as abs(x) (x != 0 for
            # p = 0), without the p-th powers that would overflow.
            data = (ax != 0).astype(dt.np) if p == 0 else ax
            data = data if keep else data.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
        elif p == np.inf:
            data = np.amax(ax, axis=axes, keepdims=keep)
        elif p == -np.inf:
            data = np.amin(ax, axis=axes, keepdims=keep)
        elif p == 0:
            data = np.sum(ax != 0, axis=axes, keepdims=keep).astype(dt.np)
        elif p == 1:
            data = np.sum(ax, axis=axes, keepdims=keep)
        elif p == 2:
            data = np.sqrt(np.sum(ax * ax, axis=axes, keepdims=keep))
        else:
            data = _p_norm(ax, p, axes, x.strides, keep)
    return record(_NORM, (input,), data, dt, p=p, axes=axes, keep_shape=_keep_shape(x.shape, axes))


def _p_norm(ax: np.ndarray, p: float, axes: tuple, strides: tuple, keep: bool) -> np.ndarray:
    """The p-norm (p not 0, 1, 2 or +-inf) over `axes` of |x| (`ax`; `strides`: x's) as torch's
    NormOps in binary_kernel_reduce: per output, C pow(|x|, p) of each element added in turn from
    0 in the order its TensorIterator visits them (the reduced dims innermost, by x's strides),
    then C pow(sum, 1 / p), in x's dtype: for float32 the exponents are float32 (powf).

    NOTE: numpy's power and pairwise sum differ in the last bits (fuzzer finding: the 3-norm of
    (3, 3, 3) is 3.0 in torch, 3.0000000000000004 in numpy; normalize(p=3) then gave
    1.0000000000000002 and acos/asin NaN)."""
    dt = ax.dtype.type
    exponent, inverse = (float(dt(p)), float(dt(1) / dt(p))) if dt is np.float32 else (p, 1 / p)
    terms = _cpu.libm("pow", np.power, ax, exponent)
    shape = ax.shape
    output = [0 if a in axes else 1 for a in range(ax.ndim)]
    for a in reversed(range(ax.ndim)):     # the output's strides: contiguous over the kept dims
        if a not in axes:
            output[a] = int(np.prod([shape[b] for b in range(a + 1, ax.ndim) if b not in axes], dtype=np.int64)) or 1
    order = _cpu.iterator_order(shape, [output, [s // ax.itemsize for s in strides]], reduction=True)
    reduced = [a for a in order if a in axes]          # outermost first
    kept = [a for a in range(ax.ndim) if a not in axes]
    rows = terms.transpose(kept + reduced).reshape(
        [shape[a] for a in kept] + [int(np.prod([shape[a] for a in reduced], dtype=np.int64))])
    with _errstate():
        total = (np.add.accumulate(rows, axis=-1)[..., -1] if rows.shape[-1] else
                 np.zeros(rows.shape[:-1], ax.dtype))
        data = _cpu.libm("pow", np.power, np.asarray(total, ax.dtype), inverse)
    return data.reshape(_keep_shape(shape, axes)) if keep else data


# ---------------------------------------------------------------------------------
# all, any
# ---------------------------------------------------------------------------------

def _logical_reduce(op: str, fn, input, dim, keepdim: bool) -> Tensor:
    _check_tensor(input, op)
    x = input._data
    if dim is not None and not isinstance(dim, numbers.Integral) and not tuple(dim):
        # NOTE: unlike sum or amax, torch's all/any reduce over nothing for an empty dim list.
        return Tensor._make(x.astype(bool), _dtype.bool_)
    dims = _reduction_dims(dim, x.ndim)
    axes = _axes(dims, x.ndim)
    data = fn(x.astype(bool), axis=axes, keepdims=bool(keepdim))
    return Tensor._make(np.asarray(data), _dtype.bool_)


def all(input, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element over `dim` is nonzero (a bool tensor; no gradient)."""
    return _logical_reduce("all", np.all, input, dim, keepdim)


def any(input, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether some element over `dim` is nonzero (a bool tensor; no gradient)."""
    return _logical_reduce("any", np.any, input, dim, keepdim)


# ---------------------------------------------------------------------------------
# cumsum, cumprod
# ---------------------------------------------------------------------------------

def _cumsum_backward(ctx, g):
    if ctx.dim is None:
        return (g,)
    return (_reversed_cumsum(g, ctx.dim),)


def _cumprod_backward(ctx, g):
    """torch's cumprod_backward (ReduceOps.cpp): without a zero in the input, the reversed
    cumsum of result * g over x; with zeros, its O(n) masked form in a plain backward and its
    O(n^2) differentiable form when the backward is recorded. They differ with inf, NaN and
    over/underflow, so each is followed as written."""
    x, d = ctx.self, ctx.dim
    if d is None or np.size(v_data(x)) <= 1 or np.shape(x)[d] == 1:
        return (g,)
    if not (v_data(x) == 0).any():
        return (_reversed_cumsum(ctx.result * g, d) / x,)
    if isinstance(g, Tensor):
        return (_cumprod_backward_recorded(x, g, d),)
    return (_cumprod_backward_zeros(x, g, ctx.result, d),)


def _cumprod_backward_zeros(x: np.ndarray, g: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    """torch's O(n) gradient of cumprod with zeros: with z1 (z2) the first (second) zero along
    `d`, the plain formula before z1, 0 after it, and at z1
    y[z1 - 1] * sum_{z1 <= j < z2} g_j * prod(x[z1 + 1 : j + 1])."""
    zeros_seen = np.cumsum(x == 0, axis=d)
    before = zeros_seen == 0
    w = np.where(before, y * g, np.zeros((), g.dtype))
    grad = np.where(before, _reversed_cumsum(w, d) / x, np.zeros((), g.dtype))
    after_first = zeros_seen == 1
    # NOTE: torch locates z1 with max(dim).indices of the mask: 0 in a slice without a zero.
    first = np.argmax(after_first, axis=d)[(slice(None),) * d + (None,)]
    first_mask = (np.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - d - 1)) == first) & after_first
    between = after_first & ~first_mask
    partial = _accumulated(np.cumprod, np.where(between, x, np.ones((), x.dtype)), d)
    total = np.sum(partial * np.where(after_first, g, np.zeros((), g.dtype)), axis=d, keepdims=True)
    previous = np.take_along_axis(y, np.maximum(first - 1, 0), axis=d)
    previous = np.where(first == 0, np.ones((), y.dtype), previous)
    return np.where(first_mask, total * previous, grad)


def _cumprod_backward_recorded(x: Tensor, g: Tensor, d: int) -> Tensor:
    """torch's O(n^2) gradient of cumprod with zeros, the one it differentiates again: for each
    k, sum_{j >= k} g_j * prod(x[:k]) * prod(x[k + 1 : j + 1])."""
    n = x.shape[d]
    ones = v_const(np.ones(tuple(1 if i == d else m for i, m in enumerate(x.shape))), x)
    slices = []
    for k in range(n):
        if k == 0:
            omitted = cat([ones, cumprod(x.narrow(d, 1, n - 1), d)], d)
        else:
            until = prod(x.narrow(d, 0, k), d, keepdim=True)
            if k == n - 1:
                omitted = until
            else:
                after = cumprod(x.narrow(d, k + 1, n - k - 1), d)
                omitted = cat([until, until.expand_as(after) * after], d)
        slices.append(_sum(g.narrow(d, k, n - k) * omitted, d))
    return stack(slices, d)


_CUMSUM = Rule("CumsumBackward0", _cumsum_backward)
_CUMPROD = Rule("CumprodBackward0", _cumprod_backward, saves={"self": None, "result": None})


def _cumulative(op: str, rule: Rule, fn, input, dim, dtype) -> Tensor:
    _check_tensor(input, op)
    _check_int_dim(op, dim)
    x = input._data
    d = _wrap_dim(dim, x.ndim)
    dt = _result_dtype(op, input, dtype)
    with _errstate():
        if not x.ndim:
            data = x.astype(dt.np).copy()
        elif dt.np == np.float32:
            # NOTE: torch's CPU kernel accumulates float32 in double (its acc_type), rounding
            # each output once: cumprod of [1e30, 1e10, 1e-10] ends at 1e30, not inf.
            data = fn(x.astype(np.float64), axis=d).astype(np.float32)
        else:
            data = fn(x.astype(dt.np), axis=d)
    return record(rule, (input,), _contiguous_array(data), dt, dim=d if x.ndim else None)   # (see prod)


def cumsum(input, dim, *, dtype=None) -> Tensor:
    """Cumulative sum along `dim` (integral input sums in int64, or in `dtype`)."""
    return _cumulative("cumsum", _CUMSUM, _np_cumsum, input, dim, dtype)


def cumprod(input, dim, *, dtype=None) -> Tensor:
    """Cumulative product along `dim` (integral input multiplies in int64, or in `dtype`)."""
    return _cumulative("cumprod", _CUMPROD, np.cumprod, input, dim, dtype)
