"""A numpy autograd engine that speaks torch: `import engine as torch`.

Supported: float32 (default), float64, int64 and bool tensors; the ops listed in
`engine.optable`; reverse-mode autograd with torch's node names, errors and
conventions (torch 2.13.0). Anything else raises NotImplementedError naming it.
"""
from __future__ import annotations

import importlib

from . import _args, _ops, _ops_inplace, optable
from ._autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from ._dtype import bool_ as bool  # noqa: A001  (torch.bool shadows the builtin too)
from ._dtype import dtype, float32, float64, int64
from ._tensor import Size, Tensor, tensor


float = float32    # noqa: A001
double = float64
long = int64

__version__ = "0.1.0"

# Python operators: symbol -> (dunder, reflected dunder or None, reflected implementation).
# The reflected form runs when a Python number stands on the left (`2 * x`, `2 ** x`);
# comparisons need none, as Python reflects them itself (`2 < x` is `x > 2`).
_SWAPPED = lambda f: lambda self, other: f(other, self)  # noqa: E731
_BINARY_DUNDERS = {
    "+": ("__add__", "__radd__", lambda f: lambda self, other: f(self, other)),
    "-": ("__sub__", "__rsub__", lambda f: lambda self, other: _ops.rsub(self, other)),
    "*": ("__mul__", "__rmul__", lambda f: lambda self, other: f(self, other)),
    "/": ("__truediv__", "__rtruediv__", lambda f: lambda self, other: _ops.rdiv(self, other)),
    "**": ("__pow__", "__rpow__", _SWAPPED),
    "@": ("__matmul__", "__rmatmul__", _SWAPPED),
    "%": ("__mod__", "__rmod__", _SWAPPED),
    "//": ("__floordiv__", "__rfloordiv__", _SWAPPED),
    "&": ("__and__", "__rand__", _SWAPPED),
    "|": ("__or__", "__ror__", _SWAPPED),
    "^": ("__xor__", "__rxor__", _SWAPPED),
    "==": ("__eq__", None, None), "!=": ("__ne__", None, None),
    "<": ("__lt__", None, None), "<=": ("__le__", None, None),
    ">": ("__gt__", None, None), ">=": ("__ge__", None, None),
}
_UNARY_DUNDERS = {"-": "__neg__", "~": "__invert__", "abs": "__abs__"}
# Augmented assignment runs the op's in-place method, as in torch (`x += y` is `x.add_(y)`).
_AUGMENTED_DUNDERS = {"+": "__iadd__", "-": "__isub__", "*": "__imul__", "/": "__itruediv__",
                      "**": "__ipow__", "//": "__ifloordiv__", "%": "__imod__", "&": "__iand__",
                      "|": "__ior__", "^": "__ixor__"}


def implementation(op: optable.Op):
    """The engine function that implements a table entry."""
    if "." in op.name:
        namespace, _, name = op.name.rpartition(".")
        return getattr(importlib.import_module(f"{__name__}.{namespace}"), name)
    for module_name in optable.IMPLEMENTATIONS:
        module = importlib.import_module(f"{__name__}.{module_name}")
        if op.name in vars(module):
            return vars(module)[op.name]
    raise NotImplementedError(f"op table entry {op.name!r} has no implementation in {optable.IMPLEMENTATIONS}")


def _comparison_operator(fn):
    """`x == None` is False and `x < None` a TypeError, as in torch: an operand the op
    refuses makes the operator return NotImplemented, so Python falls back."""
    def operator(self, other):
        try:
            return fn(self, other)
        except TypeError:
            return NotImplemented
    operator.__name__, operator.__qualname__ = fn.__name__, getattr(fn, "__qualname__", fn.__name__)
    operator.__doc__, operator.__wrapped__ = fn.__doc__, fn
    return operator


# Ops whose own checks come before torch's autograd wrapper reads their inputs' nodes: torch
# composes them of other ops and checks in the composition (flatten, narrow, chunk, indexing,
# einsum, outer), or in Python (mse_loss and l1_loss broadcast first), or converts. The other
# differentiable ops read the nodes first, also where torch composes them of ops that do
# (reshape, softmax, matmul, where, var: the inner op's check comes after), so their inputs'
# errors come first (_ops_inplace._read_input_nodes; tests/engine/test_inplace_views.py).
CHECKS_BEFORE_NODES = frozenset({
    "flatten", "unflatten", "narrow", "chunk", "__getitem__", "__setitem__", "outer", "ger", "einsum",
    "nn.functional.mse_loss", "nn.functional.l1_loss", "nn.functional.dropout", "to", "float", "double", "long",
    "bool", "int", "T", "H", "mT", "mH", "adjoint", "manual_seed"})


def _reading_nodes_on_error(fn):
    """`fn` (its operator form, or a form without a parser) that, when `fn` fails, raises first what torch's autograd
    wrapper raises reading the inputs' nodes (see _ops_inplace._read_input_nodes)."""
    def operator(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, IndexError):
            _ops_inplace._read_input_nodes(args, kwargs)
            raise
    operator.__name__, operator.__qualname__ = fn.__name__, getattr(fn, "__qualname__", fn.__name__)
    operator.__doc__, operator.__wrapped__ = fn.__doc__, fn
    return operator


def _bind_ops():
    """Expose every op of the table as a function, a Tensor method, property and operator."""
    for op in optable.OPS:
        fn = implementation(op)
        parser = _args.Parser.from_text(optable.SIGNATURES[op.name]) if op.name in optable.SIGNATURES else None
        on_error = (_ops_inplace._read_input_nodes if op.differentiable and op.kind != optable.INPLACE
                    and op.name not in CHECKS_BEFORE_NODES else None)
        # Where torch's Tensor method is a Python method of its own (Tensor.split), the module
        # of the op makes it from the native one: `_<name>_method(native)`.
        python_method = getattr(importlib.import_module(fn.__module__), f"_{op.name}_method", None)
        names = (op.name.rpartition(".")[2],) + op.aliases
        for name in names:
            function = method = fn
            if parser is not None:   # the public forms check their arguments as torch's parser does
                function = _args.bind(fn, parser.renamed(name), on_error=on_error)
                if optable.METHOD in op.forms:
                    method = _args.bind(fn, parser.method(name), method=True, on_error=on_error)
            elif on_error is not None:
                function = method = _reading_nodes_on_error(fn)
            if python_method is not None:
                method = python_method(method)
                if on_error is not None:   # (Tensor.split calls the natives itself)
                    method = _reading_nodes_on_error(method)
            if optable.FUNCTION in op.forms and "." not in op.name:
                globals()[name] = function
            elif optable.FUNCTION in op.forms and function is not fn:   # nn.functional.gelu
                setattr(importlib.import_module(fn.__module__), name, function)
            if optable.METHOD in op.forms:
                setattr(Tensor, name, method)
            if optable.PROPERTY in op.forms:
                setattr(Tensor, name, property(fn))
        if op.inplace:
            # Indexing (scatter_, masked_fill_) and shape (tril_) ops are not elementwise.
            inplace = _ops_inplace.inplace_method(
                fn, op.inplace, comparison=op.kind == optable.COMPARISON,
                elementwise=op.kind not in (optable.INDEXING, optable.SHAPE),
                meta=getattr(importlib.import_module(fn.__module__), f"_{op.name}_meta", None))
            for name in (op.inplace,) + tuple(alias + "_" for alias in op.aliases):   # clip_ for clamp_
                method = inplace if parser is None else _args.bind(inplace, parser.method(name), method=True)
                setattr(Tensor, name, method)
                if name == op.inplace and op.operator in _AUGMENTED_DUNDERS and op.kind != optable.UNARY:
                    setattr(Tensor, _AUGMENTED_DUNDERS[op.operator], method)
        if optable.OPERATOR in op.forms:
            operator = fn if on_error is None else _reading_nodes_on_error(fn)
            if op.kind in (optable.UNARY,) or op.operator in ("~", "abs"):
                setattr(Tensor, _UNARY_DUNDERS[op.operator], operator)
            else:
                forward, reflected, make_reflected = _BINARY_DUNDERS[op.operator]
                setattr(Tensor, forward, _comparison_operator(operator) if reflected is None else operator)
                if reflected:
                    setattr(Tensor, reflected, make_reflected(operator))


_bind_ops()

from . import _fast  # noqa: E402  (it wraps the bound methods)

_fast.install()

from . import autograd, nn, optim  # noqa: E402  (they use the bound ops)

__all__ = ["Tensor", "Size", "tensor", "dtype", "float32", "float64", "int64", "bool", "float",
           "double", "long", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "inference_mode", "is_inference_mode_enabled",
           "autograd", "nn", "optim"] + [
    name for op in optable.OPS if optable.FUNCTION in op.forms and "." not in op.name
    for name in (op.name,) + op.aliases]
