"""Forward computations and derivative rules of the engine's ops.

Every public op here has an entry of the same name in `optable.py`.

A rule is `backward(ctx, g) -> one gradient (or None) per input`, where `ctx`
holds what the op saved under torch's argument names (`ctx.self`, `ctx.other`,
`ctx.result`), other saved values, and `ctx.needs` (which inputs want a
gradient). Rules are written once for two kinds of values: in a plain
backward, `g` and the saved values are numpy arrays (fast, nothing recorded);
with `create_graph=True` they are tensors and the same arithmetic records a
differentiable graph. So rules use Python operators and the `v_*` helpers,
which dispatch on the kind of value. Rules never undo broadcasting: the
scheduler sums each gradient to its input's shape (`_autograd.sum_to_shape`).
"""
from __future__ import annotations

import contextvars
import math
import numbers
import threading
from weakref import ref as _weakref

import numpy as np

from . import _axpy, _blas, _cpu, _dtype, _memory, _parallel, _sum_order, _zerotensor
from ._autograd import _RUN_AT_ONCE_SEQ, NOTHING_SAVED, BackwardRun, Node, SavedOutput, _GradMode, _next_seq, node_class
from ._tensor import INFERENCE_TENSORS, Tensor, WrappedNumber, _make_tensor, _wrap_dim, is_inference_tensor

# ---------------------------------------------------------------------------------
# Recording machinery
# ---------------------------------------------------------------------------------


class Rule:
    """A differentiable primitive: its torch node name, its backward, what it saves.

    `saves` maps a name ("self", "other", ..., or "result") to the index of the
    input whose requiring grad makes torch save it, or None for always. What is
    saved decides whether a second backward without retain_graph raises, as in torch.
    `native`: torch's formula is one native kernel of the gradient (tanh_backward,
    mse_loss_backward, ...), which sees a ZeroTensor gradient as plain zeros (see
    _zerotensor.materialized); "no_grad_mode": only in a backward without create_graph.
    """

    __slots__ = ("node", "backward", "arg_names", "saves", "save_plan", "run_at_once")

    def __init__(self, name, backward, arg_names=("self",), saves=None, native=False):
        self.node = node_class(name)
        self.run_at_once = self.node._run_at_once   # (read per node: a slot, not a class attribute)
        self.backward = _zerotensor.materialized(backward, native) if native else backward
        self.arg_names = arg_names
        self.saves = saves or {}
        # (name, trigger, input index or None for the result), resolved once. NOTE: torch's
        # generated nodes save, and check at backward, their inputs in the order of their names,
        # then their outputs: which one a version error names when several were modified.
        self.save_plan = tuple((name, trigger, None if name == "result" else arg_names.index(name))
                               for name, trigger in sorted(self.saves.items(),
                                                           key=lambda item: (item[0] == "result", item[0])))


def record(rule: Rule, inputs: tuple, data: np.ndarray, dt, **attrs) -> Tensor:
    """Wrap a forward result and, when grad mode is on and an input requires grad, record the op.

    `inputs` are tensors, or `WrappedNumber`s for Python numbers. `attrs` are values the
    rule reads besides the saved tensors; this call's own dict of them becomes the node's.

    This runs once per op, so it is written for speed: the one- and two-input cases are
    spelled out (no helper calls, no comprehensions, no tuples built where a constant does),
    and the node is made here rather than by `new_node`.
    """
    if type(data) is not np.ndarray and type(data) is not _zerotensor.ZeroArray:
        data = np.asarray(data)        # numpy returns scalars from 0-d computations
    npdt = dt.np
    if data.dtype is not npdt and data.dtype != npdt:
        data = data.astype(npdt)
    if not _GradMode.enabled:
        return _plain(data, dt, inputs)
    for t in inputs:
        # NOTE: a view requires grad when its base does (the base may have started to since).
        if t._requires_grad or (t._base is not None and t._base._requires_grad):
            break
    else:
        return _plain(data, dt, inputs)
    if not dt.is_floating_point and Written.tensor is None:
        # NOTE: torch refuses to record an op with an integral result (an integral input that
        # requires grad was left in a graph by an in-place op: x_int.eq_(y)); in place it records.
        raise RuntimeError(f"Autograd not support dtype: {dt.scalar_name}")
    out = _make_tensor(data, dt, True)   # (its node is set below)
    if data.base is not None and type(data.base) is not _memory._Block:   # (a new recycled array is no view)
        _link_view(out, inputs)
    # NOTE: torch computes an input's gradient, and saves what only that gradient uses, when
    # the input's edge is valid (should_compute_output), not when it requires grad: a view
    # of a leaf made under no_grad requires grad yet has neither node nor accumulator.
    a = inputs[0]
    if a._base is None and a._grad_fn is not None:   # `_edge(a)` for the common input
        edge = (a._grad_fn, 0)
    else:
        edge = _edge(a)
    n = len(inputs)
    if n == 1:
        edges, meta = (edge,), ((a._data.shape, a.dtype),)
        needs = _NEEDS_ONE if edge[0] is not None else _NEEDS_NONE
    elif n == 2:
        b = inputs[1]
        if type(b) is WrappedNumber:     # `tensor op number`: the number is outside the graph
            edges, meta = (edge, _NO_EDGE), ((a._data.shape, a.dtype), _NO_META)
            needs = _NEEDS_FIRST if edge[0] is not None else _NEEDS_NEITHER
        else:
            other_edge = _edge(b)
            edges, meta = (edge, other_edge), ((a._data.shape, a.dtype), (b._data.shape, b.dtype))
            needs = _NEEDS_TWO[edge[0] is not None][other_edge[0] is not None]
    else:
        edges = tuple(map(_edge, inputs))
        meta = tuple((t._data.shape, t.dtype) for t in inputs)
        needs = tuple(edge[0] is not None for edge in edges)
    saved = NOTHING_SAVED
    plan = rule.save_plan
    if plan:
        for name, trigger, index in plan:
            if trigger is None or needs[trigger]:
                if index is None:   # the output: saved without a reference to it (no cycle through the node)
                    t = _new(SavedOutput)   # (SavedOutput(out), without the call of its __init__)
                    t._vc, t._data, t.dtype, t._ref = out._vc, out._data, dt, _weakref(out)
                    saved += ((name, t, out._vc[0]),)
                    t = out
                else:
                    t = inputs[index]
                    saved += ((name, t, t._vc[0]),)   # (plans are short) a saved tensor modified in place later fails backward
                attrs[name] = t._data
        if saved and INFERENCE_TENSORS.data and any(is_inference_tensor(t) for _, t, _ in saved):  # .data: a cheap emptiness test
            raise RuntimeError(
                "Inference tensors cannot be saved for backward. Please do not use Tensors created in "
                "inference mode in computation tracked by autograd. To work around this, you can make a "
                "clone to get a normal tensor and use it in autograd, or use `torch.no_grad()` instead of "
                "`torch.inference_mode()`.")
    # (out's version is the one of its base for a view, which _link_view set as _view_version.)
    # The node, as `new_node` makes it. NOTE (speed): its fields are set while it is a plain Node,
    # and its class (one per op, of the same layout) is given last: CPython specializes an
    # attribute store for one class, which would miss here as ops alternate (~1K instructions).
    node = _new(Node)
    node.__dict__ = attrs
    node._seq = _next_seq() if not rule.run_at_once else _RUN_AT_ONCE_SEQ
    node._backward = rule.backward
    node.next_functions = edges
    node._input_meta = meta
    node.needs = needs
    node._saved = saved
    node._pre_hooks = None
    node._retained = None
    node.__class__ = rule.node
    out._grad_fn = node
    return out


# `needs` of a node by which inputs want a gradient (shared constants: no tuple per node).
_NEEDS_ONE, _NEEDS_NONE = (True,), (False,)
_NEEDS_FIRST, _NEEDS_NEITHER = (True, False), (False, False)
_NEEDS_TWO = ((_NEEDS_NEITHER, (False, True)), (_NEEDS_FIRST, (True, True)))
_new = object.__new__


def _edge(t) -> tuple:
    """The (node, input_nr) pair a node links to for its input `t`: (None, 0) outside the graph."""
    if t._base is not None:
        return t._edge()       # a view's grad_fn may need refreshing first
    if t._grad_fn is not None:
        return (t._grad_fn, 0)
    if t._requires_grad:
        return (t._accumulator(), 0)
    return _NO_EDGE


_NO_EDGE = (None, 0)
_NO_META = (None, None)   # the meta of an edge to no node: never read


def save_for_backward(out: Tensor, name: str, tensor: Tensor) -> None:
    """Save one more tensor in `out`'s node (e.g. the indices output of max), as a rule input
    `ctx.<name>` with its version checked, like the tensors `record` saves."""
    out.grad_fn._save(name, tensor)


def _plain(data, dt, inputs) -> Tensor:
    out = _make_tensor(data, dt, False)
    if data.base is not None:
        _link_view(out, inputs)
        if out._base is not None and out._base._requires_grad and dt.is_floating_point:
            # NOTE: in torch a view made under no_grad of a tensor that requires grad still
            # requires grad, without a grad_fn, and gradients reaching it go nowhere.
            out._requires_grad = True
    return out


def _link_view(out: Tensor, inputs) -> None:
    """Make `out` a view of the input whose memory it shares: same version counter, `_base` set.

    NOTE: in torch a view shares its base's version counter, so modifying either in place
    invalidates what backward saved of the other.
    """
    owner = _memory_owner(out._data)
    for t in inputs:
        if owner is _memory_owner(t._data):
            out._vc = t._vc
            out._base = t if t._base is None else t._base
            out._view_version = t._vc[0]
            # NOTE: a view made with grad mode on of a view made under no_grad (or by a
            # multi-output op) inherits that origin, as torch's propagate_creation_meta.
            inherited = 0 if isinstance(t._view_creation, int) else t._view_creation
            out._view_creation = (inherited if t._base is not None else None) if _GradMode.enabled else "no_grad"
            return


def _memory_owner(array: np.ndarray):
    """The object owning an array's memory: the end of its chain of bases (as_strided views
    hold theirs through a DummyArray, which has a base too)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _scalar_tensor(value, dt) -> Tensor:
    """A Python number taking part in an op as a 0-d tensor (torch's "wrapped number")."""
    return Tensor._make(_number_array(value, dt), dt)


def _number_array(value, dt) -> np.ndarray:
    """A Python number as a 0-d array of `dt`.

    NOTE: torch converts a number beyond float32's range to inf without a warning (numpy warns).
    """
    if dt is _dtype.float32 and not -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
        with _errstate():
            return np.asarray(value, dt.np)
    return np.asarray(value, dt.np)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_number(x) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, Tensor)


class Written:
    """The tensor an in-place method writes into while its op computes (torch's `out`), or None."""

    tensor = None


def _check_output_cast(input, dt) -> None:
    """An in-place op's refusal of a common dtype `dt` that its tensor (`input`) cannot hold.

    NOTE: torch's TensorIterator makes this check as it is built (after broadcasting the
    operands to the output, before the op's own checks and its kernel), for arithmetic ops
    (not comparisons): torch.tensor([True]).add_(0, alpha=0.5) and .floor_divide_(0) raise
    "result type Long can't be cast to the desired output type Bool", not the alpha or
    division-by-zero error. The ops call this where they promote their operands (their
    iterator's build); write_result checks the same again for ops that promote otherwise.
    """
    if input is Written.tensor and input is not None:
        _dtype.check_cast(dt, input.dtype)


def _non_overlapping_and_dense(array: np.ndarray) -> bool:
    """torch's is_non_overlapping_and_dense: the strides are a permutation of contiguous ones."""
    dims = sorted((stride // array.itemsize, n) for n, stride in zip(array.shape, array.strides) if n != 1)
    expected = 1
    for stride, n in dims:
        if stride != expected:
            return False
        expected *= n
    return True


def _assert_no_overlap(a: np.ndarray, b: np.ndarray, partial_only: bool) -> None:
    """torch's refusal to write an array from another that shares its memory: partly (any
    in-place op), or at all (scatter_, index_put_; `partial_only` False).

    NOTE: torch judges only dense layouts; for others it gives up and lets the op run.
    """
    if a is b:
        overlap = "full"
    elif a.base is None and b.base is None or a.size == 0 or b.size == 0 or not np.may_share_memory(a, b):
        # (memory that overlaps is one storage; np.broadcast_to's views reach their base through
        # a DummyArray: fuzzer finding, broadcast_to(0-d, (1,)).mul_(that 0-d) went unrefused)
        return
    elif not (_non_overlapping_and_dense(a) and _non_overlapping_and_dense(b)):
        return
    else:
        a_begin, b_begin = a.__array_interface__["data"][0], b.__array_interface__["data"][0]
        a_end, b_end = a_begin + a.nbytes, b_begin + b.nbytes
        if a_begin == b_begin and a_end == b_end:
            overlap = "full" if a.strides == b.strides else "partial"
        elif a_begin < b_end and b_begin < a_end:
            overlap = "partial"
        else:
            return
    if overlap == "partial" or not partial_only:
        raise RuntimeError("unsupported operation: some elements of the input tensor and the written-to tensor "
                           "refer to a single memory location. Please clone() the tensor before performing the "
                           "operation.")


def _check_tensor(x, op: str, arg: str = "input", position: int = 1):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be Tensor, not {type(x).__name__}")


def _broadcast_shape(a: tuple, b: tuple) -> tuple:
    """Broadcast two shapes, raising torch's message on a mismatch."""
    if a == b:
        return tuple(a)
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = [0] * n
    for i in range(n - 1, -1, -1):    # NOTE: torch reports the first mismatch from the right
        x, y = a[i], b[i]
        if x != y and x != 1 and y != 1:
            raise RuntimeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) at non-singleton dimension {i}")
        out[i] = y if x == 1 else x
    return tuple(out)


def _binary_operands(op: str, input, other, comparison: bool = False, float_result: bool = False):
    """Promote two operands (tensors or Python numbers) to tensors of torch's result dtype.
    An in-place op's tensor must be able to hold it (the default float dtype for integral
    operands of an op with a `float_result`), unless the op is a `comparison`."""
    if isinstance(input, Tensor):
        if isinstance(other, Tensor):
            if input.dtype is other.dtype:   # the common case, without general promotion
                if input._data.shape != other._data.shape:
                    _broadcast_shape(input._data.shape, other._data.shape)
                return input, other, input.dtype
        elif type(other) in (float, int) and input.dtype.is_floating_point:
            dt = input.dtype                 # a weak scalar never changes a float tensor's dtype
            return input, _scalar_tensor(other, dt), dt
    elif not isinstance(other, Tensor):
        raise TypeError(f"{op}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    tensors = [x for x in (input, other) if isinstance(x, Tensor)]
    scalars = []
    for x in (input, other):
        if not isinstance(x, Tensor):
            if not _is_number(x):
                raise TypeError(f"{op}(): argument 'other' (position 2) must be Tensor, not {type(x).__name__}")
            scalars.append(x)
    dt = _dtype.result_type(tensors, scalars)
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        _broadcast_shape(input._data.shape, other._data.shape)
    if not comparison:   # (the fast paths above keep the input's dtype: write_result checks a float result)
        _check_output_cast(input, _float_dtype(dt) if float_result else dt)
    a = input if isinstance(input, Tensor) else _scalar_tensor(input, dt)
    b = other if isinstance(other, Tensor) else _scalar_tensor(other, dt)
    return a, b, dt


def _as(t: Tensor, dt) -> np.ndarray:
    """`t`'s data in `dt`, cast silently as torch casts (a float64 of 1e39 is float32's inf)."""
    return t._data if t.dtype is dt else _cast(t._data, dt.np)


def _cast(data: np.ndarray, npdt) -> np.ndarray:
    """A copy of `data` in `npdt`, cast silently, laid out as torch's (see _cpu.dense_cast)."""
    return _quietly(_cpu.dense_cast, data, npdt)


def _float_dtype(dt):
    """Integral inputs of float-valued ops compute in the default float dtype, as in torch."""
    return dt if dt.is_floating_point else _dtype.default_float


_ABSENT = object()


class _IgnoreFloatingPointErrors:
    """numpy's errstate(all="ignore"), at a tenth of its cost.

    torch never warns about overflow or division by zero, so the engine computes
    with numpy's floating-point warnings off. np.errstate costs microseconds per
    op; setting numpy's error-state context variable directly costs a fraction.
    """

    __slots__ = ("_token",)

    def __enter__(self):
        self._token = _ERROR_STATE.set(_IGNORE_ALL)

    def __exit__(self, *exc):
        _ERROR_STATE.reset(self._token)


def _quietly(fn, x, y=_ABSENT):
    """`fn(x)` or `fn(x, y)` under `_errstate()`, for the hot elementwise ops.

    `fn` runs in a context, made once per thread, whose error state ignores everything:
    entering it costs a fraction of setting and resetting the variable (and fixed arguments
    a fraction of `*args`). Where the error state ignores everything already (inside
    `_errstate()`, a backward, or this function), `fn` is called directly, so the context is
    never entered twice.
    """
    if _ERROR_STATE.get() is _IGNORE_ALL:
        return fn(x) if y is _ABSENT else fn(x, y)
    return _QUIET.run(fn, x) if y is _ABSENT else _QUIET.run(fn, x, y)


class _QuietContext(threading.local):
    """Per thread: `run(fn, *args)` in a copy of the thread's context that ignores
    floating-point errors (a context can be entered by one thread at a time)."""

    def __init__(self):
        context = contextvars.copy_context()
        context.run(_ERROR_STATE.set, _IGNORE_ALL)
        self.run = context.run


try:   # NOTE: numpy >= 2 keeps its error state in this context variable (private API)
    from numpy._core._ufunc_config import _extobj_contextvar as _ERROR_STATE
    with np.errstate(all="ignore"):
        _IGNORE_ALL = _ERROR_STATE.get()
    _errstate = _IgnoreFloatingPointErrors
    _QUIET = _QuietContext()
except ImportError:   # pragma: no cover - other numpy layouts: the public, slower way
    def _errstate():
        return np.errstate(all="ignore")

    def _quietly(fn, x, y=_ABSENT):
        with np.errstate(all="ignore"):
            return fn(x) if y is _ABSENT else fn(x, y)


# ---------------------------------------------------------------------------------
# Value helpers for rules: numpy arrays in a plain backward, tensors with create_graph
# ---------------------------------------------------------------------------------

def v_data(x):
    """The array behind a value (for masks and conditions, which never need a graph)."""
    return x._data if isinstance(x, Tensor) else x


def v_where(condition: np.ndarray, a, b):
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return _where(condition, a, b)
    return np.where(condition, a, b)


def v_masked_zero(x, mask: np.ndarray):
    """`x` with 0 where `mask` holds: a select, so inf * 0 never appears."""
    if isinstance(x, Tensor):
        return _masked_zero(x, mask)
    return _zero_where(mask, x)


# The integer type of each float dtype's width, to zero floats by bit mask (see _zero_where).
_SAME_WIDTH_INT = {np.dtype(np.float32): np.dtype(np.int32), np.dtype(np.float64): np.dtype(np.int64)}


def _zero_where(mask: np.ndarray, x):
    """`np.where(mask, 0, x)`, bit for bit: +0.0 where `mask` holds, `x` (NaN, inf, -0.0
    included) elsewhere.

    For float arrays of the mask's shape it AND-s the bits of `x` with 0 or with all ones,
    several times faster than np.where, whose select loop branches on every element
    (relu and its gradient in an MLP step).
    """
    ints = _SAME_WIDTH_INT.get(x.dtype) if type(x) is np.ndarray else None
    if ints is None or mask.shape != x.shape or mask.dtype != np.bool_:
        return np.where(mask, np.zeros((), x.dtype), x)
    if type(mask) is not np.ndarray or 0 in mask.strides:
        # (a numpy bool, or a broadcast mask, whose cast below would be laid out otherwise)
        keep = np.subtract(mask, 1, dtype=ints)      # True -> 0, False -> -1 (every bit set)
        return np.bitwise_and(x.view(ints), keep).view(x.dtype)
    # The same keep mask and result: a plain cast (laid out as the mask, as np.subtract's result),
    # then a subtraction in place: a third of the time of np.subtract(mask, 1, dtype=ints), whose
    # bool operand is cast in buffers; the result into the mask's memory where it is laid out as
    # `x` (as the result would be).
    keep = mask.astype(ints)
    np.subtract(keep, _INT_ONE[ints], out=keep)
    return np.bitwise_and(x.view(ints), keep, out=keep if keep.strides == x.strides else None).view(x.dtype)


_INT_ONE = {ints: np.ones((), ints) for ints in _SAME_WIDTH_INT.values()}


# Elements up to which relu of a row-major float array is np.maximum(zeros, x) (see _relu_values).
_RELU_BY_MAXIMUM_MAX = 1 << 20
_relu_zeros: dict = {}        # dtype -> read-only flat zeros, grown to the largest use
_maximum_is_relu: dict = {}   # dtype -> whether np.maximum(zeros, x) gave relu's bits (self-check)


def _relu_values(x: np.ndarray) -> np.ndarray:
    """relu's result: `x` unless x < 0 (-0.0 and NaN kept, bit for bit), +0.0 there.

    For a row-major float32/float64 array, np.maximum(zeros, x) in one pass: numpy's maximum of
    two arrays returns its second operand where both are zeros and keeps a NaN operand's bits, so
    maximum(+0.0, -0.0) is -0.0 as torch's relu (np.maximum(x, 0) would give +0.0; and with a
    scalar 0 numpy runs a loop 3-5x slower than over an array of zeros). That is numpy's SIMD
    code's behaviour, not a documented rule: used only where a self-check on hard cases
    (`_check_maximum_is_relu`) found it so; elsewhere the mask-and-bits path (three passes).
    """
    ok = _maximum_is_relu.get(x.dtype) if type(x) is np.ndarray else False
    if ok is None:
        ok = _maximum_is_relu[x.dtype] = _check_maximum_is_relu(x.dtype)
    n = x.size
    if not ok or n > _RELU_BY_MAXIMUM_MAX or not x.flags.c_contiguous:
        return _zero_where(x < 0, x)
    zeros = _relu_zeros.get(x.dtype)
    if zeros is None or zeros.size < n:
        zeros = np.zeros(max(n, 4096), x.dtype)
        zeros.flags.writeable = False
        _relu_zeros[x.dtype] = zeros
    return np.maximum(zeros[:n].reshape(x.shape), x)


def _check_maximum_is_relu(dtype, maximum=np.maximum) -> bool:
    """Whether `maximum(zeros, x)` (numpy's) equals `_zero_where(x < 0, x)` bit for bit on float
    arrays of `dtype` holding signed zeros, NaNs of both signs with payloads, infinities and
    subnormals in numpy's vector blocks and tails (lengths 1 to 40, each its own rotation of
    them, and 1,000). ~1 ms, once per dtype."""
    if dtype not in _SAME_WIDTH_INT:
        return False
    dtype = np.dtype(dtype)
    ints = _SAME_WIDTH_INT[dtype]
    bits = 32 if dtype == np.float32 else 64
    specials = np.array([0.0, -0.0, np.inf, -np.inf, 1.5, -2.5], dtype)
    nans = np.array([(0x7FC00001, 0xFFC12345) if bits == 32 else (0x7FF8000000000001, 0xFFF8000000012345)],
                    np.uint32 if bits == 32 else np.uint64).view(dtype).reshape(-1)
    tiny = np.finfo(dtype).smallest_subnormal
    pool = np.concatenate((specials, nans, np.array([tiny, -tiny], dtype)))
    with np.errstate(all="ignore"):
        for n in (*range(1, 41), 1000):
            x = np.roll(np.resize(pool, n + pool.size), n)[:n]
            got = maximum(np.zeros(n, dtype), x)
            want = _zero_where(x < 0, x)
            if got.dtype != dtype or got.view(ints).tobytes() != want.view(ints).tobytes():
                return False
    return True


def v_zeros_like(x):
    """Zeros shaped like `x`: a constant, outside any graph."""
    zeros = np.zeros(np.shape(x), dtype=v_data(x).dtype)
    return Tensor._make(zeros, x.dtype) if isinstance(x, Tensor) else zeros


def v_log(x):
    return log(x) if isinstance(x, Tensor) else _rounded(np.log, x)


def v_exp(x):
    return exp(x) if isinstance(x, Tensor) else _np_exp(x)


def v_reshape(x, shape, rule=None):
    return _reshape(x, shape, rule or _VIEW) if isinstance(x, Tensor) else x.reshape(shape)


def v_expand(x, shape):
    if isinstance(x, Tensor):
        return _expand(x, shape)
    if type(x) is np.ndarray and x.size == 1:
        # A one-element array (the gradient of a full reduction) as np.broadcast_to makes it
        # (a read-only view, every stride 0) at a fifth of its cost: broadcast_to runs an nditer.
        view = np.ndarray(shape, x.dtype, x, 0, (0,) * len(shape))
        view.setflags(write=False)
        return view
    return np.broadcast_to(x, shape)


def v_transpose(x, dim0: int, dim1: int, rule=None):
    return _transpose(x, dim0, dim1, rule or _TRANSPOSE) if isinstance(x, Tensor) else np.swapaxes(x, dim0, dim1)


def v_t(x):
    if x.ndim < 2:
        return x    # t() of a 0-d or 1-d tensor is the tensor itself
    if isinstance(x, Tensor):
        return _transpose(x, 0, 1, _T)
    t = x.T
    base = t.base
    if (type(base) is np.ndarray and base.shape == t.shape and base.strides == t.strides
            and base.dtype == t.dtype and _starts_at_base(t, base)):
        # (numpy's base is the memory's owner, which may hold other types: a float view of an
        # int array, as _zero_where makes; fuzzer finding: trace -> mm double backward, 1x1)
        # The transpose of a transposed array (a linear layer's weight gradient, computed for
        # weight.t() as v_mm's `transposed` product) is that array: returned as itself rather
        # than as a view of it, AccumulateGrad can adopt it as the weight's .grad (no copy).
        return base
    return t


def _starts_at_base(t: np.ndarray, base: np.ndarray) -> bool:
    """Whether view `t`, of `base`'s shape, strides and dtype, starts where `base` does.

    A contiguous base's elements fill its memory, and a view of it (slicing, or an array over it as a
    buffer, which numpy bounds by its length) lies within it: one of the same non-empty shape and
    strides, whose elements are as many, distinct and laid out alike, can only start at its start.
    Otherwise the data addresses are compared (__array_interface__: a dict built per call, ~1 us;
    three calls per W3 backward)."""
    if t.size and 0 not in t.strides:
        flags = base.flags
        if flags.c_contiguous or flags.f_contiguous:
            return True
    return base.__array_interface__["data"] == t.__array_interface__["data"]


def _diagonal_view(x: np.ndarray, offset: int, dim1: int, dim2: int) -> np.ndarray:
    """np.diagonal(x, offset, dim1, dim2) as a writable view (numpy's is read-only), like torch's view."""
    if offset:
        x = np.moveaxis(np.moveaxis(x, (dim1, dim2), (0, 1))[max(-offset, 0):, max(offset, 0):], (0, 1), (dim1, dim2))
    rest = [i for i in range(x.ndim) if i not in (dim1, dim2)]
    shape = [x.shape[i] for i in rest] + [min(x.shape[dim1], x.shape[dim2])]
    strides = [x.strides[i] for i in rest] + [x.strides[dim1] + x.strides[dim2]]
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=x.flags.writeable)


def v_mm(a, b, transposed: bool = False):
    """a @ b; `transposed` computes a plain-backward product as (b.T @ a.T).T, laid out
    column-major.

    NOTE: torch's mm_mat1_backward / mm_mat2_backward give the gradient of a matrix
    stored transposed (a weight used as `w.t()`) the same layout, so the gradient
    that reaches the weight is row-major like the weight, with no transposing copy.
    """
    if isinstance(a, Tensor):
        return _mm(a, b)
    if _repeats(a, b):
        return _mm_of_repeats(a, b, transposed)
    a, b = _blas_operand(a), _blas_operand(b)
    return _mm_array(b.T, a.T).T if transposed else _mm_array(a, b)


# Inner sizes from which a product of a broadcast gradient computes one row (column) only.
# NOTE: below it, numpy's GEMM (OpenBLAS) sums each product in torch's order (MKL's) for the
# gradient of a sum, `ones(m, k) @ b`: bit for bit up to k = 256 in float64, 4 in float32; a
# matrix-vector product (GEMV) sums in another order (25-88 % of elements differ from k = 4).
# From 512 on, GEMM's blocking of the inner dim differs from MKL's, and 89-100 % of the
# elements differ either way (measured on this project's AVX2 machine).
REPEATS_MIN_INNER = 512


def _repeats(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a @ b of two float matrices repeats one row or one column of products: `a` is
    one row broadcast down (a zero stride along dim 0, as the gradient of a sum) or `b` one
    column broadcast across, over an inner size of `REPEATS_MIN_INNER` or more."""
    return (a.shape[1] >= REPEATS_MIN_INNER and a.dtype is b.dtype and a.dtype.kind == "f"
            and ((a.strides[0] == 0 and a.shape[0] > 1) or (b.strides[1] == 0 and b.shape[1] > 1)))


def _mm_of_repeats(a: np.ndarray, b: np.ndarray, transposed: bool, copy: bool = True) -> np.ndarray:
    """a @ b where `_repeats(a, b)`: the one row (column) of products, each the same sum of
    products as in the whole product (BLAS's summation order aside, as between torch's BLAS and
    numpy's), computed once and copied into every row (column), laid out as v_mm lays it out;
    without `copy`, that row (column) broadcast (read-only).

    NOTE: torch multiplies a broadcast gradient (the gradient of `(x @ w).sum()`) by a full GEMM
    on a contiguous copy; one GEMV and a copy give the same values (W4: 2 of its 6 GEMMs)."""
    if a.strides[0] == 0 and a.shape[0] > 1:
        part = _matmul(_blas_operand(a[:1]), _blas_operand(b))
    else:
        part = _matmul(_blas_operand(a), _blas_operand(b[:, :1]))
    shape = (a.shape[0], b.shape[1])
    if not copy:
        return np.broadcast_to(part, shape)
    out = _memory.empty(shape[::-1], a.dtype).T if transposed else _memory.empty(shape, a.dtype)
    np.copyto(out, part)
    return out


def _blas_operand(a: np.ndarray) -> np.ndarray:
    """A matrix BLAS can take: a broadcast one (the gradient of a sum) has zero strides, for
    which numpy would fall back to its own, slower loop; it is made row-major."""
    if 0 not in a.strides:
        return a
    out = _memory.empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of two matrices, the product written into recycled memory (see _memory)."""
    if a.ndim == 2 and b.ndim == 2 and a.dtype is b.dtype:
        return np.matmul(a, b, out=_memory.empty((a.shape[0], b.shape[1]), a.dtype))
    return a @ b


def _mm_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of two matrices as torch's mm (and addmm) computes it.

    NOTE: torch's mm of an inner size of 1 with more than one row and column gives the exact
    products, so a zero product keeps its sign (-0.0); numpy's GEMM, and torch's own
    matrix-vector path (one row or one column), bmm, mv and dot sum it into +0.0 (fuzzer
    finding: rsqrt of matmul(zeros(2, 2, 1), -ones(1, 3)) was +inf in the engine, -inf in torch).
    """
    if a.shape[1] == 1 and a.shape[0] > 1 and b.shape[1] > 1 and a.dtype.kind == "f" and a.dtype is b.dtype:
        return np.multiply(a, b, out=_memory.empty((a.shape[0], b.shape[1]), a.dtype))
    out = _blas.mm(a, b)     # (small products in torch's BLAS's order of additions)
    return _matmul(a, b) if out is None else out


def _is_transposed(a: np.ndarray) -> bool:
    """Whether a matrix is stored column-major (a transposed view), as torch's stride checks see it."""
    flags = a.flags
    return flags.f_contiguous and not flags.c_contiguous


def v_mv(a, v):
    return _mv(a, v) if isinstance(a, Tensor) else _mv_array(a, v)


def v_bmm(a, b):
    return _bmm(a, b) if isinstance(a, Tensor) else _bmm_array(a, b)


def _mv_array(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """a @ v as torch's mv computes it (see _blas.mv)."""
    out = _blas.mv(a, v)
    return a @ v if out is None else out


def _bmm_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of two batches as torch's bmm computes it (see _blas.bmm)."""
    out = _blas.bmm(a, b)
    return a @ b if out is None else out


# ---------------------------------------------------------------------------------
# Internal differentiable helpers (used by rules and composites; not public ops yet)
# ---------------------------------------------------------------------------------

# The scheduler casts every gradient to its input's dtype, so a conversion passes g on.
_TO = Rule("ToCopyBackward0", lambda ctx, g: (g,))


def _to(t: Tensor, dt) -> Tensor:
    # NOTE: torch casts silently: inf and NaN to int64 are INT64_MIN (as numpy's cast on
    # x86), 1e300 to float32 is inf; numpy would warn.
    data = _cast(t._data, dt.np)
    if not dt.is_floating_point:
        return Tensor._make(data, dt)     # integer results leave the graph
    return record(_TO, (t,), data, dt)


def _reshape_backward(ctx, g):
    return (v_reshape(g, ctx.self_shape),)


_VIEW = Rule("ViewBackward0", _reshape_backward)
_UNSAFE_VIEW = Rule("UnsafeViewBackward0", _reshape_backward)
_UNSQUEEZE = Rule("UnsqueezeBackward0", _reshape_backward)
_SQUEEZE_DIM = Rule("SqueezeBackward1", _reshape_backward)
_SQUEEZE_INPLACE = Rule("SqueezeBackward4", _reshape_backward)


def _reshape(t: Tensor, shape, rule: Rule = _VIEW) -> Tensor:
    out = record(rule, (t,), t._data.reshape(shape), t.dtype, self_shape=t._data.shape)
    if rule is _UNSAFE_VIEW or rule is _SQUEEZE_INPLACE:
        # NOTE: torch's _unsafe_view makes a tensor that is not a view, and matmul squeezes
        # its product in place (squeeze_, version 1): the input is an intermediate no one sees.
        out._base, out._vc = None, [1 if rule is _SQUEEZE_INPLACE else 0]
    return out


_RESHAPE_ALIAS = Rule("ReshapeAliasBackward0", _reshape_backward)


def _viewable(data: np.ndarray, shape: tuple) -> bool:
    """Whether `data` can take `shape` without a copy (torch's computeStride, as numpy's)."""
    try:
        np.reshape(data, shape, copy=False)
    except ValueError:
        return False
    return True


def _reshape_as_torch(input: Tensor, shape: tuple) -> Tensor:
    """torch.reshape's choice by layout.

    NOTE: torch's reshape is a view (ViewBackward0) of a contiguous tensor, an aliasing
    view (ReshapeAliasBackward0) of a non-contiguous one whose strides allow it, and
    otherwise a contiguous copy viewed unsafely (UnsafeViewBackward0 -> CloneBackward0).
    """
    data = input._data
    if data.flags.c_contiguous:
        return _reshape(input, shape, _VIEW)
    if _viewable(data, shape):
        return _reshape(input, shape, _RESHAPE_ALIAS)
    return _reshape(_clone(input), shape, _UNSAFE_VIEW)


# The scheduler sums the expanded dims back to the input's shape.
_EXPAND = Rule("ExpandBackward0", lambda ctx, g: (g,))


def _expand(t: Tensor, shape) -> Tensor:
    # A writable view, as torch's: fill_ and zero_ may write through it (see _ops_inplace.check_writable).
    view = np.lib.stride_tricks.as_strided(t._data, tuple(shape), _expand_strides(t._data, tuple(shape)),
                                           writeable=t._data.flags.writeable)
    return record(_EXPAND, (t,), view, t.dtype)


def _expand_strides(x: np.ndarray, shape: tuple) -> tuple:
    """NOTE: torch's expand strides (inferExpandGeometry), which tril_ reads: an expanded dim
    gets 0, a kept dim its stride (also of size 1, where numpy's broadcast gives 0), a new
    leading dim of size 1 the size times the stride of the dim after it (0 for a 0-d tensor)."""
    strides = [0] * len(shape)
    lead = len(shape) - x.ndim
    for i in reversed(range(len(shape)) if x.ndim else ()):
        if i >= lead:
            strides[i] = x.strides[i - lead] if x.shape[i - lead] == shape[i] else 0
        elif shape[i] == 1:
            strides[i] = shape[i + 1] * strides[i + 1]
    return tuple(strides)


_TRANSPOSE = Rule("TransposeBackward0", lambda ctx, g: (v_transpose(g, ctx.dim0, ctx.dim1),))
_T = Rule("TBackward0", lambda ctx, g: (v_t(g),))


def _transpose(t: Tensor, dim0: int, dim1: int, rule: Rule = _TRANSPOSE) -> Tensor:
    return record(rule, (t,), np.swapaxes(t._data, dim0, dim1), t.dtype, dim0=dim0, dim1=dim1)


_CLONE = Rule("CloneBackward0", lambda ctx, g: (g,))


def _clone(t: Tensor) -> Tensor:
    return record(_CLONE, (t,), t._data.copy(), t.dtype)


_COPY = Rule("torch::autograd::CopyBackwards", lambda ctx, g: (None, g), ("self", "src"))


def _copy(t: Tensor) -> Tensor:
    """A differentiable copy of `t` (torch's clone that obeys the gradient layout contract)."""
    return record(_COPY, (Tensor._make(np.empty((), t.dtype.np), t.dtype), t), t._data.copy(), t.dtype)


_THRESHOLD_BACKWARD = Rule("ThresholdBackwardBackward0", lambda ctx, g: (v_masked_zero(g, ctx.mask),))


def _masked_zero(t: Tensor, mask: np.ndarray) -> Tensor:
    return record(_THRESHOLD_BACKWARD, (t,), _zero_where(mask, t._data), t.dtype, mask=mask)


def v_masked_fill(x, mask: np.ndarray):
    """`x` with 0 where `mask` holds, as torch's formulas write it: x.masked_fill(mask, 0)
    (node MaskedFillBackward0 under create_graph; v_masked_zero's node is relu's)."""
    if isinstance(x, Tensor):
        return record(_MASKED_FILL, (x,), _zero_where(mask, x._data), x.dtype, mask=mask)
    return _zero_where(mask, x)


_MASKED_FILL = Rule("MaskedFillBackward0", lambda ctx, g: (v_masked_fill(g, ctx.mask),))


_WHERE = Rule("WhereBackward0",
              lambda ctx, g: (v_where(ctx.condition, g, 0) if ctx.needs[0] else None,
                              v_where(ctx.condition, 0, g) if ctx.needs[1] else None),
              ("input", "other"))


def _where(condition, input, other) -> Tensor:
    """Elementwise select: `input` where `condition` (a bool tensor or array) holds, else `other`.

    The public `where` (in _ops_pointwise.py) validates its arguments and calls this.
    """
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    a, b, dt = _binary_operands("where", input, other)
    _broadcast_shape(np.shape(cond), _broadcast_shape(a._data.shape, b._data.shape))   # torch's broadcast error first
    data = _iterator_layout(np.where(cond, _as(a, dt), _as(b, dt)), cond, a._data, b._data)
    out = record(_WHERE, (a, b), data, dt, condition=cond)
    if isinstance(condition, Tensor) and out.grad_fn is not None:
        save_for_backward(out, "condition", condition)   # NOTE: torch saves the condition
    return out


# ---------------------------------------------------------------------------------
# Elementwise unary ops
# ---------------------------------------------------------------------------------

def _unary_float(op: str, rule: Rule, fn, input) -> Tensor:
    if isinstance(input, Tensor) and input.dtype.is_floating_point:   # the common case, checks passed
        dt = input.dtype
        x = input._data
    else:
        _check_tensor(input, op)
        if input.dtype is _dtype.bool_ and op in ("relu", "neg"):
            raise RuntimeError(_BOOL_UNARY_MESSAGES[op])
        dt = _float_dtype(input.dtype) if op not in ("relu", "neg") else input.dtype
        x = _as(input, dt)
    if x.size >= _LARGE and (type(fn) is np.ufunc or fn is _sigmoid):
        return record(rule, (input,), _split_result(fn, x.dtype, x.shape, x), dt)
    # (`_quietly` spelled out: this runs once per op)
    if dt is _dtype.float32 and op in _VIA_FLOAT64:
        data = _via_float64(fn, x) if _ERROR_STATE.get() is _IGNORE_ALL else _QUIET.run(_via_float64, fn, x)
    else:
        data = fn(x) if _ERROR_STATE.get() is _IGNORE_ALL else _QUIET.run(fn, x)
    return record(rule, (input,), data, dt)


# Elements from which an elementwise result is computed into an array allocated for it, in
# torch's layout and recycled memory (see _memory), and split over threads when larger still
# (see _parallel).
_LARGE = 1 << 16


def _split_result(kernel, dtype, shape: tuple, *operands) -> np.ndarray:
    """`kernel(*operands, out=result)` into a new array laid out as torch lays out the result,
    computed in blocks over threads (see _parallel): for large elementwise results."""
    out = _empty_result(shape, dtype, operands)
    with _errstate():
        return _parallel.split(kernel, out, *operands)


def _large_result(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether x op y has `_LARGE` elements or more: an operand has, or their broadcast has
    (W5's (128, 1, 64) * (1, 32, 64)). Callers test x.size * y.size >= _LARGE first, which
    every large result passes and small operands (one multiply) fail."""
    return x.size >= _LARGE or y.size >= _LARGE or math.prod(_broadcast_shape(x.shape, y.shape)) >= _LARGE


def _row_major_result(shape: tuple, *operands) -> bool:
    """Whether numpy lays out an elementwise result of `shape` over `operands` row-major, as
    torch does: every operand is row-major (or 0-d, or one value broadcast everywhere). The
    backward helpers split large computations where the layout is known thus."""
    for a in operands:
        if type(a) is not np.ndarray or not (a.flags.c_contiguous or not any(a.strides)):
            return False
    return True


# NOTE: torch's float32 transcendental kernels (SLEEF, 1-ulp) round almost always as the
# exact value does; numpy's float32 loops trade accuracy for speed and differ from torch on
# 10-50 % of inputs. Computing these in float64 and rounding once agrees with torch on ~99 %.
# That matters on small tensors (the fuzzer's have at most 64 elements), where a 1-ulp
# difference early in a program can be amplified into a divergence; it costs 5-15x the
# float32 loop. Above _VIA_FLOAT64_MAX_NUMEL elements numpy's float32 loop is used: its results
# are within 4 ulp of torch's (tests/engine/test_pointwise.py), well inside float32's
# comparison tolerance (rtol 1.3e-6, about 11 ulp), and torch's own results on large tensors are
# not those of its small-tensor path bit for bit either (SIMD chunks vs scalar tail; its
# vectorized float32 sinh and cosh overflow above 88.72, its scalar ones, like numpy's loop
# and the float64 route, above 89.41).
_VIA_FLOAT64 = {"exp", "log", "tanh", "expm1", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos", "atan",
                "sinh", "cosh"}
_VIA_FLOAT64_MAX_NUMEL = 4096


def _via_float64(fn, x: np.ndarray) -> np.ndarray:
    """fn of a float32 array, computed in float64 and rounded once to float32 (small arrays only,
    see _VIA_FLOAT64)."""
    if x.size > _VIA_FLOAT64_MAX_NUMEL:
        return fn(x)
    if type(fn) is np.ufunc:
        # One call fewer than the copy below, bit for bit (the input cast to float64 is exact),
        # and laid out as it: the ufunc allocates its result by the same rule.
        return fn(x, dtype=_F64).astype(_F32)
    return fn(_float64_copy(x)).astype(_F32)


def _float64_copy(x: np.ndarray) -> np.ndarray:
    """`x` in float64, laid out as any op's result. NOTE: a ufunc's copy follows the layout
    rule of numpy's other results (torch's, for an expanded input: contiguous); astype and
    asarray order an expanded input's dims by stride, transposed (fuzzer finding: contiguous()
    of the exp of an expanded tensor recorded a copy)."""
    return np.positive(x, dtype=np.float64)


# numpy's float dtypes as dtype objects: comparing an array's dtype with one (by identity first)
# costs a fraction of comparing it with the scalar type np.float32.
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _is_f32(a: np.ndarray) -> bool:
    return a.dtype is _F32 or a.dtype == _F32


_BOOL_UNARY_MESSAGES = {
    "relu": "Boolean inputs not supported for relu",
    "neg": "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
           "invert a mask, use the `~` or `logical_not()` operator instead.",
}

_NEG = Rule("NegBackward0", lambda ctx, g: (-g,))
_EXP = Rule("ExpBackward0", lambda ctx, g: (v_mul(g, ctx.result),), saves={"result": None})
_LOG = Rule("LogBackward0", lambda ctx, g: (g / ctx.self,), saves={"self": None})
# NOTE: torch's threshold_backward passes the gradient where result > 0 and where the result
# is NaN, and gives exactly 0 (not NaN for an infinite gradient) at and below 0: relu'(0) = 0.
_RELU = Rule("ReluBackward0", lambda ctx, g: (v_threshold_backward(g, ctx.result),), saves={"result": None})

_THRESHOLD_BACKWARD_2 = Rule("ThresholdBackwardBackward0",
                             lambda ctx, g: (v_masked_zero(g, ctx.mask), v_zeros_like(g) if ctx.needs[1] else None),
                             ("grad_output", "self"))


def v_threshold_backward(g, result):
    # NOTE: torch's native backward kernels (threshold_backward, tanh_backward, sigmoid_backward)
    # see a ZeroTensor gradient as plain zeros (checked here, not by Rule(native=True): hot paths).
    mask = v_data(result) <= 0
    if isinstance(g, Tensor):
        return record(_THRESHOLD_BACKWARD_2, (g, result), _zero_where(mask, _zerotensor.plain_array(g._data)),
                      g.dtype, mask=mask)
    if type(g) is not np.ndarray:
        g = _zerotensor.plain_array(g)
    return v_masked_zero(g, mask)


# NOTE: torch's tanh_backward is g * (1 - y * y) and sigmoid_backward g * (1 - y) * y. With
# create_graph each is one node (TanhBackwardBackward0, SigmoidBackwardBackward0) whose own
# derivatives are torch's: in g, the same backward; in y, gg * (-2 * y * g) for tanh and
# gg * g * (-2 * y + 1) for sigmoid (not the derivative of the product, which gives
# inf - inf = nan where torch's formula gives inf).
_TANH = Rule("TanhBackward0", lambda ctx, g: (v_tanh_backward(g, ctx.result),), saves={"result": None})
_SIGMOID = Rule("SigmoidBackward0", lambda ctx, g: (v_sigmoid_backward(g, ctx.result),), saves={"result": None})
_TANH_BACKWARD = Rule("TanhBackwardBackward0",
                      lambda ctx, gg: (v_tanh_backward(gg, ctx.output) if ctx.needs[0] else None,
                                       gg * (-2 * ctx.output * ctx.grad_output) if ctx.needs[1] else None),
                      ("grad_output", "output"), saves={"output": None, "grad_output": 1})
_SIGMOID_BACKWARD = Rule("SigmoidBackwardBackward0",
                         lambda ctx, gg: (v_sigmoid_backward(gg, ctx.output) if ctx.needs[0] else None,
                                          gg * ctx.grad_output * (-2 * ctx.output + 1) if ctx.needs[1] else None),
                         ("grad_output", "output"), saves={"output": None, "grad_output": 1})


# 1 as a 0-d array of each float dtype: in a plain backward, numpy combines it with an array of
# its dtype several times faster than the Python number 1, with the same result.
_ONE = {np.dtype(np.float32): np.ones((), np.float32), np.dtype(np.float64): np.ones((), np.float64)}


# Elements up to which a tiny 1-d float64 computation runs on Python floats (see _one_minus_square).
_PYTHON_FLOATS_MAX = 16


def _one_minus_square(y: np.ndarray) -> np.ndarray:
    """1 - y * y rounded once in float32.

    NOTE: torch's tanh_backward kernel computes 1 - y * y with a fused multiply-add (one
    rounding), on small and large tensors alike; float32 products are exact in float64, so
    this agrees with it (numpy's two float32 roundings agree on ~40 % of inputs).
    """
    if _is_f32(y):
        if y.ndim == 1 and y.size <= _PYTHON_FLOATS_MAX:
            # Python's float arithmetic is IEEE double's, as numpy's float64 loops (same bits),
            # at half the cost of four numpy calls on a few elements.
            return np.array([1.0 - v * v for v in y.tolist()], _F32)
        wide = y.astype(_F64)     # a new array: the arithmetic runs in it, without temporaries
        np.multiply(wide, wide, wide)     # (out given by position: keywords cost a call ~1K instructions)
        np.subtract(_ONE[_F64], wide, wide)
        return wide.astype(_F32)
    square = y * y
    if type(square) is np.ndarray:
        return np.subtract(_ONE.get(y.dtype, 1), square, out=square)
    return _ONE.get(y.dtype, 1) - square


def _times(g, r: np.ndarray):
    """g * r, written into r when r is a temporary that can hold the product (same shape and
    dtype, not 0-d: numpy gives 0-d products as scalars); large backward computations then
    allocate one array instead of one per operation."""
    if type(g) is np.ndarray and r.ndim and g.shape == r.shape and g.dtype is r.dtype:
        return np.multiply(g, r, r)     # (out by position: a keyword costs a call ~1K instructions)
    return g * r


def v_tanh_backward(g, y):
    if isinstance(g, Tensor):
        return record(_TANH_BACKWARD, (g, y), _zerotensor.plain_array(g._data) * _one_minus_square(y._data),
                      g.dtype)
    if type(g) is not np.ndarray:   # (see v_threshold_backward)
        g = _zerotensor.plain_array(g)
    if y.size >= _LARGE and _splits_like(g, y):
        return _split_result(_tanh_backward_into, y.dtype, y.shape, g, y)
    return _times(g, _one_minus_square(y))


def _tanh_backward_into(g, y, out):
    """g * (1 - y * y) into `out`, with _one_minus_square's rounding (float32: y widened into a
    reused float64 scratch array, squared there exactly, 1 minus the squares rounded into `out`).

    NOTE: numpy's float32 <-> float64 casts cost ~2.7 instructions an element against ~0.7 for
    a multiply, so the passes are chosen by the casts they run: np.square(y, wide, dtype=float64)
    runs a buffered cast inside the square (335K instructions on 256 x 256, callgrind), a plain
    widening copy and an in-place float64 multiply 273K; the narrowing subtract costs what a
    float64 subtract and a narrowing copy cost together. Same operations, same bits."""
    if not _is_f32(y):
        np.multiply(y, y, out)     # (`out` as the temporary: no array allocated per call)
        np.subtract(_ONE.get(y.dtype, 1), out, out)
        return np.multiply(g, out, out)
    wide = _parallel.scratch(y.shape, _F64)
    np.copyto(wide, y)
    np.multiply(wide, wide, wide)
    np.subtract(_ONE[_F64], wide, out, casting="same_kind")
    return np.multiply(g, out, out)


_parallel.costly(_tanh_backward_into)


def _splits_like(g, y: np.ndarray) -> bool:
    """Whether a backward helper's g * f(y) can be computed in blocks over threads with the
    values and layout of one call: g an array of y's shape and dtype, both row-major."""
    return type(g) is np.ndarray and g.shape == y.shape and g.dtype is y.dtype and _row_major_result(y.shape, g, y)


def v_mul(a, b):
    """a * b, for values of rules: a large product of arrays of one dtype is computed in
    blocks over threads."""
    if (type(a) is np.ndarray and type(b) is np.ndarray and (a.size >= _LARGE or b.size >= _LARGE)
            and a.dtype is b.dtype):
        shape = a.shape if a.shape == b.shape else _broadcast_shape(a.shape, b.shape)
        if _row_major_result(shape, a, b):
            return _split_result(np.multiply, a.dtype, shape, a, b)
    return a * b


def v_sigmoid_backward(g, y):
    if isinstance(g, Tensor):
        return record(_SIGMOID_BACKWARD, (g, y), _zerotensor.plain_array(g._data) * (1 - y._data) * y._data, g.dtype)
    if type(g) is not np.ndarray:   # (see v_threshold_backward)
        g = _zerotensor.plain_array(g)
    if y.size >= _LARGE and _splits_like(g, y):
        return _split_result(_sigmoid_backward_into, y.dtype, y.shape, g, y)
    one_minus = 1 - y
    if type(one_minus) is not np.ndarray:
        return g * one_minus * y
    product = _times(g, one_minus)     # (g * (1 - y)) * y, torch's order
    return np.multiply(product, y, out=product) if product is one_minus else product * y


def _sigmoid_backward_into(g, y, out):
    np.subtract(1, y, out=out)
    np.multiply(g, out, out=out)     # (g * (1 - y)) * y, torch's order
    return np.multiply(out, y, out=out)


def _sigmoid(x, out=None):
    """1 / (1 + exp(-x)), into `out` when given (as a ufunc).

    exp(-x) overflows to inf for very negative x, giving exactly 0, as torch does."""
    x = np.asarray(x)
    if out is None and (x.ndim == 0 or (_is_f32(x) and x.size <= _VIA_FLOAT64_MAX_NUMEL)):
        return 1 / (1 + _np_exp(-x))
    e = np.negative(x, out=out)     # a large array: computed in this one array
    np.exp(e, out=e)
    np.add(e, 1, out=e)
    return np.divide(1, e, out=e)


_parallel.costly(_sigmoid)
_parallel.costly(_sigmoid_backward_into)


def _np_exp(x):
    """np.exp, rounded as torch's kernel rounds (see _VIA_FLOAT64)."""
    return _rounded(np.exp, x)


def _rounded(fn, x):
    """A numpy transcendental function, rounded as torch's kernel rounds (see _VIA_FLOAT64)."""
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    return _via_float64(fn, x) if _is_f32(x) else fn(x)


def neg(input) -> Tensor:
    return _unary_float("neg", _NEG, np.negative, input)


def exp(input) -> Tensor:
    return _unary_float("exp", _EXP, np.exp, input)


def log(input) -> Tensor:
    return _unary_float("log", _LOG, np.log, input)


def relu(input) -> Tensor:
    # NOTE: torch's relu keeps x unless x < 0, so relu(-0.0) is -0.0 (np.maximum gives +0.0).
    return _unary_float("relu", _RELU, _relu_values, input)


def tanh(input) -> Tensor:
    return _unary_float("tanh", _TANH, np.tanh, input)


def sigmoid(input) -> Tensor:
    return _unary_float("sigmoid", _SIGMOID, _sigmoid, input)


# ---------------------------------------------------------------------------------
# Elementwise binary ops
# ---------------------------------------------------------------------------------

def _arithmetic_operands(op: str, input, other, float_result: bool = False):
    """`_binary_operands` for add, sub, mul and div, whose nodes take a Python number as a
    `WrappedNumber` (an operand outside the graph, cheaper than a tensor)."""
    if type(other) in _WEAK_NUMBERS and isinstance(input, Tensor) and input.dtype.is_floating_point:
        if type(input._data) is _zerotensor.ZeroArray:
            # NOTE: torch's ZeroTensor kernels of add, sub, mul and div promote a Python number
            # as a 0-d tensor of its own dtype (no longer a wrapped number): a 0-d float32
            # ZeroTensor times 2.0 is float64.
            other = _scalar_tensor(other, _dtype.wrapped_number_dtype(other))
        else:
            dt = input.dtype                 # a weak scalar never changes a float tensor's dtype
            return input, _WRAPPED.get((other, dt)) or _wrapped_number(other, dt), dt
    return _binary_operands(op, input, other, float_result=float_result)


_WEAK_NUMBERS = (float, int)   # exact types: a bool is not weak the same way


def _iterator_layout(data: np.ndarray, *operands: np.ndarray) -> np.ndarray:
    """`data`, an elementwise result over `operands` (numpy arrays in torch's argument order),
    laid out in memory as torch's TensorIterator lays out its output.

    NOTE: torch orders the dims by the strides of the first operand that tells two dims apart
    (a broadcast dim tells nothing; equal strides put the smaller dim innermost); numpy
    falls back to row-major order when its operands disagree (x.t() + y: torch's result is
    transposed, numpy's contiguous). The layout decides whether a later reshape is a view
    (ViewBackward0) or a copy (UnsafeViewBackward0), and whether view() refuses.
    """
    if data.ndim < 2 or all(a.flags.c_contiguous for a in operands):
        return data
    out = _empty_result(data.shape, data.dtype, operands)
    out[...] = data
    return out


def _empty_result(shape: tuple, dtype, operands) -> np.ndarray:
    """An uninitialized elementwise result over `operands` (numpy arrays in torch's argument
    order), laid out as torch's TensorIterator lays out its output (see _iterator_layout)."""
    ndim = len(shape)
    for a in operands:
        if not a.flags.c_contiguous:
            break
    else:
        return _memory.empty(shape, dtype)
    if ndim < 2:
        return _memory.empty(shape, dtype)
    order = _cpu.iterator_order(shape, [_cpu.iterator_strides(a, shape) for a in operands])   # outermost first
    return _memory.empty([shape[d] for d in order], dtype).transpose(np.argsort(order))


def _wrapped_number(value, dt) -> WrappedNumber:
    """`value` as a WrappedNumber of `dt`, made once per (value, dtype): programs reuse their
    constants (`y * 0.9` in a loop), and a WrappedNumber never changes (its array is read-only).

    Zeros are not cached: 0.0 and -0.0 are one key of a dict. NaNs miss (nan != nan) and are
    made anew. The cache is emptied when it grows large (programs with ever new numbers).
    """
    key = (value, dt)
    wrapped = _WRAPPED.get(key)
    if wrapped is None:
        array = _number_array(value, dt)
        array.flags.writeable = False
        wrapped = WrappedNumber(array, dt)
        if value != 0:
            if len(_WRAPPED) >= _WRAPPED_MAX:
                _WRAPPED.clear()
            _WRAPPED[key] = wrapped
    return wrapped


_WRAPPED: dict = {}
_WRAPPED_MAX = 1024


def _binary(op: str, rule: Rule, fn, input, other, float_result: bool = False) -> Tensor:
    """An elementwise op of two operands in their promoted dtype (the default float dtype
    for integral operands when `float_result`)."""
    a, b, dt = _arithmetic_operands(op, input, other, float_result)
    if float_result and not dt.is_floating_point:
        dt = _dtype.default_float
    # (A cast may overflow, a 0-d float64 operand of 1e39 to float32's inf: torch does not warn.)
    x = a._data if a.dtype is dt else _quietly(_zerotensor.cast, a._data, dt.np)
    y = b._data if b.dtype is dt else _quietly(_zerotensor.cast, b._data, dt.np)
    if x.size * y.size >= _LARGE and _large_result(x, y):
        return record(rule, (a, b), _split_result(fn, dt.np, _broadcast_shape(x.shape, y.shape), x, y), dt)
    data = fn(x, y) if _ERROR_STATE.get() is _IGNORE_ALL else _QUIET.run(fn, x, y)   # (`_quietly` spelled out)
    return record(rule, (a, b), _iterator_layout(data, x, y) if data.ndim > 1 else data, dt)


_ADD = Rule("AddBackward0", lambda ctx, g: (g, g if ctx.alpha == 1 else g * ctx.alpha), ("self", "other"))
_SUB = Rule("SubBackward0", lambda ctx, g: (g, (-g if ctx.alpha == 1 else -g * ctx.alpha) if ctx.needs[1] else None),
            ("self", "other"))
_RSUB = Rule("RsubBackward1", lambda ctx, g: (-g,))
_MUL = Rule("MulBackward0",
            lambda ctx, g: (v_mul(g, ctx.other) if ctx.needs[0] else None,
                            v_mul(g, ctx.self) if ctx.needs[1] else None),
            ("self", "other"), saves={"other": 0, "self": 1})


def _in_result_dtype(x, g):
    """A saved operand as torch's backward formulas compute with it: by torch's promotion with the
    gradient (of the result's dtype). NOTE: a 0-d operand of another dtype (of the same category)
    is cast to the gradient's dtype when the gradient has dims; numpy would promote the arithmetic
    to the 0-d array's dtype (and its overflow with it). An operand with dims promotes as usual: the
    float32 result of an in-place x.div_(y) by a float64 y gets y's gradient in float64 (campaign seed
    18: -1e60, not float32's -inf, for y = 1e-30)."""
    if isinstance(g, Tensor):
        return x
    x = np.asarray(x)
    if x.ndim > 0 and x.dtype.kind == g.dtype.kind == "f" and x.dtype.itemsize > g.dtype.itemsize:
        return x
    return x.astype(g.dtype, copy=False)


def _neg_grad_times(x, g):
    """`-g * x` as torch's C++ derivative formulas (`-grad * x`) build it: x first (the caller
    computes it, as this call's argument), then -g, then the product.

    NOTE: GCC evaluates an overloaded operator's operands right to left, so under create_graph
    the nodes that make x are created before NegBackward0, and a further backward, which runs
    later-created nodes first, runs them after it: the order in which gradients accumulate,
    and so their rounding, follows (fuzzer finding, campaign seed 16:
    addcdiv(x0, x1, x1, value=2)'s second gradient, 0 in torch, 1.5e-5 when -g came first).
    Python evaluates `-g * x` left to right."""
    return -g * x


def _div_backward(ctx, g):
    # NOTE: torch's div_tensor_other_backward computes -g * ((self / other) / other), in that
    # order, in the result's dtype (fuzzer finding: eye(3) / a float64 1e-30 overflows float32).
    # (torch's generated DivBackward0 computes other's gradient before self's)
    other = _in_result_dtype(ctx.other, g)
    other_grad = _neg_grad_times((_in_result_dtype(ctx.self, g) / other) / other, g) if ctx.needs[1] else None
    return (g / other if ctx.needs[0] else None, other_grad)


_DIV = Rule("DivBackward0", _div_backward, ("self", "other"), saves={"other": None, "self": 1})
_RECIPROCAL = Rule("ReciprocalBackward0", lambda ctx, g: (_neg_grad_times(ctx.result * ctx.result, g),),
                   saves={"result": None})


def _check_bool_sub(input, other):
    """torch refuses subtraction with a bool operand (tensor or Python bool)."""
    def is_bool(x):
        return x.dtype is _dtype.bool_ if isinstance(x, Tensor) else isinstance(x, bool)
    if is_bool(input) and is_bool(other):   # NOTE: torch counts a Python bool as a bool tensor here
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. "
            "Use the `^` or `logical_xor()` operator instead.")
    if is_bool(input) or is_bool(other):
        raise RuntimeError(_BOOL_SUB_MESSAGE)


_BOOL_SUB_MESSAGE = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                     "to invert a mask, use the `~` or `logical_not()` operator instead.")


def _check_alpha(alpha, dt) -> None:
    if not dt.is_floating_point and isinstance(alpha, float):
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    if isinstance(alpha, bool) and dt is not _dtype.bool_:
        raise RuntimeError("Boolean alpha only supported for Boolean results.")


# The 29 bits a float64 has beyond a float32's 24, the pattern of a float64 exactly halfway between
# two float32 numbers, and the smallest normal float32 (below it, float32 keeps fewer bits).
_FLOAT32_DROPPED_BITS, _FLOAT32_HALFWAY, _FLOAT32_NORMAL_MIN = (1 << 29) - 1, 1 << 28, 2.0 ** -126
# Elements per block of a float32 fused multiply-add over row-major operands: the block's two
# float32 temporaries and mask (576 KB) stay in the core's cache over the ~7 passes made on them.
# From _FMA_SPLIT_MIN elements on the blocks are computed on the engine's threads
# (_parallel.split), as torch splits its add over its threads. Each block is ~8 numpy calls, so a
# split thread takes the GIL back ~8 times per block, at a thread hand-off each time the other
# thread holds it. Measured idle on this project's 2-CPU machine with the float64 kernel before
# this one (_fma in place, one thread / split over two): 64K elements 0.22-0.29 / 0.46-0.53 ms,
# 200K (W3's weight) 0.59-0.65 / 0.92-1.17, 1M 3.5-4.3 / 3.4-4.1, 4M 20.8-21.2 / 15.8-17.4.
_FMA_BLOCK = 1 << 16
_FMA_SPLIT_MIN = 1 << 21
# Below this many elements the float64 computation alone takes fewer numpy calls than the float32
# bounds and the float64 computation where they differ (idle-ish, one thread: 256 elements 13 us
# against 32 us, 2,560 21 against 37, 8,192 38 against 45, 32,768 122 against 112).
_FMA_BOUNDED_MIN = 1 << 14


def _fma(a, b, c, out=None):
    """a * b + c rounded once, as the fused multiply-add torch's compiled kernels use: float32
    through float64 (where the product is exact), float64 from the exact product (Dekker's
    split) and sum (Knuth's two-sum), where finite.

    `out`, when given, is an array of the result's shape and dtype the result is written into
    (and returned); it may be one of the operands, but must not overlap one otherwise.
    """
    a, b, c = np.asarray(a), np.asarray(b), np.asarray(c)
    dt = np.result_type(a, b, c)
    if dt == np.float32:
        shape = c.shape
        if not ((a.shape == shape or not a.ndim) and (b.shape == shape or not b.ndim)):
            shape = np.broadcast_shapes(a.shape, b.shape, shape)
        if not shape:    # (numpy gives 0-d results as scalars)
            result = _fma(a.reshape(1), b.reshape(1), c.reshape(1)).reshape(())
        elif (all(x.size == 1 or (x.shape == shape and x.flags.c_contiguous) for x in (a, b, c))
              and (out is None or out.flags.c_contiguous)):
            # Row-major operands (or single values), as an optimizer's: by the BLAS's axpy where
            # one factor is a single value, else computed block by block into the (recycled,
            # row-major) result.
            if out is None:
                out = _memory.empty(shape, np.float32)
            if _fma_by_axpy(a, b, c, out):
                return out
            _parallel.split(_fma_float32_blocks, out.reshape(-1),
                            *(x.reshape(()) if x.size == 1 else x.reshape(-1) for x in (a, b, c)),
                            min_numel=_FMA_SPLIT_MIN)
            return out
        else:
            result = _fma_float32_exact(a, b, c)
    else:
        if (dt == np.float64 and c.size and c.flags.c_contiguous
                and (out is None or out.flags.c_contiguous)
                and all(x.size == 1 or (x.shape == c.shape and x.flags.c_contiguous) for x in (a, b))):
            result = _memory.empty(c.shape, np.float64) if out is None else out
            if _fma_by_axpy(a, b, c, result):
                return result
        product = a * b
        plain = product + c
        nan = np.isnan(product)
        if nan.any():   # (the product's NaN, also where c is a NaN: see _fma_float32_exact)
            plain = np.where(nan, product, plain)
        split = 134217729.0   # 2**27 + 1
        ta, tb = split * a, split * b
        a_hi, b_hi = ta - (ta - a), tb - (tb - b)
        a_lo, b_lo = a - a_hi, b - b_hi
        product_error = ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
        virtual = plain - product
        sum_error = (product - (plain - virtual)) + (c - virtual)
        error = sum_error + product_error
        exact = plain + error
        result = np.where(np.isfinite(exact) & (error != 0), exact, plain)   # (plain keeps a zero's sign)
    if out is None:
        return result
    out[...] = result
    return out


def _fma_by_axpy(a, b, c, out) -> bool:
    """_fma into `out` by the BLAS's axpy (_axpy.fused: one fused multiply-add per element), where
    one of a and b is a single nonzero value, the other and c row-major arrays of out's shape (or
    c a single value) of out's dtype, and out does not overlap the array factor; False where not
    (out then unchanged).

    The elements the BLAS's whole blocks leave (a tail, or a small array) go through one more
    block, padded (`_axpy.fused_rest`). Per element one pass (two where out is not c: c is copied
    into it first)."""
    if a.size == 1:
        a, b = b, a
    if b.size != 1 or a.size == 1 or out.dtype != a.dtype or not a.flags.c_contiguous:
        return False
    alpha = b.reshape(())[()]
    if not alpha:
        return False   # (0 * inf is NaN, and -0.0 + 0 * x +0.0: BLAS axpy skips alpha 0)
    x, y = a.reshape(-1), out.reshape(-1)
    if not _axpy.usable(y.dtype) or np.may_share_memory(x, y):
        return False
    if c is not out:
        np.copyto(y, c.reshape(-1) if c.size == y.size else c.reshape(()))
    alpha = float(alpha)
    done = y.size - y.size % _axpy._UNIT
    if done:
        _axpy.fused(alpha, x, y, done)
    if done < y.size:
        _axpy.fused_rest(alpha, x, y, done)
    return True


def _fma_float32_exact(a, b, c) -> np.ndarray:
    """_fma of float32 operands (arrays that broadcast together, or numbers) in float64.

    The float64 product is exact and the float64 sum is rounded once. Rounding that sum to
    float32 rounds the exact sum once too, unless the float64 sum landed exactly halfway between
    two float32 numbers (its 29 low bits 1 followed by zeros) or lies where float32 has fewer
    bits (subnormal): only there is it rounded to odd (nudged to an odd last bit when inexact),
    which makes the second rounding go the exact sum's way.
    """
    product = np.atleast_1d(np.multiply(a, b, dtype=np.float64))   # (an array also of numbers)
    total = np.add(product, c, dtype=np.float64)
    nan = np.isnan(product)
    if nan.any():
        # NOTE: torch's fused kernel gives a NaN product's payload to the result, also where c is
        # a NaN; numpy's sum of two NaNs keeps the first's in its SIMD loops, the second's in
        # its scalar loops (an array's last few elements).
        np.copyto(total, product, where=nan)
    suspect = _float32_double_rounding_suspects(total, np.empty_like(total, dtype=np.int64))
    if suspect.any():
        _round_to_odd(total, product, c, suspect)
    return total.astype(np.float32)


def _fma_float32_blocks(a, b, c, *, out) -> None:
    """_fma of float32 operands into `out`, a 1-d array; each operand is 1-d like it or 0-d.

    In float32 arithmetic first: the product p = a * b rounded to float32 is within half a unit
    in the last place of the exact product, so p moved one unit away from zero (`upper`) and one
    towards it (`lower`, stepping through the bits) bracket the exact product strictly.
    Rounding is monotone, so the exact result, the rounded c + a * b, lies between the rounded
    c + lower and c + upper; where those two agree, it is that value. Only where they differ
    (~1 % of W3's SGD step: where the sum lies near a rounding boundary) is the result computed
    in float64 (_fma_float32_exact), once per call for all blocks. A product of zero (its lower
    bound's bits are NaN's), an infinity or NaN compares unequal and is computed exactly too. A
    sum of two float32 numbers is zero only when exact, and the bounds differ, so equal bounds
    are never zeros of different signs. Per element 7 float32 passes and no float64 conversion:
    W3's 200K-weight step 3.55M -> 2.11M instructions (callgrind), 0.65 -> 0.52 ms at load 6
    (the float64 kernel before: 3 conversions, 2 float64 passes and 4 for its checks).
    """
    n = out.size
    if not n:   # (fuzzer finding: x.sub(x, alpha=2) of an empty diagonal)
        return
    a, b, c = (v[()] if v.ndim == 0 else v for v in (a, b, c))   # (numbers: numpy's scalar loops)
    if n < _FMA_BOUNDED_MIN:
        with _errstate():
            out[...] = _fma_float32_exact(*((b, a) if a.ndim == 0 else (a, b)), c)
        return
    size = min(n, _FMA_BLOCK)
    upper, lower, high = (_memory.empty((size,), np.float32) for _ in range(3))
    differ = np.empty(size, np.bool_)
    found = []   # per block with differing bounds: their indices in `out` and operands there
    with _errstate():   # (a bound may overflow, or step onto a signalling NaN's bits)
        for start in range(0, n, size):
            stop = min(start + size, n)
            m = stop - start
            x, y, z = (v if v.ndim == 0 else v[start:stop] for v in (a, b, c))
            hi, lo, sum_hi, flag = upper[:m], lower[:m], high[:m], differ[:m]
            np.multiply(x, y, out=lo)
            bits = lo.view(np.int32)
            np.add(bits, 1, out=hi.view(np.int32))
            np.subtract(bits, 1, out=bits)
            np.add(z, hi, out=sum_hi)
            np.add(z, lo, out=lo)
            np.not_equal(sum_hi, lo, out=flag)
            index = np.flatnonzero(flag)
            if index.size:
                found.append((index + start, *(v if v.ndim == 0 else v[index] for v in (x, y, z))))
            # (computed again into `out`, which may be c, once c's values where the bounds differ
            # are taken: an add costs a sixth of a copy's instructions, and as much time)
            np.add(z, hi, out=out[start:stop])
        if found:
            index, x, y, z = found[0] if len(found) == 1 else (
                np.concatenate(parts) if parts[0].ndim else parts[0] for parts in zip(*found))
            if x.ndim == 0:
                x, y = y, x   # (the array first, as the float64 product was always taken)
            out[index] = _fma_float32_exact(x, y, z)


def _float32_double_rounding_suspects(total, scratch):
    """Where rounding `total`, a float64 array, to float32 could round twice: halfway between two
    float32 numbers, or where float32 is subnormal. `scratch` is an int64 array of its shape."""
    np.bitwise_and(total.view(np.int64), _FLOAT32_DROPPED_BITS, out=scratch)
    suspect = np.equal(scratch, _FLOAT32_HALFWAY)
    suspect |= np.less(np.abs(total, out=scratch.view(np.float64)), _FLOAT32_NORMAL_MIN)
    return suspect


def _round_to_odd(total, product, addend, suspect) -> None:
    """Round `total`, the float64 sum of `product` (exact) and `addend` (each of its shape or a
    single value), to odd where `suspect`: nudged to an odd last bit where the sum was inexact."""
    shape = total.shape
    p = np.broadcast_to(product, shape)[suspect]
    t = total[suspect]
    virtual = t - p
    error = (p - (t - virtual)) + (np.broadcast_to(addend, shape)[suspect] - virtual)
    inexact = (error != 0) & np.isfinite(t) & ((t.view(np.int64) & 1) == 0)
    total[suspect] = np.where(inexact, np.nextafter(t, np.where(error > 0, np.inf, -np.inf)), t)


def _add_scaled(op: str, rule: Rule, fn, input, other, alpha) -> Tensor:
    """input (+ or -) alpha * other, in the promoted dtype (alpha 1 skips the product)."""
    a, b, dt = _arithmetic_operands(op, input, other)
    if alpha != 1 or isinstance(alpha, (bool, float)):
        _check_alpha(alpha, dt)
    x = a._data if a.dtype is dt else _as(a, dt)
    y = b._data if b.dtype is dt else _as(b, dt)
    if alpha == 1 and x.size * y.size >= _LARGE and _large_result(x, y):
        return record(rule, (a, b), _split_result(fn, dt.np, _broadcast_shape(x.shape, y.shape), x, y), dt,
                      alpha=alpha)
    if alpha == 1:
        data = fn(x, y) if _ERROR_STATE.get() is _IGNORE_ALL else _QUIET.run(fn, x, y)   # (`_quietly` spelled out)
    else:
        # NOTE: torch's kernel is one fused multiply-add, x + alpha * y rounded once (3e38 - 2 *
        # 3e38 is -3e38 in float32, not -inf). Its sub is add with -alpha, negated as the Python
        # number it is: with alpha 0 (an int) the product is +0.0, so -0.0 - 0 * y is +0.0.
        scale = np.asarray(-alpha if fn is np.subtract else alpha, dt.np)
        with _errstate():
            data = _fma(y, scale, x) if dt.is_floating_point else np.add(x, y * scale)
    return record(rule, (a, b), _iterator_layout(data, x, y) if data.ndim > 1 else data, dt, alpha=alpha)


def add(input, other, *, alpha=1) -> Tensor:
    return _add_scaled("add", _ADD, np.add, input, other, alpha)


def sub(input, other, *, alpha=1) -> Tensor:
    _check_bool_sub(input, other)
    return _add_scaled("sub", _SUB, np.subtract, input, other, alpha)


def _sub_meta(input, other, *, alpha=1) -> None:
    """sub_ refuses bool operands before it broadcasts them, as torch's sub_check."""
    _check_bool_sub(input, other)


def rsub(input: Tensor, other) -> Tensor:
    """`other - input`: the `number - tensor` operator (torch's rsub, node RsubBackward1)."""
    if isinstance(other, Tensor):
        return sub(other, input)
    _check_bool_sub(other, input)
    a, _, dt = _binary_operands("rsub", input, other)
    with _errstate():
        data = np.subtract(np.asarray(other, dt.np), _as(a, dt))
    return record(_RSUB, (a,), data, dt)


def mul(input, other) -> Tensor:
    return _binary("mul", _MUL, np.multiply, input, other)


# NOTE: an explicit rounding_mode (even None) records DivBackward2; with 'trunc' or
# 'floor' its gradient is exactly zero (see _ops_pointwise._div_rounded).
_DIV_MODE_NONE = Rule("DivBackward2", _DIV.backward, ("self", "other"), saves={"other": None, "self": 1})
_OMITTED = object()


def div(input, other, *, rounding_mode=_OMITTED) -> Tensor:
    if rounding_mode is _OMITTED or rounding_mode is None:
        rule = _DIV if rounding_mode is _OMITTED else _DIV_MODE_NONE
        return _binary("div", rule, np.true_divide, input, other, float_result=True)
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{rounding_mode}'")
    from ._ops_pointwise import div_rounding   # the rounded divisions live with floor_divide
    return div_rounding(input, other, rounding_mode)


def rdiv(input: Tensor, other) -> Tensor:
    """`other / input`: the `number / tensor` operator.

    NOTE: torch's `number / tensor` operator computes tensor.reciprocal() * number
    (nodes MulBackward0 -> ReciprocalBackward0), unlike torch.div(number, tensor).
    """
    if isinstance(other, Tensor):
        return div(other, input)
    return mul(_reciprocal(input), other)


def _reciprocal(input: Tensor) -> Tensor:
    dt = _float_dtype(input.dtype)
    with _errstate():
        data = np.reciprocal(_as(input, dt))
    return record(_RECIPROCAL, (input,), data, dt)


# pow: three nodes, by which side is a Python number.
# NOTE: torch's pow_backward returns zeros for a zero exponent (even at base 0, where the
# formula would give 0 * inf = nan), and pow_backward_exponent gives 0 where base == 0 and
# exponent >= 0 (instead of result * log(0) = 0 * -inf).

def _pow_scalar_backward(ctx, g):
    if ctx.exponent == 0:
        return (v_zeros_like(ctx.self),)
    return (g * (v_pow_number(ctx.self, ctx.exponent - 1) * ctx.exponent),)


def _pow_tensor_backward(ctx, g):
    base, exponent = ctx.self, ctx.exponent
    # NOTE: torch computes both gradients in the result's dtype (after `exponent - 1`).
    def cast(x):
        return _in_result_dtype(x, g)
    grad_base = grad_exponent = None
    # (torch's generated backward computes the gradients in the sorted order of the argument
    # names: exponent's first; see _neg_grad_times)
    if ctx.needs[1]:
        at_zero = (v_data(base) == 0) & (v_data(exponent) >= 0)
        # NOTE: torch's pow_backward_exponent takes the log of the base promoted with the exponent
        # (float64 for a float32 base's pow_ by a float64 exponent with dims).
        log_of = cast(base)
        if not isinstance(g, Tensor):
            exponent_data = np.asarray(exponent)
            if exponent_data.ndim > 0 and exponent_data.dtype.kind == log_of.dtype.kind == "f" \
                    and exponent_data.dtype.itemsize > log_of.dtype.itemsize:
                log_of = log_of.astype(exponent_data.dtype)
        grad_exponent = g * v_where(at_zero, 0, ctx.result * v_log(log_of))
    if ctx.needs[0]:
        if v_data(exponent).dtype == np.bool_:
            # NOTE: torch's pow_backward_self computes `exponent - 1`, which a bool tensor refuses.
            raise RuntimeError(_BOOL_SUB_MESSAGE)
        with _errstate():
            grad_base = v_where(v_data(exponent) == 0, 0,
                                g * (cast(exponent) * cast(base) ** cast(exponent - 1)))
    return grad_base, grad_exponent


def _pow_number_base_backward(ctx, g):
    at_zero = (ctx.base == 0) & (v_data(ctx.exponent_tensor) >= 0)
    with _errstate():
        log_base = float(np.log(ctx.base))   # nan for a negative base, -inf for 0
    return (g * v_where(at_zero, 0, ctx.result * log_base),)


_POW_SCALAR = Rule("PowBackward0", _pow_scalar_backward, saves={"self": None})
# NOTE: torch saves an op's result unconditionally (its codegen guards only saved inputs), so
# PowBackward1 holds its result even when only the base needs a gradient: an in-place op on it
# then fails backward ("output 0 of Pow1").
_POW_TENSOR = Rule("PowBackward1", _pow_tensor_backward, ("self", "exponent"),
                   saves={"self": None, "exponent": None, "result": None})
_POW_NUMBER_BASE = Rule("PowBackward2", _pow_number_base_backward, ("exponent_tensor",),
                        saves={"exponent_tensor": None, "result": None})


def _check_pow_kernel(dt):
    # NOTE: torch's pow kernels of a tensor exponent have no bool variant (a bool tensor to a
    # number power has one: pow(b, True) is b).
    if dt is _dtype.bool_:
        raise NotImplementedError('"pow" not implemented for \'Bool\'')


def _check_integer_power(base_dt, exponent_values):
    if not base_dt.is_floating_point and np.any(np.asarray(exponent_values) < 0):
        raise RuntimeError("Integers to negative integer powers are not allowed.")


def _integer_power(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer x ** y elementwise, as torch's powi (wrapping around on overflow, as numpy).

    NOTE: torch refuses negative exponents only as a number (_check_integer_power); a tensor
    of them gives 1 for base 1, -1 or 1 for base -1 (odd or even exponent), else 0 (0 too).
    """
    negative = y < 0
    data = np.power(x, np.where(negative, 0, y))
    if negative.any():
        data = np.where(negative, np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 0, 1, -1), 0)), data)
    return data


# NOTE: torch computes a floating tensor to these number powers with other kernels (sqrt,
# rsqrt, reciprocal, products), whose signed zeros and infinities differ from IEEE pow:
# pow(-0.0, -0.5) is -inf and pow(-inf, -0.5) is nan.
_POW_KERNELS = {0.5: np.sqrt, -0.5: lambda x: 1 / np.sqrt(x), -1: np.reciprocal,
                2: lambda x: x * x, 3: lambda x: x * x * x, -2: lambda x: 1 / (x * x)}


def _np_pow_elementwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """np.power as C's pow at every element. NOTE: numpy computes an array to a broadcast
    exponent 0.5 as sqrt (pow(-inf, 0.5) is nan, pow(-0.0, 0.5) is -0.0); torch's pow of two
    tensors is std::pow throughout (inf, 0.0), so the exponent is spelled out in full, laid out
    as the base (fuzzer finding: x.pow_(tensor(0.5)) of -inf)."""
    shape = np.broadcast_shapes(x.shape, y.shape)
    if not shape:   # (as one element, rounded as below: campaign seed 10, pow(x, x) of a 0-d float32)
        return _np_pow_elementwise(x.reshape(1), y.reshape(1)).reshape(())
    # (A broadcast base lays nothing out: numpy would order the exponents' dims by its zero
    # strides; fuzzer finding: pow of a (4, 3) base to a (2, 1, 1) exponent came out permuted.)
    exponents = np.empty_like(x, dtype=y.dtype) if x.shape == shape else np.empty(shape, dtype=y.dtype)
    exponents[...] = y
    if x.dtype == _F32 and exponents.size <= _VIA_FLOAT64_MAX_NUMEL:
        # NOTE: torch's float32 pow (glibc's powf, SLEEF's) is the float64 power rounded once;
        # numpy's float32 power can be an ulp off (3.897 ** 2.8468: 48.05371, torch 48.053707),
        # which a steep op after it (sin, tan) turns into a gradient difference.
        return np.power(_float64_copy(x), exponents.astype(_F64)).astype(_F32)
    return np.power(x, exponents)


def v_pow_number(x, exponent):
    """x ** exponent for a number exponent, with torch's kernels for a floating array."""
    if isinstance(x, Tensor):
        return pow(x, exponent)
    with _errstate():
        return _pow_number_array(x, exponent)


def _pow_number_array(x: np.ndarray, exponent) -> np.ndarray:
    """x ** exponent for an array and a number, as torch's pow_tensor_scalar kernels compute it.

    NOTE: for float32 torch's generic kernel is `std::pow(base, double(exponent))` in its scalar
    op, which computes in double, and SLEEF's powf of `float(exponent)` in its vector op: the two
    differ where the exponent is not a float32 (pow(1e-30, -1.2123379260) is 2.3449727e36 in
    the scalar op, 2.3449799e36 in the vector op; fuzzer finding: pow's gradient, which is a
    power to `exponent - 1`). Which element took which op is the loop's choice (_cpu).
    """
    special = _POW_KERNELS.get(exponent) if x.dtype.kind == "f" else None
    if special is not None:
        return special(x)
    if not _is_f32(x) or x.size > _VIA_FLOAT64_MAX_NUMEL:
        return np.power(x, np.asarray(exponent, x.dtype))
    wide = _float64_copy(x)
    data = np.power(wide, np.float64(exponent)).astype(_F32)
    vector = _cpu.vector_loop_mask(x)
    if vector.any():
        data[vector] = np.power(wide[vector], np.float64(np.float32(exponent))).astype(_F32)
    return data


def pow(input, exponent) -> Tensor:
    if isinstance(input, Tensor) and isinstance(exponent, Tensor):
        a, b, dt = _binary_operands("pow", input, exponent)
        _check_pow_kernel(dt)
        with _errstate():
            data = (_np_pow_elementwise if dt.is_floating_point else _integer_power)(_as(a, dt), _as(b, dt))
        return record(_POW_TENSOR, (a, b), _iterator_layout(data, a._data, b._data), dt)
    if isinstance(input, Tensor):
        if not _is_number(exponent):
            raise TypeError(f"pow(): argument 'exponent' must be Tensor or Number, not {type(exponent).__name__}")
        dt = _dtype.result_type([input], [exponent])
        if not dt.is_floating_point:
            _check_integer_power(dt, exponent)
        with _errstate():
            data = _pow_number_array(_as(input, dt), exponent)
        return record(_POW_SCALAR, (input,), data, dt, exponent=exponent)
    if not _is_number(input):
        raise TypeError(f"pow(): argument 'input' must be Tensor or Number, not {type(input).__name__}")
    _check_tensor(exponent, "pow", "exponent", 2)
    dt = _dtype.result_type([exponent], [input])
    _check_pow_kernel(dt)
    with _errstate():
        power = np.power if dt.is_floating_point else _integer_power
        data = power(np.asarray(input, dt.np), _as(exponent, dt))
    if data.ndim > 1 and not data.flags.c_contiguous:
        # NOTE: torch's pow(Scalar, Tensor) allocates its result contiguous (pow_Scalar's meta
        # passes no strides), whatever the exponent's layout.
        data = np.ascontiguousarray(data)
    return record(_POW_NUMBER_BASE, (exponent,), data, dt, base=input)


# ---------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------

def _reduction_dims(dim, ndim: int):
    """Normalized dims of a reduction, or None for all; torch's errors for bad dims."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if not dims:
        return None        # NOTE: torch reduces over every dim when given an empty dim list
    wrapped = _wrap_dims(dims, ndim)
    return wrapped if ndim else None


def _wrap_dims(dims, ndim: int) -> tuple:
    """Wrapped dims, with torch's error for a dim given twice."""
    out = []
    for d in dims:
        w = _wrap_dim(d, ndim)
        if w in out:
            raise RuntimeError(f"dim {w} appears multiple times in the list of dims")
        out.append(w)
    return tuple(out)


def _reduce_backward(ctx, g):
    """Gradient of sum (and, scaled, of mean): put the reduced dims back and expand."""
    if type(g) is np.ndarray and g.size > 1 and not any(g.strides):
        # One value everywhere (a gradient expanded from a full reduction's, as W5's mean(dim=0)
        # gets it): scaled once and expanded again, it stays one value, and the ops it reaches
        # (the sum of the gradients of an input used twice) add one value, in one long loop,
        # instead of a row of the gradient per element of the dims the reduction put back.
        one = g[(slice(0, 1),) * g.ndim]
        return (v_expand(one / ctx.count if ctx.count is not None else one, ctx.self_shape),)
    if (g.shape if type(g) is np.ndarray else np.shape(g)) != ctx.keep_shape:
        g = v_reshape(g, ctx.keep_shape)
    if ctx.count is not None:
        if isinstance(g, Tensor):
            # (torch's mean_backward expands, then divides: the nodes in that order)
            return (v_expand(g, ctx.self_shape) / ctx.count,)
        g = g / ctx.count
    return (v_expand(g, ctx.self_shape),)


_SUM_ALL = Rule("SumBackward0", _reduce_backward)
_SUM_DIM = Rule("SumBackward1", _reduce_backward)
_MEAN_ALL = Rule("MeanBackward0", _reduce_backward)
_MEAN_DIM = Rule("MeanBackward1", _reduce_backward)


def _reduce(op: str, input, dim, keepdim: bool, mean: bool) -> Tensor:
    _check_tensor(input, op)
    x = input._data
    if mean:
        # NOTE: torch's mean refuses an integral input before it reads the dims (even repeated
        # or out of range ones).
        if not input.dtype.is_floating_point:
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating point "
                f"or complex dtype. Got: {input.dtype.scalar_name}")
        dt = input.dtype
    else:
        dt = input.dtype if input.dtype.is_floating_point else _dtype.int64
    dims = _reduction_dims(dim, x.ndim)
    axes = dims if dims is not None else tuple(range(x.ndim))
    keep = keepdim and dim is not None
    count = math.prod([x.shape[i] for i in axes]) if mean else None
    with _errstate():
        # NOTE: torch's float sums add in their own order (_cpu.full_sum over every element,
        # _sum_order.dims_sum over some dims), which decides how cancellations round (fuzzer
        # findings: a float32 loss an ulp off, then exp'd; campaign seed 27: a broadcast
        # gradient summed over two dims, 0.0 in torch, -2.6 in numpy's order); where the engine
        # does not follow it (more than _cpu._GRAIN_SIZE elements) the sum is numpy's.
        # (np.add.reduce is what np.sum runs for an array, without its Python-level dispatch.)
        data = None
        if dt.is_floating_point and x.dtype == dt.np:
            data = _cpu.full_sum(x, dt.np) if len(axes) == x.ndim else None
            if data is None:
                data = _sum_order.dims_sum(x, axes)
                if data is not None and not keep:
                    data = data.reshape([n for i, n in enumerate(x.shape) if i not in axes])
            elif keep:
                data = data.reshape((1,) * x.ndim)
        if data is None:
            data = np.add.reduce(x, axis=axes, dtype=dt.np, keepdims=keep)
        if mean:
            # np.mean's arithmetic, without its warning for a mean of nothing (NaN in torch, silently)
            data = np.true_divide(data, count)
    keep_shape = (1,) * x.ndim if dims is None else tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    full = dim is None
    rule = (_MEAN_ALL if full else _MEAN_DIM) if mean else (_SUM_ALL if full else _SUM_DIM)
    return record(rule, (input,), data, dt, dims=dims, keepdim=keep, keep_shape=keep_shape,
                  self_shape=x.shape, count=count)




def sum(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce("sum", input, dim, keepdim, mean=False)


def mean(input, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce("mean", input, dim, keepdim, mean=True)


# ---------------------------------------------------------------------------------
# Matrix products
# ---------------------------------------------------------------------------------

_DOT = Rule("DotBackward0",
            lambda ctx, g: (g * ctx.tensor if ctx.needs[0] else None,
                            g * ctx.self if ctx.needs[1] else None),
            ("self", "tensor"), saves={"tensor": 0, "self": 1})
_MV = Rule("MvBackward0",
           lambda ctx, g: (v_reshape(g, (-1, 1), _UNSQUEEZE) * v_reshape(ctx.vec, (1, -1), _UNSQUEEZE)
                           if ctx.needs[0] else None,
                           v_mv(v_t(ctx.self), g) if ctx.needs[1] else None),
           ("self", "vec"), saves={"vec": 0, "self": 1})


def _mm_backward(ctx, g):
    if isinstance(g, Tensor) or 0 not in g.strides:
        return (v_mm(g, v_t(ctx.mat2), ctx.self_transposed) if ctx.needs[0] else None,
                v_mm(v_t(ctx.self), g, ctx.mat2_transposed) if ctx.needs[1] else None)
    # A broadcast gradient: a product that repeats one row or column computes that one
    # (_mm_of_repeats); for the others it is made BLAS-ready once.
    mat2_t = v_t(ctx.mat2) if ctx.needs[0] else None
    self_t = v_t(ctx.self) if ctx.needs[1] else None
    g0 = g if mat2_t is not None and _repeats(g, mat2_t) else None
    g1 = g if self_t is not None and _repeats(self_t, g) else None
    if (mat2_t is not None and g0 is None) or (self_t is not None and g1 is None):
        dense = _blas_operand(g)
        g0, g1 = g0 if g0 is not None else dense, g1 if g1 is not None else dense
    if g0 is g and BackwardRun.plain:
        child = ctx.next_functions[0][0]
        if type(child) is type(ctx) and not child._pre_hooks and child._retained is None:
            # NOTE: self's gradient goes to another mm's backward only (self is a product of a
            # chain of products, `(x @ w) @ v`), which nothing else sees in a plain backward: its
            # repeated row is passed on unexpanded, and that backward computes one row of x's
            # gradient in turn (W4: 3 of its 6 GEMMs); torch's gradient there is a contiguous copy.
            return (_mm_of_repeats(g0, mat2_t, ctx.self_transposed, copy=False),
                    v_mm(self_t, g1, ctx.mat2_transposed) if ctx.needs[1] else None)
    return (v_mm(g0, mat2_t, ctx.self_transposed) if ctx.needs[0] else None,
            v_mm(self_t, g1, ctx.mat2_transposed) if ctx.needs[1] else None)


_MM = Rule("MmBackward0", _mm_backward, ("self", "mat2"), saves={"mat2": 0, "self": 1})


_BMM = Rule("BmmBackward0",
            lambda ctx, g: (v_bmm(g, v_transpose(ctx.mat2, 1, 2)) if ctx.needs[0] else None,
                            v_bmm(v_transpose(ctx.self, 1, 2), g) if ctx.needs[1] else None),
            ("self", "mat2"), saves={"mat2": 0, "self": 1})

def _not_for_bool(t: Tensor, kernel: str):
    if t.dtype is _dtype.bool_:
        raise _dtype.not_implemented_for(kernel, _dtype.bool_)


def _product(rule, a: Tensor, b: Tensor, dt=None, kernel=_matmul, **attrs) -> Tensor:
    """a @ b in `dt` (a's dtype by default), by `kernel` (of two arrays)."""
    dt = a.dtype if dt is None else dt
    with _errstate():
        data = kernel(a._data, b._data)
    return record(rule, (a, b), data if data.dtype == dt.np else data.astype(dt.np), dt, **attrs)


# The products check sizes, then dtypes, then bool support, in torch's order and words
# (dot: dtypes first; bmm: bool before dtypes).
# NOTE: torch's kernels return before their dtype dispatch when there is nothing to multiply
# (an empty operand: an empty result, or zeros where the inner size is 0): mm, mv and bmm of
# bool then work, and bmm, which checks dtypes only in its kernel, returns batch2's dtype
# (fuzzer finding: matmul of an empty int64 matrix by a float64 batch is an empty float64).

def _dot(a: Tensor, b: Tensor) -> Tensor:
    if a.dtype is not b.dtype:
        raise RuntimeError("dot : expected both vectors to have same dtype, but found "
                           f"{a.dtype.scalar_name} and {b.dtype.scalar_name}")
    n, m = a._data.shape[0], b._data.shape[0]
    if n != m:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{n}] and src [{m}] to have the same number "
            f"of elements, but got {n} and {m} elements respectively")
    _not_for_bool(a, "dot")
    return _product(_DOT, a, b, kernel=_dot_array)


def _dot_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a . b as torch's dot (MKL's sdot / ddot) sums it where known (see _blas.dot)."""
    out = _blas.dot(a, b)
    return a @ b if out is None else np.asarray(out)


def _mv(a: Tensor, v: Tensor) -> Tensor:
    (n, m), k = a._data.shape, v._data.shape[0]
    if m != k:
        raise RuntimeError(f"size mismatch, got input ({n}), mat ({n}x{m}), vec ({k})")
    if a.dtype is not v.dtype:
        # NOTE: torch's mv is addmv into an output of vec's dtype; the message lists (out, mat, vec).
        names = (v.dtype.scalar_name, a.dtype.scalar_name, v.dtype.scalar_name)
        raise RuntimeError("addmv input tensors must have the same dtype, but got {}, {}, and {}".format(*names))
    if a._data.size:
        _not_for_bool(a, "addmv_impl_cpu")
    return _product(_MV, a, v, kernel=_mv_array)


def _mm(a: Tensor, b: Tensor) -> Tensor:
    (n, k), (k2, p) = a._data.shape, b._data.shape
    if k != k2:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({n}x{k} and {k2}x{p})")
    if a.dtype is not b.dtype:
        raise RuntimeError("expected m1 and m2 to have the same dtype, but got: "
                           f"{a.dtype.cpp_name} != {b.dtype.cpp_name}")
    if a._data.size and b._data.size:
        _not_for_bool(a, "addmm_impl_cpu_")
    return _product(_MM, a, b, kernel=_mm_array, self_transposed=_is_transposed(a._data),
                    mat2_transposed=_is_transposed(b._data))


def _bmm(a: Tensor, b: Tensor) -> Tensor:
    (n, _, k), (n2, k2, _) = a._data.shape, b._data.shape
    if (n2, k2) != (n, k):
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{n}, {k}] but got: [{n2}, {k2}].")
    # NOTE: bmm's kernel refuses a bool first operand before comparing dtypes (fuzzer finding:
    # matmul of a bool batch by a float matrix).
    if not (a._data.size and b._data.size):
        return _product(_BMM, a, b, b.dtype)
    _not_for_bool(a, "bmm")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected scalar type {a.dtype.scalar_name} "
                           f"but found {b.dtype.scalar_name}")
    return _product(_BMM, a, b, kernel=_bmm_array)


def matmul(input, other) -> Tensor:
    """torch.matmul, composed from dot / mv / mm / bmm the way torch 2.13 composes it.

    NOTE: which composition torch picks for batched operands (fold the batch into one
    mm / mv, or broadcast and bmm) depends on which operand requires grad, so that the
    gradient of a shared matrix is not materialized per batch, and on the strides of the
    larger one (`_should_fold`). The nodes (and so `grad_fn.name()`) follow torch's, the fold's
    reshape included (a view, an aliasing view or a copy, by the batch's strides).
    """
    _check_tensor(input, "matmul")
    _check_tensor(other, "matmul", "other", 2)
    d1, d2 = input.ndim, other.ndim
    if d1 == 0 or d2 == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {d1}D and {d2}D")
    if d1 == 1 and d2 == 1:
        return _dot(input, other)
    if d1 == 2 and d2 == 1:
        return _mv(input, other)
    if d1 == 1 and d2 == 2:
        return _reshape(_mm(_reshape(input, (1, -1), _UNSQUEEZE), other), other._data.shape[1:],
                        _SQUEEZE_INPLACE)
    if d1 == 2 and d2 == 2:
        return _mm(input, other)
    if d1 == d2 == 3:
        # A 3-d operand with a batch of one that requires grad is squeezed to a matrix.
        # NOTE: torch asks requires_grad, not the grad mode (as should_fold below).
        if input.shape[0] == 1 != other.shape[0] and input._requires_grad:
            input, d1 = _reshape(input, input.shape[1:], _SQUEEZE_DIM), 2
        elif other.shape[0] == 1 != input.shape[0] and other._requires_grad:
            other, d2 = _reshape(other, other.shape[1:], _SQUEEZE_DIM), 2
    if _should_fold(input, other):
        return _folded_matmul(input, other)
    return _batched_matmul(input, other)


def _should_fold(input: Tensor, other: Tensor) -> bool:
    """torch's should_fold (LinearAlgebra.cpp): fold the larger operand (>= 3-d, the other
    <= 2-d) into one mm / mv when the smaller requires grad (whatever the grad mode), or when
    the fold needs no copy (its leading dims nest contiguously; for a first operand of 2 dims,
    never). Engine arrays have torch's strides, so the test reads numpy's."""
    first_larger = input.ndim >= other.ndim
    big = input._data if first_larger else np.swapaxes(other._data, -1, -2)
    small = other if first_larger else input
    if not (big.ndim >= 3 and small.ndim <= 2):
        return False
    if small.requires_grad:
        return True
    if input.ndim == 2:
        return False
    if big.size == 0:
        return True
    strides, shape = big.strides, big.shape
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(big.ndim - 2))


def _folded_matmul(input: Tensor, other: Tensor) -> Tensor:
    """A batch (>= 3-d) times a matrix or vector: fold the batch into one mm / mv."""
    transpose = other.ndim > input.ndim
    big = _transpose(other, -2, -1) if transpose else input
    small = (_transpose(input, 0, 1, _T) if input.ndim == 2 else input) if transpose else other
    out_shape = big._data.shape[:-1]
    # NOTE: torch folds with reshape: a view of the batch (sharing its version counter, so an
    # in-place change of it before backward is an error) where its strides allow, else a copy.
    folded = _reshape_as_torch(big, (math.prod(out_shape), big._data.shape[-1]))
    if small.ndim == 2:
        out = _reshape(_mm(folded, small), out_shape + small._data.shape[1:], _UNSAFE_VIEW)
        if not transpose:
            return out
        # NOTE: torch's `.mT.contiguous()` copies (CloneBackward0) only when the transposed
        # result is not contiguous already (a side of 1 keeps it contiguous).
        out = _transpose(out, -2, -1)
        return out if out._data.flags.c_contiguous else _clone(out)
    return _reshape(_mv(folded, small), out_shape, _UNSAFE_VIEW)


def _batched_matmul(input: Tensor, other: Tensor) -> Tensor:
    """Both operands >= 3-d (or one 1-d against a >= 3-d): broadcast batches and bmm."""
    d1, d2 = input.ndim, other.ndim
    s1, s2 = input._data.shape, other._data.shape
    n = s1[-2] if d1 > 1 else 1
    m1 = s1[-1]
    m2 = s2[-2] if d2 > 1 else s2[0]
    p = s2[-1] if d2 > 1 else 1
    batch = _broadcast_shape(s1[:max(d1 - 2, 0)], s2[:max(d2 - 2, 0)])
    size = int(np.prod(batch, dtype=np.int64))
    a = _reshape(_expand(input, batch + (n, m1)), (size, n, m1))
    if d2 == 1:
        b = _reshape(_reshape(_expand(other, batch + (m2,)), (size, m2)), (size, m2, 1), _UNSQUEEZE)
    else:
        b = _reshape(_expand(other, batch + (m2, p)), (size, m2, p))
    out = _bmm(a, b)
    shape = batch + ((n,) if d1 > 1 else ()) + ((p,) if d2 > 1 else ())
    if d2 == 1:
        out = _reshape(out, out._data.shape[:-1], _SQUEEZE_DIM)
    return _reshape(out, shape, _UNSAFE_VIEW)
