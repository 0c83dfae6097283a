"""Fast Tensor methods for the commonest ops: the per-op Python cost of a chain of them.

`x.tanh()`, `x.exp()`, `x * 0.9`, `x + 0.1` on a float tensor run through three to
five layers of Python (the argument parser's wrapper, the public op, `_unary_float` or
`_binary`, `record`, `_make_tensor`), each checking what the others check too. Each method
here decides with one cheap test that the call is the common case, and then computes and
records in one function what those layers compute and record for it (the same array, node
class, edges, saved tensors and sequence number). Anything else goes to the bound method
it replaces (`slow`), unchanged.

The common case: no arguments besides `self` (and, for an operator, a Python float or int);
`self` a float32 or float64 tensor that is no view, over a plain numpy array (no ZeroTensor)
of at most `_ops._VIA_FLOAT64_MAX_NUMEL` elements or of `_ops._LARGE` elements or more (W2's
256 x 256: the result goes into recycled memory as `_ops._split_result` computes it; the
Python saved is ~7 us of a 16 us `x * 0.5`), an operator's laid out row-major when it has
two dims or more; no inference tensor alive (saving one raises). Grad mode on or off: off,
or with `self` outside the graph, the result is a plain tensor as `record` makes it.

tests/engine/test_fast.py checks each method against its general path.
"""
from __future__ import annotations

import numpy as np

from . import _ops
from ._autograd import NOTHING_SAVED, Node, SavedOutput, _GradMode, _next_seq
from ._dtype import float32, float64
from ._tensor import INFERENCE_TENSORS, Tensor, _make_tensor

_ndarray = np.ndarray
_new = object.__new__
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_MAX = _ops._VIA_FLOAT64_MAX_NUMEL     # (far below _ops._LARGE)
_LARGE, _split_result = _ops._LARGE, _ops._split_result
_INFERENCE = INFERENCE_TENSORS.data    # (a dict: its truth is a cheap emptiness test)
_ERROR_STATE, _IGNORE_ALL, _QUIET = _ops._ERROR_STATE, _ops._IGNORE_ALL, _ops._QUIET
_WRAPPED, _wrapped_number = _ops._WRAPPED, _ops._wrapped_number
_NEEDS_ONE, _NEEDS_FIRST, _NO_EDGE, _NO_META = _ops._NEEDS_ONE, _ops._NEEDS_FIRST, _ops._NO_EDGE, _ops._NO_META
_weakref = _ops._weakref


_PLAIN_BACKWARDS: dict = {}     # op -> its nodes' backward (see _exp_backward), filled by `install`


def _input_edge(self: Tensor):
    """The edge to `self` a recorded op's node takes (None outside the graph)."""
    node = self._grad_fn
    if node is not None:
        return (node, 0)
    if self._requires_grad:
        return (self._accumulator(), 0)
    return None


def _plain(data, dt) -> Tensor:
    """`_tensor._make_tensor(data, dt, False)`, as `record` gives a result outside the graph."""
    return _ops._make_tensor(data, dt, False)


def unary_method(rule, fn, op: str, slow):
    """`self.<op>()` for an op that `_ops._unary_float(op, rule, fn, self)` implements, `fn` a
    ufunc; other calls go to `slow`, the method it replaces."""
    assert (type(fn) is np.ufunc or fn is _ops._sigmoid) and not rule.run_at_once and len(rule.save_plan) <= 1
    via_float64 = op in _ops._VIA_FLOAT64
    assert not via_float64 or type(fn) is np.ufunc
    node_class, backward = rule.node, _PLAIN_BACKWARDS.get(op, rule.backward)
    saved_name = rule.save_plan[0][0] if rule.save_plan else None
    assert saved_name in (None, "result", "self") and (not rule.save_plan or rule.save_plan[0][1] in (None, 0))

    def wide(x):      # `_ops._via_float64` for a small array and a ufunc
        return fn(x, dtype=_F64).astype(_F32)

    def method(self, *args, **kwargs):
        x = self._data
        dt = self.dtype
        if (args or kwargs or type(x) is not _ndarray or self._base is not None
                or (dt is not float32 and dt is not float64) or _INFERENCE):
            return slow(self, *args, **kwargs)
        if x.size > _MAX:
            if x.size < _LARGE:
                return slow(self)
            data = _split_result(fn, x.dtype, x.shape, x)    # (`_ops._unary_float`'s large case)
        elif _ERROR_STATE.get() is _IGNORE_ALL:
            data = fn(x, dtype=_F64).astype(_F32) if via_float64 and dt is float32 else fn(x)
        else:
            data = _QUIET.run(wide if via_float64 and dt is float32 else fn, x)
        if type(data) is not _ndarray:
            data = np.asarray(data)     # (a 0-d input gives a numpy scalar)
        if not _GradMode.enabled:
            return _plain(data, dt)
        producer = self._grad_fn        # (`_input_edge`, spelled out)
        if producer is not None:
            edge = (producer, 0)
        elif self._requires_grad:
            edge = (self._accumulator(), 0)
        else:
            return _plain(data, dt)
        if _GradMode.inference:
            out = _make_tensor(data, dt, True)
        else:                           # (`_make_tensor`, spelled out)
            out = _new(Tensor)
            out._data = data
            out.dtype = dt
            out._requires_grad = True
            out._grad_fn = out._grad = out._acc = out._base = out._view_creation = None
            out._vc = [0]
            out._view_version = 0
        vc = out._vc
        node = _new(Node)       # (as `record` makes it: see there)
        if saved_name is None:
            node.__dict__ = {}
            node._saved = NOTHING_SAVED
        elif saved_name == "result":
            saved = _new(SavedOutput)
            saved._vc, saved._data, saved.dtype, saved._ref = vc, data, dt, _weakref(out)
            node.__dict__ = {"result": data}
            node._saved = (("result", saved, 0),)
        else:
            node.__dict__ = {"self": x}
            node._saved = (("self", self, self._vc[0]),)
        node._seq = _next_seq()
        node._backward = backward
        node.next_functions = (edge,)
        node._input_meta = ((x.shape, dt),)
        node.needs = _NEEDS_ONE
        node._pre_hooks = None
        node._retained = None
        node.__class__ = node_class
        out._grad_fn = node
        return out

    method.__name__ = method.__qualname__ = getattr(slow, "__name__", op)
    method.__doc__, method.__wrapped__ = getattr(slow, "__doc__", None), slow
    return method


def scalar_operator(rule, fn, slow, alpha: bool):
    """`self * number` (`number * self`), or `self + number` with `alpha`: a tensor and a
    Python float or int, as `_ops._binary` / `_ops._add_scaled` record them (the number a
    `WrappedNumber` outside the graph); other operands go to `slow`."""
    assert type(fn) is np.ufunc and not rule.run_at_once
    node_class = rule.node
    backward = _mul_number_backward if rule is _ops._MUL else rule.backward
    # What the rule saves when only the tensor's gradient is wanted: the number ("other"), or nothing.
    saves_other = any(name == "other" and trigger in (None, 0) for name, trigger, _ in rule.save_plan)
    assert all(name == "other" or trigger == 1 for name, trigger, _ in rule.save_plan)

    def operator(self, other):
        x = self._data
        dt = self.dtype
        kind = type(other)
        if ((kind is not float and kind is not int) or type(x) is not _ndarray or self._base is not None
                or (dt is not float32 and dt is not float64) or _INFERENCE
                or (x.ndim > 1 and not x.flags.c_contiguous)):
            return slow(self, other)
        number = _WRAPPED.get((other, dt)) or _wrapped_number(other, dt)
        y = number._data
        if x.size > _MAX:
            if x.size < _LARGE:
                return slow(self, other)
            data = _split_result(fn, dt.np, x.shape, x, y)    # (`_ops._binary`'s large case)
        else:
            data = fn(x, y) if _ERROR_STATE.get() is _IGNORE_ALL else _QUIET.run(fn, x, y)
        if type(data) is not _ndarray:
            data = np.asarray(data)     # (a 0-d input gives a numpy scalar)
        if not _GradMode.enabled:
            return _plain(data, dt)
        producer = self._grad_fn        # (`_input_edge`, spelled out)
        if producer is not None:
            edge = (producer, 0)
        elif self._requires_grad:
            edge = (self._accumulator(), 0)
        else:
            return _plain(data, dt)
        if _GradMode.inference:
            out = _make_tensor(data, dt, True)
        else:                           # (`_make_tensor`, spelled out)
            out = _new(Tensor)
            out._data = data
            out.dtype = dt
            out._requires_grad = True
            out._grad_fn = out._grad = out._acc = out._base = out._view_creation = None
            out._vc = [0]
            out._view_version = 0
        node = _new(Node)       # (as `record` makes it: see there)
        if alpha:
            node.__dict__ = {"alpha": 1}
            node._saved = NOTHING_SAVED
        elif saves_other:
            node.__dict__ = {"other": y}
            node._saved = (("other", number, 0),)
        else:
            node.__dict__ = {}
            node._saved = NOTHING_SAVED
        node._seq = _next_seq()
        node._backward = backward
        node.next_functions = (edge, _NO_EDGE)
        node._input_meta = ((x.shape, dt), _NO_META)
        node.needs = _NEEDS_FIRST
        node._pre_hooks = None
        node._retained = None
        node.__class__ = node_class
        out._grad_fn = node
        return out

    operator.__name__ = operator.__qualname__ = getattr(slow, "__name__", fn.__name__)
    operator.__doc__, operator.__wrapped__ = getattr(slow, "__doc__", None), slow
    return operator


# Backwards of the nodes the fast methods make: in a plain backward (an array gradient, no
# ZeroTensor), what the rule computes for such a node, with fewer calls; else the rule itself.


def _mul_number_backward(ctx, g, general=_ops._MUL.backward):
    """MulBackward0 of `tensor * number` (needs: the tensor's gradient only)."""
    if type(g) is _ndarray and g.size < _LARGE:
        return (g * ctx.other, None)      # (`v_mul`: small)
    return general(ctx, g)


def _exp_backward(ctx, g, general=_ops._EXP.backward):
    if type(g) is _ndarray and g.size < _LARGE:
        return (g * ctx.result,)          # (`v_mul`: small)
    return general(ctx, g)


def _tanh_backward(ctx, g, general=_ops._TANH.backward, _times=_ops._times, one_minus_square=_ops._one_minus_square,
                   _few=_ops._PYTHON_FLOATS_MAX):
    if type(g) is _ndarray and g.size <= _MAX:      # (`v_tanh_backward` of a small result)
        y = ctx.result
        if y.dtype is _F32 and y.ndim == 1 and y.size <= _few:   # (`_one_minus_square`'s first case)
            return (_times(g, np.array([1.0 - v * v for v in y.tolist()], _F32)),)
        return (_times(g, one_minus_square(y)),)
    return general(ctx, g)


def _sin_backward(ctx, g, general=None, rounded=_ops._rounded, cos=np.cos):
    if type(g) is _ndarray and g.size <= _MAX:      # (`v_cos` of a small input: `_via_float64`)
        x = ctx.self
        return (g * (cos(x, dtype=_F64).astype(_F32) if x.dtype is _F32 else rounded(cos, x)),)
    return general(ctx, g)


def install() -> None:
    """Put the fast methods on Tensor in the place of the bound ones (engine/__init__.py, once)."""
    from . import _ops_pointwise as pw
    _sin_backward.__defaults__ = (pw._SIN.backward,) + _sin_backward.__defaults__[1:]
    _PLAIN_BACKWARDS.update(exp=_exp_backward, tanh=_tanh_backward, sin=_sin_backward)
    unary = {"exp": (_ops._EXP, np.exp), "log": (_ops._LOG, np.log), "tanh": (_ops._TANH, np.tanh),
             "neg": (_ops._NEG, np.negative),
             "sin": (pw._SIN, np.sin), "cos": (pw._COS, np.cos), "tan": (pw._TAN, np.tan),
             "expm1": (pw._EXPM1, np.expm1), "log2": (pw._LOG2, np.log2), "log10": (pw._LOG10, np.log10),
             "log1p": (pw._LOG1P, np.log1p), "sqrt": (pw._SQRT, np.sqrt),
             "asin": (pw._ASIN, np.arcsin), "acos": (pw._ACOS, np.arccos), "atan": (pw._ATAN, np.arctan),
             "sigmoid": (_ops._SIGMOID, _ops._sigmoid)}
    for name, (rule, fn) in unary.items():
        setattr(Tensor, name, unary_method(rule, fn, name, vars(Tensor)[name]))
    for dunder in ("__mul__", "__rmul__"):
        setattr(Tensor, dunder, scalar_operator(_ops._MUL, np.multiply, vars(Tensor)[dunder], alpha=False))
    for dunder in ("__add__", "__radd__"):
        setattr(Tensor, dunder, scalar_operator(_ops._ADD, np.add, vars(Tensor)[dunder], alpha=True))
