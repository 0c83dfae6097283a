"""torch's ZeroTensor: the "efficient zero tensor" (`at::_efficientzerotensor`) some of its
backward formulas return instead of a tensor of zeros.

NOTE: torch 2.13's only such formula for real tensors is sgn's (sgn_backward), which abs'
derivative `grad * self.sgn()` and the 1- and inf-norms' put in every second derivative.
A ZeroTensor is observable: arithmetic treats it as an exact zero (0 * inf is 0, not NaN),
a hook receives one (`_is_zerotensor()`), AccumulateGrad stores it as a leaf's `.grad`,
and it refuses to be written (a later backward into that `.grad` raises). torch computes
with it through its kernels for mul, div, add and sub (ZeroTensor dispatch key) and view
ops; any other op sees plain zeros (its fallback materializes them).

The engine's ZeroTensor is the read-only numpy array `ZeroArray`, so that one mechanism
covers both kinds of backward values: plain backward computes with arrays, and
create_graph and hooks with tensors whose data is the array. Its `__array_ufunc__`
implements torch's four ZeroTensor kernels; every other ufunc (and every reduction, and
every ufunc with an `out`) gets plain zeros; views of it stay ZeroArrays, copies and casts
to another dtype are plain arrays, as torch's clone and `to`.
"""
from __future__ import annotations

import numpy as np

from . import _cpu

IMMUTABLE_MESSAGE = ("ZeroTensors are immutable. Please use the materialized zero tensor obtained using .clone() "
                     "if you want a mutable tensor.")
NUMPY_MESSAGE = " Cannot convert a ZeroTensor to numpy. Set force=True if you need the zero array."


class ZeroArray(np.ndarray):
    """A read-only array of zeros with torch's ZeroTensor arithmetic (see the module)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, ZeroArray) else x for x in inputs]
        out = kwargs.pop("out", None)
        if out is not None and any(isinstance(o, ZeroArray) for o in out):
            raise RuntimeError(IMMUTABLE_MESSAGE)
        kernel = _KERNELS.get(ufunc) if method == "__call__" else None
        if kernel is None:
            return getattr(ufunc, method)(*plain, **kwargs, **({} if out is None else {"out": out}))
        with np.errstate(all="ignore"):
            result = ufunc(*plain, **kwargs)   # (its shape and dtype)
        zero = [isinstance(x, ZeroArray) for x in inputs]
        result = kernel(zero, plain, np.shape(result), np.asarray(result).dtype)
        if out is None:
            return result
        np.copyto(out[0], result, casting="unsafe")
        return out[0]

    def __getitem__(self, key):
        # A view (basic indexing) stays a ZeroTensor; a gather (advanced indexing: index,
        # gather, take) is another op, whose fallback gives plain zeros (campaign seed 18:
        # scatter's src gradient, grad.gather(...), of a ZeroTensor is real zeros in torch, so a
        # var(correction=n) gradient of inf times it is NaN, not 0).
        result = super().__getitem__(key)
        if isinstance(result, ZeroArray) and not _views(result, self):
            return result.view(np.ndarray)
        return result

    def take(self, indices, axis=None, out=None, mode="raise"):
        return self.view(np.ndarray).take(indices, axis, out, mode)   # (a gather: see __getitem__)

    def copy(self, order="C"):
        return self.view(np.ndarray).copy(order)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if np.dtype(dtype) == self.dtype and not copy:
            return self
        return self.view(np.ndarray).astype(dtype, order, casting, subok, copy)


def _views(result: np.ndarray, array: np.ndarray) -> bool:
    base = result.base
    while base is not None:
        if base is array:
            return True
        base = getattr(base, "base", None)
    return False


def zeros(shape: tuple, dtype) -> ZeroArray:
    """torch's at::_efficientzerotensor(shape, dtype)."""
    out = np.zeros(shape, dtype).view(ZeroArray)
    out.flags.writeable = False
    return out


def zeros_like(g):
    """A ZeroTensor shaped and typed as `g` (an array, or a tensor under create_graph)."""
    if isinstance(g, np.ndarray) or np.isscalar(g):
        return zeros(np.shape(g), np.asarray(g).dtype)
    from ._tensor import Tensor   # circular: tensors import the engine's arrays
    return Tensor._make(zeros(g._data.shape, g.dtype.np), g.dtype)


def cast(array: np.ndarray, dtype) -> np.ndarray:
    """An operand of an op's kernel in the op's computation dtype: a ZeroTensor stays one
    there (torch's ZeroTensor kernels compute the result's dtype, never cast the operand)."""
    return zeros(array.shape, dtype) if type(array) is ZeroArray else _cpu.dense_cast(array, dtype)


def plain(t):
    """A tensor argument of an in-place op as torch's ZeroTensor fallback hands it to the
    kernel: a ZeroTensor outside the graph as plain zeros (x.add_(zero) adds 0.0: -0.0 is 0.0)."""
    from ._tensor import Tensor   # circular: tensors import the engine's arrays
    if isinstance(t, Tensor) and type(t._data) is ZeroArray and not t.requires_grad:
        return Tensor._make(t._data.view(np.ndarray), t.dtype)
    return t


def materialized(backward, native):
    """A rule's `backward` that sees a ZeroTensor gradient as plain zeros (`native` "no_grad_mode":
    only a gradient array, in a backward without create_graph).

    NOTE: torch's ZeroTensor fallback hands a native kernel plain zeros for a ZeroTensor argument,
    so a backward kernel such as tanh_backward, native_layer_norm_backward or mse_loss_backward
    computes 0 * inf = NaN and gives plain zeros, where formulas of mul/div/add/sub and views
    keep the ZeroTensor (campaign seed 11: layer_norm(inf row) then abs_, double backward: the
    weight's gradient was 0 in the engine, NaN in torch)."""
    def run(ctx, g):
        if type(g) is not np.ndarray:   # (the common case first: a plain gradient array)
            g = _plain_zeros(g, native)
        return backward(ctx, g)
    return run


def _plain_zeros(g, native):
    """`g` (an array, or a tensor under create_graph), plain zeros if it is a ZeroTensor."""
    if type(g) is ZeroArray:
        return plain_array(g)
    if native is True and type(getattr(g, "_data", None)) is ZeroArray:
        from ._tensor import Tensor   # circular: tensors import the engine's arrays
        return Tensor._make(plain_array(g._data), g.dtype)
    return g


def plain_array(a):
    """The array a native kernel computes with: plain zeros for a ZeroTensor's (see materialized)."""
    return np.zeros(a.shape, a.dtype) if type(a) is ZeroArray else a


def is_zero(x) -> bool:
    return type(x) is ZeroArray


def add_gradient(previous, new):
    """NOTE: torch's engine adds a gradient into another that it holds alone in place
    (InputBuffer::accumulate): its in-place add has no ZeroTensor kernel and adds plain zeros
    (-0.0 becomes 0.0), while a ZeroTensor held there cannot be written and is added out of
    place (its kernel: the other gradient as it is)."""
    return previous + (new.view(np.ndarray) if is_zero(new) and not is_zero(previous) else new)


def _broadcast(x, shape, dtype) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(x, dtype), shape))


def _mul(zero, plain, shape, dtype):
    return zeros(shape, dtype)


def _div(zero, plain, shape, dtype):
    """0 / x is a ZeroTensor, x / 0 all inf (whatever x), 0 / 0 all NaN (div_zerotensor)."""
    if zero[0] and zero[1]:
        return np.full(shape, np.nan, dtype)
    return zeros(shape, dtype) if zero[0] else np.full(shape, np.inf, dtype)


def _add(zero, plain, shape, dtype):
    """The other operand as it is (add_zerotensor: no addition, so -0.0 stays -0.0)."""
    if zero[0] and zero[1]:
        return zeros(shape, dtype)
    return _broadcast(plain[1] if zero[0] else plain[0], shape, dtype)


def _sub(zero, plain, shape, dtype):
    if zero[0] and zero[1]:
        return zeros(shape, dtype)
    if zero[1]:
        return _broadcast(plain[0], shape, dtype)
    return _broadcast(plain[1], shape, dtype) * dtype.type(-1)   # add_zerotensor: other * -alpha (NaN keeps its sign)


_KERNELS = {np.multiply: _mul, np.true_divide: _div, np.add: _add, np.subtract: _sub}
