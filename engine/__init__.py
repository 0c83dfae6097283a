"""A numpy autograd engine that speaks torch: `import engine as torch`.

Supported: float32 (default), float64, int64 and bool tensors; the ops listed in
`engine.optable`; reverse-mode autograd with torch's node names, errors and
conventions (torch 2.13.0). Anything else raises NotImplementedError naming it.
"""
from __future__ import annotations

from . import _ops, optable
from ._autograd import enable_grad, is_grad_enabled, no_grad
from ._dtype import bool_ as bool  # noqa: A001  (torch.bool shadows the builtin too)
from ._dtype import dtype, float32, float64, int64
from ._tensor import Size, Tensor, tensor

float = float32    # noqa: A001
double = float64
long = int64

__version__ = "0.1.0"

# Python operators and the engine function each one calls, with the reflected form
# used when a Python number stands on the left (`2 * x`, `2 ** x`).
_BINARY_DUNDERS = {
    "+": ("__add__", "__radd__", lambda f: lambda self, other: f(self, other)),
    "-": ("__sub__", "__rsub__", lambda f: lambda self, other: _ops.rsub(self, other)),
    "*": ("__mul__", "__rmul__", lambda f: lambda self, other: f(self, other)),
    "/": ("__truediv__", "__rtruediv__", lambda f: lambda self, other: _ops.rdiv(self, other)),
    "**": ("__pow__", "__rpow__", lambda f: lambda self, other: f(other, self)),
    "@": ("__matmul__", "__rmatmul__", lambda f: lambda self, other: f(other, self)),
}


def _bind_ops():
    """Expose every op of the table as a function, a Tensor method and an operator."""
    for op in optable.OPS:
        fn = getattr(_ops, op.name)
        if optable.FUNCTION in op.forms:
            globals()[op.name] = fn
        if optable.METHOD in op.forms:
            setattr(Tensor, op.name, fn)
        if optable.OPERATOR in op.forms:
            if op.kind == optable.UNARY:
                setattr(Tensor, "__neg__" if op.operator == "-" else op.operator, fn)
            else:
                forward, reflected, make_reflected = _BINARY_DUNDERS[op.operator]
                setattr(Tensor, forward, fn)
                setattr(Tensor, reflected, make_reflected(fn))


_bind_ops()

from . import optim  # noqa: E402  (optim uses the bound ops)

__all__ = ["Tensor", "Size", "tensor", "dtype", "float32", "float64", "int64", "bool", "float",
           "double", "long", "no_grad", "enable_grad", "is_grad_enabled", "optim"] + [
    op.name for op in optable.OPS if optable.FUNCTION in op.forms]
