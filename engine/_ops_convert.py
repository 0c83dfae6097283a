"""Conversions: `to(dtype)`, `float()`, `double()`, `long()`, `int()`, `bool()` (Tensor methods).

A conversion to a floating dtype stays in the graph (ToCopyBackward0); one to an
integer or bool dtype leaves it, as in torch.
"""
from __future__ import annotations

import builtins

from . import _dtype
from ._ops import _to
from ._tensor import Tensor


def to(self: Tensor, *args, dtype=None, copy: builtins.bool = False, non_blocking: builtins.bool = False,
       **kwargs) -> Tensor:
    """`x.to(dtype)`, `x.to("cpu")`, `x.to(other)`: the engine has one device, the CPU."""
    for arg in args + tuple(kwargs.values()):
        if isinstance(arg, _dtype.dtype):
            dtype = arg
        elif isinstance(arg, Tensor):
            dtype = arg.dtype
        elif str(arg) != "cpu":
            raise NotImplementedError(f"engine: Tensor.to({arg!r}): the engine has only the CPU device "
                                      "and the dtypes float32, float64, int64 and bool")
    if dtype is None or (dtype is self.dtype and not copy):
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
