"""Conversions: `to(dtype)`, `float()`, `double()`, `long()`, `int()`, `bool()` (Tensor methods).

A conversion to a floating dtype stays in the graph (ToCopyBackward0); one to an
integer or bool dtype leaves it, as in torch.
"""
from __future__ import annotations

import builtins
import numbers

from . import _dtype
from ._ops import _to
from ._tensor import Tensor


def to(self: Tensor, *args, **kwargs) -> Tensor:
    """`x.to(dtype)`, `x.to("cpu")`, `x.to(other)`: the engine has one device, the CPU.

    The call has matched one of torch's overloads (optable.SIGNATURES["to"]); the first
    positional argument says which."""
    first = args[0] if args else None
    if isinstance(first, _dtype.dtype):
        names = ("dtype", "non_blocking", "copy")
    elif first is None or isinstance(first, str) or (isinstance(first, numbers.Integral)
                                                      and not isinstance(first, builtins.bool)):
        names = ("device", "dtype", "non_blocking", "copy")
    else:   # a tensor, or a number, which torch takes as a tensor here
        names = ("tensor", "non_blocking", "copy")
    options = {**dict(zip(names, args)), **kwargs}
    device = options.get("device")
    if device is not None and device != "cpu":
        raise NotImplementedError(f"engine: Tensor.to({device!r}): the engine has only the CPU device")
    dtype = options.get("dtype")
    if "tensor" in options:
        other = options["tensor"]
        dtype = other.dtype if isinstance(other, Tensor) else _dtype.wrapped_number_dtype(other)
    if dtype is None or (dtype is self.dtype and not options.get("copy")):
        return self
    return _to(self, dtype)


def float(self: Tensor) -> Tensor:
    return to(self, _dtype.float32)


def double(self: Tensor) -> Tensor:
    return to(self, _dtype.float64)


def long(self: Tensor) -> Tensor:
    return to(self, _dtype.int64)


def bool(self: Tensor) -> Tensor:
    return to(self, _dtype.bool_)


def int(self: Tensor) -> Tensor:
    raise NotImplementedError("engine: Tensor.int() would give int32, which the engine does not support; "
                              "use long() for int64")
